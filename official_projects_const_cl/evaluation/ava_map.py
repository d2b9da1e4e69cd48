r"""Frame-mAP@0.5 IoU for AVA v2.2 and AVA-Kinetics (ActivityNet protocol).

A pure numpy implementation of the official AVA action-detection metric, i.e.
of ActivityNet's `Evaluation/get_ava_performance.py` with the vendored TF
Object Detection API `PascalDetectionEvaluator` (`object_detection_evaluation`,
`per_image_evaluation`, `metrics`). Written from the protocol, not copied.

Protocol (every step below is what the official script does):

1. Keyframes. A row `video_id,timestamp,x1,y1,x2,y2,action_id[,x]` belongs to
   the keyframe ("image key") `f'{video_id},{int(timestamp):04d}'`
   (`make_image_key`). Coordinates are normalized; no +1 pixel term anywhere.
2. Class whitelist. Rows whose action id is not in the label map are dropped,
   in ground truth and detections alike, BEFORE the detection cap.
3. Detection cap. Per keyframe only the 50 highest-scoring detection rows
   (box, class, score) are kept, over all classes together (the official
   `read_csv(..., capacity=50)`). Ground truth is never capped.
4. Exclusions. Keyframes listed in the excluded-timestamps CSV are removed
   from ground truth and detections.
5. Matching, per keyframe and class, detections in descending score: a
   detection takes the ground-truth box it overlaps MOST (first one on an
   exact IoU tie) if that IoU >= 0.5 and the box is not yet taken; otherwise
   (IoU < 0.5, or the most-overlapping box is already taken, even when another
   untaken box also has IoU >= 0.5) it is a false positive. A detection on a
   keyframe without any ground truth is a false positive: the OD API's
   `ObjectDetectionEvaluation.add_single_detected_image_info` evaluates an
   unknown image key against an empty ground-truth set, and
   `PerImageEvaluation._compute_tp_fp_for_single_class` returns all-False
   TP labels when there are no ground-truth boxes.
6. Degenerate detections (y1 >= y2 or x1 >= x2) are dropped after the cap,
   neither TP nor FP (`PerImageEvaluation._remove_invalid_boxes`). Inverted
   ground-truth boxes (y2 < y1 or x2 < x1) are an error (the OD API's BoxList
   rejects them).
7. AP per class: detections of all keyframes in descending score; precision
   made non-increasing from the right (monotone envelope); AP = sum over the
   recall steps of (recall step) x (envelope precision) - area under the
   envelope, NOT 11-point interpolation (`metrics.compute_average_precision`).
   The recall denominator is the number of ground-truth (box, class) rows of
   the class. A class with ground truth but no detections has AP 0.
8. mAP = mean AP over the label-map classes that have ground truth; classes
   without ground truth are reported as NaN and left out (the official
   `np.nanmean`).

Decisions where the official behaviour is unspecified or only a crash:

* Exact score ties. The official order of tied detections depends on heap
  layout and on numpy's unstable `argsort`. Here ties keep input order
  (file order / order of `add_detections` calls): stable sorts throughout.
  `read_csv` does reproduce the official heap rule for WHICH rows survive the
  cap (a row replaces the lowest (score, action_id, y1, x1, y2, x2) entry only
  with a strictly higher score); the in-memory paths (`frame_map`,
  `AvaEvaluator`) keep the earliest rows among ties at the 50th score.
* Ground-truth order. The official reader orders a keyframe's ground-truth
  rows by descending person_id (it parses column 8 as a score); here they stay
  in file order. This only matters when a detection has exactly the same IoU
  with two boxes of its class.
* Timestamps. Integral timestamps ('902', '0902', '902.0') give the official
  key. The official script crashes on non-integral ones; here they give the
  key `f'{video_id},{float(timestamp)!r}'` instead of colliding with the
  integral second.
* Newer TF OD API releases run a no-op NMS (IoU 1.0) inside the per-image
  evaluation that also drops scores <= -10. ActivityNet's vendored copy (the
  AVA reference) has no such step, and neither does this module.

Boxes in memory are float64 [N, 4] in (y1, x1, y2, x2) order, as in the
official evaluator; the CSV files are (x1, y1, x2, y2). The conversion happens
only in `read_csv` and `rows_from_keyframes`.

Command line (prints frame-mAP and per-class AP with names):

  python -m official_projects_const_cl.evaluation.ava_map \
    --groundtruth=ava_val_v2.2.csv --detections=predictions.csv \
    --labelmap=ava_action_list_v2.2_for_activitynet_2019.pbtxt \
    --exclusions=ava_val_excluded_timestamps_v2.2.csv
"""

import argparse
import contextlib
import csv
import heapq
import math
import os
import re
from typing import (Any, Dict, IO, Iterable, Iterator, List, Mapping,
                    NamedTuple, Optional, Sequence, Set, Tuple, Union)

import numpy as np

from official_projects_const_cl import errors

DEFAULT_IOU_THRESHOLD = 0.5
# Detection rows kept per keyframe by the official script.
DETECTION_CAPACITY = 50

PathOrFile = Union[str, os.PathLike, IO[str]]
Timestamp = Union[int, float, str, np.number]


class KeyframeBoxes(NamedTuple):
  """Labelled boxes of one keyframe.

  Attributes:
    boxes: float64 [N, 4], normalized (y1, x1, y2, x2).
    labels: int64 [N] action ids.
    scores: float64 [N]; 1.0 for ground truth. Detections as returned by
      `read_csv` are in descending score order.
  """
  boxes: np.ndarray
  labels: np.ndarray
  scores: np.ndarray


# image key -> KeyframeBoxes, the in-memory form of an AVA CSV.
Keyframes = Mapping[str, KeyframeBoxes]


# ----------------------------------------------------------------------------
# Keys and file helpers.


def _timestamp_value(timestamp: Timestamp) -> Union[int, float]:
  """The timestamp as an int when integral, else as a float."""
  if isinstance(timestamp, (int, np.integer)) and not isinstance(
      timestamp, bool):
    return int(timestamp)
  text = str(timestamp).strip()
  try:
    return int(text)
  except ValueError:
    pass
  value = float(text)  # Raises ValueError on text that is not a number.
  if not math.isfinite(value):
    raise ValueError(f'timestamp {timestamp!r} is not finite')
  return int(value) if value.is_integer() else value


def make_image_key(video_id: str, timestamp: Timestamp) -> str:
  """The keyframe id used by the official script: 'video_id,%04d'.

  Args:
    video_id: YouTube / Kinetics video id.
    timestamp: keyframe second (int, float or text such as '0902').

  Returns:
    f'{video_id},{int(timestamp):04d}' for integral timestamps, e.g.
    'abc,0902'; f'{video_id},{float(timestamp)!r}' otherwise (an extension:
    the official script rejects non-integral timestamps).

  Raises:
    ValueError: if the timestamp is not a finite number.
  """
  value = _timestamp_value(timestamp)
  if isinstance(value, int):
    return f'{video_id},{value:04d}'
  return f'{video_id},{value!r}'


def _split_image_key(image_key: str) -> Tuple[str, Union[int, float]]:
  video_id, sep, timestamp = image_key.rpartition(',')
  if not sep:
    raise ValueError(f'image key {image_key!r} is not "video_id,timestamp"')
  return video_id, _timestamp_value(timestamp)


def _normalize_key(image_key: Any) -> str:
  """Accepts str, bytes (from TF string tensors) or (video_id, timestamp)."""
  if isinstance(image_key, (bytes, np.bytes_)):
    return bytes(image_key).decode('utf-8')
  if isinstance(image_key, tuple) and len(image_key) == 2:
    video_id = image_key[0]
    if isinstance(video_id, (bytes, np.bytes_)):
      video_id = bytes(video_id).decode('utf-8')
    return make_image_key(str(video_id), image_key[1])
  if isinstance(image_key, str):
    return image_key
  raise TypeError(f'image key must be str, bytes or (video_id, timestamp); '
                  f'got {type(image_key).__name__}')


@contextlib.contextmanager
def _open_text(path: PathOrFile) -> Iterator[Tuple[IO[str], str]]:
  """Yields (text file, display name) for a path or an open text file."""
  if hasattr(path, 'read'):
    yield path, str(getattr(path, 'name', '<stream>'))
  else:
    with open(path, 'r', newline='', encoding='utf-8') as f:
      yield f, os.fspath(path)


def _row_error(name: str, line_no: int, problem: str) -> ValueError:
  return ValueError(f'{name}, line {line_no}: {problem}')


def _is_blank(row: Sequence[str]) -> bool:
  return all(not cell.strip() for cell in row)


# ----------------------------------------------------------------------------
# Label map.

_PBTXT_TOKEN = re.compile(r"""
    \s*(?:
      (?P<comment>\#[^\n]*)
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    | (?P<punct>[{}<>\[\]:;,])
    | (?P<word>[^\s{}<>\[\]:;,"'\#]+)
    )""", re.VERBOSE)

_CLOSING = {'{': '}', '<': '>'}


def _pbtxt_tokens(text: str, name: str) -> List[Tuple[str, str, int]]:
  """(kind, text, offset) tokens of a text-format protobuf, comments dropped."""
  tokens = []
  pos = 0
  while pos < len(text):
    match = _PBTXT_TOKEN.match(text, pos)
    if match is None or match.end() == pos:
      if not text[pos:].strip():
        break
      line = text.count('\n', 0, pos) + 1
      raise _row_error(name, line, f'cannot parse label map near '
                       f'{text[pos:pos + 20].strip()!r}')
    pos = match.end()
    kind = match.lastgroup
    if kind != 'comment':
      tokens.append((kind, match.group(kind), match.start(kind)))
  return tokens


def _unquote(token: str) -> str:
  escapes = {'n': '\n', 't': '\t', 'r': '\r'}
  return re.sub(r'\\(.)', lambda m: escapes.get(m.group(1), m.group(1)),
                token[1:-1])


def _parse_pbtxt(text: str, name: str) -> List[Tuple[str, Any, int]]:
  """Parses text-format protobuf into [(field, value, offset)] (nested lists).

  Scalar values are the raw token text (quoted strings unquoted); message
  values are lists of the same form. Only the subset label maps use is
  supported: `name: value`, `name { ... }`, `name: { ... }`, `name < ... >`
  and `name: [v, ...]`, with optional ';' / ',' separators.
  """
  tokens = _pbtxt_tokens(text, name)

  def error(index: int, problem: str) -> ValueError:
    offset = tokens[index][2] if index < len(tokens) else len(text)
    return _row_error(name, text.count('\n', 0, offset) + 1, problem)

  def scalar(index: int) -> Tuple[str, int]:
    if index >= len(tokens) or tokens[index][0] not in ('string', 'word'):
      raise error(index, 'expected a value')
    kind, value, _ = tokens[index]
    return (_unquote(value) if kind == 'string' else value), index + 1

  def message(index: int, closing: Optional[str]):
    fields = []
    while True:
      if index >= len(tokens):
        if closing is not None:
          raise error(index, f'missing {closing!r}')
        return fields, index
      kind, value, offset = tokens[index]
      if closing is not None and kind == 'punct' and value == closing:
        return fields, index + 1
      if kind == 'punct' and value in (';', ','):
        index += 1
        continue
      if kind != 'word':
        raise error(index, f'expected a field name, got {value!r}')
      index += 1
      has_colon = (index < len(tokens) and tokens[index][1] == ':' and
                   tokens[index][0] == 'punct')
      if has_colon:
        index += 1
      if index < len(tokens) and tokens[index][0] == 'punct' and (
          tokens[index][1] in _CLOSING):
        sub, index = message(index + 1, _CLOSING[tokens[index][1]])
        fields.append((value, sub, offset))
      elif (has_colon and index < len(tokens) and
            tokens[index][0] == 'punct' and tokens[index][1] == '['):
        index += 1
        while index < len(tokens) and tokens[index][1] != ']':
          item, index = scalar(index)
          fields.append((value, item, offset))
          if index < len(tokens) and tokens[index][1] == ',':
            index += 1
        if index >= len(tokens):
          raise error(index, "missing ']'")
        index += 1
      elif has_colon:
        item, index = scalar(index)
        fields.append((value, item, offset))
      else:
        raise error(index, f'expected ":" or "{{" after {value!r}')

  fields, _ = message(0, None)
  return fields


def read_label_map(
    path: PathOrFile) -> Tuple[List[Dict[str, Any]], Set[int]]:
  """Reads an AVA / OD API label map (pbtxt).

  Accepts `item { name: "..." id: N }` entries in any layout (one line or
  several, comments allowed); `label_id` is accepted for `id` and
  `display_name` for `name` (`name` wins when both are given, as in the
  official reader). Other fields are ignored.

  Args:
    path: file path or open text file.

  Returns:
    categories: [{'id': int, 'name': str}] in file order.
    class_ids: the set of ids (the class whitelist).

  Raises:
    ValueError: naming the file and line, on a syntax error, an item without
      an integer id, an id < 1 (the OD API requires 1-indexed classes) or a
      repeated id.
  """
  with _open_text(path) as (f, name):
    text = f.read()
  categories = []
  class_ids = set()
  for field, value, offset in _parse_pbtxt(text, name):
    if field != 'item' or not isinstance(value, list):
      continue
    line = text.count('\n', 0, offset) + 1
    entry = {}
    for key, item, _ in value:
      if isinstance(item, str):
        entry.setdefault(key, item)
    raw_id = entry.get('id', entry.get('label_id'))
    if raw_id is None:
      raise _row_error(name, line, 'label map item has no id / label_id')
    try:
      class_id = int(raw_id)
    except ValueError:
      raise _row_error(name, line, f'label map id {raw_id!r} is not an '
                       'integer') from None
    if class_id < 1:
      raise _row_error(name, line, f'label map ids must be >= 1, got '
                       f'{class_id}')
    if class_id in class_ids:
      raise _row_error(name, line, f'label map id {class_id} is repeated')
    class_name = entry.get('name', entry.get('display_name', str(class_id)))
    categories.append({'id': class_id, 'name': class_name})
    class_ids.add(class_id)
  return categories, class_ids


# ----------------------------------------------------------------------------
# CSV files.


def read_exclusions(path: Optional[PathOrFile]) -> Set[str]:
  """Reads excluded keyframes (`video_id,timestamp` rows) as image keys.

  Args:
    path: file path or open text file; None gives the empty set.

  Returns:
    The set of image keys, e.g. {'abc,0902'} (timestamps normalized with
    `make_image_key`, so '902' and '0902' agree).

  Raises:
    ValueError: naming the file and line, on a row that is not two columns or
      whose timestamp is not a number. Blank lines are skipped.
  """
  excluded = set()
  if path is None:
    return excluded
  with _open_text(path) as (f, name):
    reader = csv.reader(f)
    for row in reader:
      if _is_blank(row):
        continue
      if len(row) != 2:
        raise _row_error(name, reader.line_num, f'expected 2 columns '
                         f'(video_id,timestamp), got {len(row)}: {row!r}')
      try:
        excluded.add(make_image_key(row[0], row[1]))
      except ValueError as e:
        raise _row_error(name, reader.line_num, str(e)) from None
  return excluded


def _parse_row(row: Sequence[str], is_groundtruth: bool
               ) -> Tuple[str, float, int, float, float, float, float]:
  """(image key, score, action id, y1, x1, y2, x2) of one CSV row."""
  if len(row) not in (7, 8):
    kind = ('video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]'
            if is_groundtruth else
            'video_id,timestamp,x1,y1,x2,y2,action_id[,score]')
    raise ValueError(f'expected 7 or 8 columns ({kind}), got {len(row)}: '
                     f'{row!r}')
  key = make_image_key(row[0], row[1])
  try:
    x1, y1, x2, y2 = (float(v) for v in row[2:6])
  except ValueError:
    raise ValueError(f'box coordinates must be numbers: {row[2:6]!r}') from None
  if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
    raise ValueError(f'box coordinates must be finite: {row[2:6]!r}')
  try:
    action_id = int(row[6])
  except ValueError:
    raise ValueError(f'action_id {row[6]!r} is not an integer') from None
  score = 1.0
  if len(row) == 8 and not is_groundtruth:
    try:
      score = float(row[7])
    except ValueError:
      raise ValueError(f'score {row[7]!r} is not a number') from None
    if not math.isfinite(score):
      raise ValueError(f'score {row[7]!r} is not finite')
  if is_groundtruth and (x2 < x1 or y2 < y1):
    raise ValueError(f'ground-truth box has x2 < x1 or y2 < y1: {row[2:6]!r}')
  return key, score, action_id, y1, x1, y2, x2


def read_csv(path: PathOrFile,
             class_ids: Optional[Iterable[int]] = None,
             capacity: int = 0,
             is_groundtruth: bool = False) -> Dict[str, KeyframeBoxes]:
  """Reads an AVA CSV into {image key: KeyframeBoxes}.

  Rows are `video_id,timestamp,x1,y1,x2,y2,action_id[,last]` with normalized
  coordinates. For detections `last` is the score (1.0 when absent, as in the
  official reader); for ground truth (`is_groundtruth=True`) it is the
  person id, which is ignored, and the score is 1.0.

  Args:
    path: file path or open text file.
    class_ids: class whitelist; rows with other action ids are dropped before
      the capacity is applied. None or empty keeps every class (as the
      official `if class_whitelist and ...`).
    capacity: keep at most this many rows per keyframe, those with the
      highest scores, using the official heap rule (a row replaces the
      smallest (score, action_id, y1, x1, y2, x2) entry only if its score is
      strictly higher). 0 keeps all rows. The official evaluation uses 50 for
      detections and 0 for ground truth.
    is_groundtruth: see above; also makes inverted boxes an error.

  Returns:
    Keyframes in order of first appearance. Within a keyframe the rows are
    sorted by descending score, ties in file order (ground truth thus stays in
    file order).

  Raises:
    ValueError: naming the file and the line, on a malformed row (wrong number
      of columns, a field that is not a number, a non-finite value, an
      inverted ground-truth box). Blank lines are skipped.
  """
  whitelist = set(class_ids) if class_ids else None
  entries: Dict[str, list] = {}
  with _open_text(path) as (f, name):
    reader = csv.reader(f)
    for row in reader:
      if _is_blank(row):
        continue
      try:
        key, score, action_id, y1, x1, y2, x2 = _parse_row(row, is_groundtruth)
      except ValueError as e:
        raise _row_error(name, reader.line_num, str(e)) from None
      if whitelist is not None and action_id not in whitelist:
        continue
      # The line number only breaks ties between identical rows.
      item = (score, action_id, y1, x1, y2, x2, reader.line_num)
      rows = entries.setdefault(key, [])
      if capacity <= 0:
        rows.append(item)
      elif len(rows) < capacity:
        heapq.heappush(rows, item)
      elif score > rows[0][0]:
        heapq.heapreplace(rows, item)
  result = {}
  for key, rows in entries.items():
    rows.sort(key=lambda r: (-r[0], r[6]))
    table = np.array([r[:6] for r in rows], dtype=np.float64).reshape(-1, 6)
    result[key] = KeyframeBoxes(boxes=table[:, 2:6].copy(),
                                labels=table[:, 1].astype(np.int64),
                                scores=table[:, 0].copy())
  return result


def _format_number(value: Any) -> str:
  return repr(float(value))


def write_detections_csv(path: PathOrFile,
                         rows: Iterable[Sequence[Any]]) -> int:
  """Writes detections in the official prediction format.

  Each output line is `video_id,timestamp,x1,y1,x2,y2,action_id,score`, the
  timestamp as %04d when integral, numbers in shortest round-trip form, so
  that `read_csv` gives back exactly the written values and the file can be
  scored with ActivityNet's `get_ava_performance.py`.

  Args:
    path: output path or open text file.
    rows: (video_id, timestamp, x1, y1, x2, y2, action_id, score) tuples, in
      CSV (x, y) order; `rows_from_keyframes` makes them from KeyframeBoxes.

  Returns:
    The number of rows written.

  Raises:
    ValueError: on a row without 8 fields, a video id with a comma or line
      break, a non-integer action id or a non-finite number.
  """
  lines = []
  for index, row in enumerate(rows):
    row = tuple(row)
    if len(row) != 8:
      raise ValueError(f'row {index}: expected 8 fields (video_id, timestamp, '
                       f'x1, y1, x2, y2, action_id, score), got {len(row)}')
    video_id = row[0]
    if isinstance(video_id, (bytes, np.bytes_)):
      video_id = bytes(video_id).decode('utf-8')
    video_id = str(video_id)
    if any(c in video_id for c in ',\r\n"'):
      raise ValueError(f'row {index}: video id {video_id!r} contains a comma, '
                       'quote or line break')
    timestamp = _timestamp_value(row[1])
    timestamp_text = (f'{timestamp:04d}' if isinstance(timestamp, int) else
                      repr(timestamp))
    numbers = [float(v) for v in row[2:6]] + [float(row[7])]
    if not all(math.isfinite(v) for v in numbers):
      raise ValueError(f'row {index}: non-finite box or score: {row!r}')
    action = row[6]
    if isinstance(action, float) and not action.is_integer():
      raise ValueError(f'row {index}: action id {action!r} is not an integer')
    action_id = int(action)
    lines.append(','.join(
        [video_id, timestamp_text] + [_format_number(v) for v in numbers[:4]] +
        [str(action_id), _format_number(numbers[4])]) + '\n')
  if hasattr(path, 'write'):
    path.writelines(lines)
  else:
    with open(path, 'w', newline='', encoding='utf-8') as f:
      f.writelines(lines)
  return len(lines)


def rows_from_keyframes(
    keyframes: Mapping[str, Any]) -> List[Tuple[Any, ...]]:
  """CSV rows (video_id, timestamp, x1, y1, x2, y2, action_id, score).

  Args:
    keyframes: {image key: KeyframeBoxes or (boxes, labels, scores)} with
      (y1, x1, y2, x2) boxes, e.g. from `read_csv` or
      `AvaEvaluator.detections()`.

  Returns:
    Rows for `write_detections_csv`, keyframes in mapping order.
  """
  rows = []
  for key, value in keyframes.items():
    frame = _as_keyframe(value, key, is_groundtruth=False)
    video_id, timestamp = _split_image_key(key)
    for (y1, x1, y2, x2), label, score in zip(frame.boxes, frame.labels,
                                              frame.scores):
      rows.append((video_id, timestamp, float(x1), float(y1), float(x2),
                   float(y2), int(label), float(score)))
  return rows


# ----------------------------------------------------------------------------
# Core metric.


def _as_keyframe(value: Any, key: str, is_groundtruth: bool) -> KeyframeBoxes:
  """Validates (boxes, labels[, scores]) and converts to KeyframeBoxes."""
  what = 'ground truth' if is_groundtruth else 'detections'
  if isinstance(value, Mapping):
    value = (value['boxes'], value['labels'], value.get('scores'))
  value = tuple(value)
  if len(value) not in (2, 3):
    raise ValueError(f'{what} of {key!r}: expected (boxes, labels[, scores])')
  boxes = np.asarray(value[0], dtype=np.float64)
  if boxes.size == 0:
    boxes = boxes.reshape(0, 4)
  if boxes.ndim != 2 or boxes.shape[1] != 4:
    raise ValueError(f'{what} of {key!r}: boxes must be [N, 4], got shape '
                     f'{boxes.shape}')
  labels = np.asarray(value[1]).reshape(-1)
  if labels.dtype.kind == 'f':
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
      raise ValueError(f'{what} of {key!r}: labels must be integers')
  elif labels.size and labels.dtype.kind not in 'iub':
    raise ValueError(f'{what} of {key!r}: labels must be integers, got dtype '
                     f'{labels.dtype}')
  labels = labels.astype(np.int64)
  scores = value[2] if len(value) == 3 else None
  if scores is None or is_groundtruth:
    if scores is None and not is_groundtruth:
      raise ValueError(f'detections of {key!r} need scores')
    scores = np.ones(labels.shape, np.float64)
  else:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
  if not boxes.shape[0] == labels.shape[0] == scores.shape[0]:
    raise ValueError(f'{what} of {key!r}: {boxes.shape[0]} boxes, '
                     f'{labels.shape[0]} labels, {scores.shape[0]} scores')
  if not np.all(np.isfinite(boxes)) or not np.all(np.isfinite(scores)):
    raise ValueError(f'{what} of {key!r}: boxes and scores must be finite')
  return KeyframeBoxes(boxes, labels, scores)


def _take(frame: KeyframeBoxes, index: np.ndarray) -> KeyframeBoxes:
  return KeyframeBoxes(frame.boxes[index], frame.labels[index],
                       frame.scores[index])


def _concat(frames: Sequence[KeyframeBoxes]) -> KeyframeBoxes:
  if len(frames) == 1:
    return frames[0]
  return KeyframeBoxes(np.concatenate([f.boxes for f in frames]),
                       np.concatenate([f.labels for f in frames]),
                       np.concatenate([f.scores for f in frames]))


def _whitelisted(frame: KeyframeBoxes, class_array: np.ndarray
                 ) -> KeyframeBoxes:
  keep = np.isin(frame.labels, class_array)
  return frame if keep.all() else _take(frame, keep)


def _top_scoring(frame: KeyframeBoxes, capacity: int) -> KeyframeBoxes:
  """Rows by descending score (ties in input order), at most `capacity`."""
  order = np.argsort(-frame.scores, kind='stable')
  if capacity > 0:
    order = order[:capacity]
  return _take(frame, order)


def _class_array(class_ids: Iterable[int]) -> np.ndarray:
  ids = np.array(sorted({int(c) for c in class_ids}), dtype=np.int64)
  if ids.size == 0:
    raise ValueError('class_ids is empty: pass the label-map class ids')
  return ids


def _prepare(keyframes: Mapping[Any, Any], class_array: np.ndarray,
             excluded: Set[str], is_groundtruth: bool,
             capacity: int) -> Dict[str, KeyframeBoxes]:
  """Exclusions, whitelist, then (detections) descending score and the cap."""
  prepared = {}
  for raw_key, value in keyframes.items():
    key = _normalize_key(raw_key)
    if key in excluded:
      continue
    frame = _whitelisted(_as_keyframe(value, key, is_groundtruth),
                         class_array)
    if is_groundtruth:
      boxes = frame.boxes
      if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ValueError(f'ground truth of {key!r} has a box with y2 < y1 or '
                         'x2 < x1')
    else:
      frame = _top_scoring(frame, capacity)
    if frame.labels.size:
      if key in prepared:  # Two raw keys normalized to the same keyframe.
        frame = _concat([prepared[key], frame])
        if not is_groundtruth:
          frame = _top_scoring(frame, capacity)
      prepared[key] = frame
  return prepared


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
  """Pairwise IoU [N, M] of (y1, x1, y2, x2) boxes, without a +1 term.

  (The formula is symmetric in the two axes, so (x1, y1, x2, y2) boxes give
  the same values as long as both arguments use the same order.) Two
  zero-area boxes have IoU 0.
  """
  a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
  b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
  height = np.maximum(
      0.0, np.minimum(a[:, None, 2], b[None, :, 2]) -
      np.maximum(a[:, None, 0], b[None, :, 0]))
  width = np.maximum(
      0.0, np.minimum(a[:, None, 3], b[None, :, 3]) -
      np.maximum(a[:, None, 1], b[None, :, 1]))
  intersection = height * width
  area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
  area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  union = area_a[:, None] + area_b[None, :] - intersection
  with np.errstate(divide='ignore', invalid='ignore'):
    iou = intersection / union
  return np.where(union > 0, iou, 0.0)


def _match_keyframe(detections: KeyframeBoxes, groundtruth: KeyframeBoxes,
                    iou_threshold: float) -> np.ndarray:
  """TP flags of one keyframe's detections (already in descending score).

  Each detection looks only at ground truth of its own class, takes the box
  of highest IoU (first on ties) if IoU >= threshold and the box is still
  free; otherwise it is a false positive.
  """
  overlaps = box_iou(detections.boxes, groundtruth.boxes)
  # IoU >= 0, so -1 keeps other classes out of the argmax.
  overlaps[detections.labels[:, None] != groundtruth.labels[None, :]] = -1.0
  best = np.argmax(overlaps, axis=1)
  best_iou = overlaps[np.arange(best.size), best]
  taken = np.zeros(groundtruth.labels.size, bool)
  is_tp = np.zeros(best.size, bool)
  for i in np.flatnonzero(best_iou >= iou_threshold):
    if not taken[best[i]]:
      taken[best[i]] = True
      is_tp[i] = True
  return is_tp


def average_precision(scores: np.ndarray, is_true_positive: np.ndarray,
                      num_groundtruth: int) -> float:
  """Area under the precision envelope (ActivityNet / OD API AP).

  Detections are ranked by descending score (stable). With precision p_i and
  recall r_i after the i-th detection, p is replaced by its envelope
  p*_i = max_{k >= i} p_k and AP = sum_i (r_i - r_{i-1}) p*_i, i.e. the sum
  over recall steps; no 11-point interpolation.

  Args:
    scores: [D] detection scores of one class.
    is_true_positive: [D] bool.
    num_groundtruth: ground-truth instances of the class (recall denominator).

  Returns:
    AP in [0, 1]; NaN when num_groundtruth == 0; 0.0 without detections.

  Raises:
    ValueError: on mismatched sizes or more TPs than ground-truth instances.
  """
  scores = np.asarray(scores, np.float64).reshape(-1)
  tp = np.asarray(is_true_positive, bool).reshape(-1)
  if scores.shape != tp.shape:
    raise ValueError(f'{scores.size} scores but {tp.size} TP flags')
  if num_groundtruth <= 0:
    return float('nan')
  if tp.sum() > num_groundtruth:
    raise ValueError(f'{tp.sum()} true positives but only {num_groundtruth} '
                     'ground-truth instances')
  if scores.size == 0:
    return 0.0
  tp = tp[np.argsort(-scores, kind='stable')]
  cum_tp = np.cumsum(tp, dtype=np.float64)
  precision = cum_tp / np.arange(1, tp.size + 1, dtype=np.float64)
  recall = cum_tp / float(num_groundtruth)
  envelope = np.maximum.accumulate(precision[::-1])[::-1]
  previous_recall = np.concatenate([[0.0], recall[:-1]])
  steps = recall != previous_recall
  return float(np.sum((recall[steps] - previous_recall[steps]) *
                      envelope[steps]))


def frame_map(groundtruth: Mapping[Any, Any],
              detections: Mapping[Any, Any],
              class_ids: Iterable[int],
              exclusions: Iterable[str] = (),
              iou_threshold: float = DEFAULT_IOU_THRESHOLD,
              detection_capacity: int = DETECTION_CAPACITY) -> Dict[str, Any]:
  """Frame-mAP of AVA-style keyframe detections (see the module docstring).

  Args:
    groundtruth: {image key: KeyframeBoxes or (boxes, labels[, scores])},
      e.g. `read_csv(..., is_groundtruth=True)`. Boxes (y1, x1, y2, x2).
    detections: the same with scores, e.g. `read_csv(...)`.
    class_ids: the label-map class ids: the whitelist and the classes
      averaged (those with ground truth).
    exclusions: image keys to drop from both sides (`read_exclusions`).
    iou_threshold: a detection matches a ground-truth box at IoU >= this.
    detection_capacity: detection rows kept per keyframe (highest scores,
      ties in input order) after the whitelist; 0 = no cap.

  Returns:
    'mAP': mean AP over classes with ground truth (NaN if there are none).
    'per_class_ap': {class id: AP} for every id in class_ids, NaN without
      ground truth.
    'per_class_num_groundtruth': {class id: ground-truth instances}.
    'per_class_num_detections': {class id: detections evaluated}.
    'num_evaluated_classes': classes with ground truth (also under
      'num_classes_with_groundtruth').
    'num_keyframes': keyframes with ground truth or detections left after
      exclusions and the whitelist.
    'iou_threshold': the threshold used.
  """
  class_array = _class_array(class_ids)
  if not 0.0 <= iou_threshold <= 1.0:
    raise ValueError(f'iou_threshold must be in [0, 1], got {iou_threshold}')
  excluded = {_normalize_key(k) for k in exclusions}
  gt = _prepare(groundtruth, class_array, excluded, True, 0)
  det = _prepare(detections, class_array, excluded, False, detection_capacity)

  det_labels, det_scores, det_tp = [], [], []
  for key, frame in det.items():
    boxes = frame.boxes
    valid = (boxes[:, 0] < boxes[:, 2]) & (boxes[:, 1] < boxes[:, 3])
    if not valid.all():
      frame = _take(frame, valid)
    if not frame.labels.size:
      continue
    if key in gt:
      is_tp = _match_keyframe(frame, gt[key], iou_threshold)
    else:  # No ground truth on this keyframe: all false positives.
      is_tp = np.zeros(frame.labels.size, bool)
    det_labels.append(frame.labels)
    det_scores.append(frame.scores)
    det_tp.append(is_tp)
  det_labels = np.concatenate(det_labels or [np.zeros(0, np.int64)])
  det_scores = np.concatenate(det_scores or [np.zeros(0)])
  det_tp = np.concatenate(det_tp or [np.zeros(0, bool)])
  gt_labels = np.concatenate(
      [f.labels for f in gt.values()] or [np.zeros(0, np.int64)])

  per_class_ap, num_gt, num_det = {}, {}, {}
  for class_id in class_array.tolist():
    num_gt[class_id] = int(np.count_nonzero(gt_labels == class_id))
    mine = det_labels == class_id
    num_det[class_id] = int(np.count_nonzero(mine))
    per_class_ap[class_id] = average_precision(det_scores[mine], det_tp[mine],
                                               num_gt[class_id])
  evaluated = [per_class_ap[c] for c in per_class_ap if num_gt[c] > 0]
  return {
      'mAP': float(np.mean(evaluated)) if evaluated else float('nan'),
      'per_class_ap': per_class_ap,
      'per_class_num_groundtruth': num_gt,
      'per_class_num_detections': num_det,
      'num_evaluated_classes': len(evaluated),
      'num_classes_with_groundtruth': len(evaluated),
      'num_keyframes': len(set(gt) | set(det)),
      'iou_threshold': float(iou_threshold),
  }


def official_metric_names(result: Mapping[str, Any],
                          categories: Sequence[Mapping[str, Any]]
                          ) -> Dict[str, float]:
  """`frame_map` output under the names the official script prints.

  Args:
    result: output of `frame_map` / `evaluate_files`.
    categories: [{'id', 'name'}] from `read_label_map`.

  Returns:
    {'PascalBoxes_Precision/mAP@0.5IOU': mAP,
     'PascalBoxes_PerformanceByCategory/AP@0.5IOU/<name>': AP, ...}.
  """
  threshold = result.get('iou_threshold', DEFAULT_IOU_THRESHOLD)
  metrics = {f'PascalBoxes_Precision/mAP@{threshold}IOU': result['mAP']}
  for category in categories:
    ap = result['per_class_ap'].get(category['id'], float('nan'))
    metrics[f'PascalBoxes_PerformanceByCategory/AP@{threshold}IOU/'
            f'{category["name"]}'] = ap
  return metrics


def evaluate_files(groundtruth_csv: PathOrFile,
                   detections_csv: PathOrFile,
                   label_map: PathOrFile,
                   exclusions_csv: Optional[PathOrFile] = None,
                   iou_threshold: float = DEFAULT_IOU_THRESHOLD
                   ) -> Dict[str, Any]:
  """The official evaluation from files.

  Args:
    groundtruth_csv: AVA ground-truth CSV (8 columns, person_id last).
    detections_csv: predictions `video_id,timestamp,x1,y1,x2,y2,action,score`.
    label_map: pbtxt label map, e.g. ava_action_list_v2.2_for_activitynet_2019.
    exclusions_csv: optional excluded-timestamps CSV.
    iou_threshold: matching threshold (0.5 in the official protocol).

  Returns:
    `frame_map`'s dict plus 'class_names' ({id: name}) and 'categories'.
  """
  categories, class_ids = read_label_map(label_map)
  excluded = read_exclusions(exclusions_csv)
  groundtruth = read_csv(groundtruth_csv, class_ids, 0, is_groundtruth=True)
  detections = read_csv(detections_csv, class_ids, DETECTION_CAPACITY)
  result = frame_map(groundtruth, detections, class_ids, excluded,
                     iou_threshold=iou_threshold)
  result['class_names'] = {c['id']: c['name'] for c in categories}
  result['categories'] = categories
  return result


# ----------------------------------------------------------------------------
# Streaming accumulator.


class AvaEvaluator:
  """Accumulates keyframe ground truth and detections batch by batch.

  Boxes are normalized (y1, x1, y2, x2). Calls for the same image key
  accumulate (a keyframe may be split over batches, so feed each box once).
  Rows whose label is not a class id are dropped by the whitelist, so padding
  rows with label 0 or -1 can be passed as they are. `result` runs
  `frame_map`, so the protocol is exactly that of the file evaluation.

  With `class_ids` given to the constructor the whitelist and the
  per-keyframe cap are applied as detections arrive (memory stays at most
  `capacity` rows per keyframe; the same rows as capping at the end);
  without it every row is kept until `result` (for AVA with one row per
  (person, class) that can be gigabytes: pass class_ids).
  """

  def __init__(self, class_ids: Optional[Iterable[int]] = None,
               capacity: int = DETECTION_CAPACITY):
    """Constructor.

    Args:
      class_ids: optional label-map class ids (whitelist applied on arrival).
      capacity: detection rows kept per keyframe (official: 50; 0 = all).
    """
    self._class_array = (None if class_ids is None else
                         _class_array(class_ids))
    self._capacity = capacity
    self.reset()

  def reset(self) -> None:
    self._groundtruth: Dict[str, List[KeyframeBoxes]] = {}
    self._detections: Dict[str, List[KeyframeBoxes]] = {}

  def add_groundtruth(self, image_key: Any, boxes: np.ndarray,
                      labels: np.ndarray) -> None:
    """Adds ground truth: boxes [N, 4], labels [N] action ids."""
    key = _normalize_key(image_key)
    frame = _as_keyframe((boxes, labels), key, is_groundtruth=True)
    if self._class_array is not None:
      frame = _whitelisted(frame, self._class_array)
    self._groundtruth.setdefault(key, []).append(frame)

  def add_detections(self, image_key: Any, boxes: np.ndarray,
                     labels: np.ndarray, scores: np.ndarray) -> None:
    """Adds detections: boxes [M, 4], labels [M], scores [M]."""
    key = _normalize_key(image_key)
    frame = _as_keyframe((boxes, labels, scores), key, is_groundtruth=False)
    if self._class_array is None:
      self._detections.setdefault(key, []).append(frame)
      return
    frame = _whitelisted(frame, self._class_array)
    previous = self._detections.get(key, [])
    # Stable top-k of (kept rows, new rows) = top-k of all rows so far.
    self._detections[key] = [_top_scoring(_concat(previous + [frame]),
                                          self._capacity)]

  def groundtruth(self) -> Dict[str, KeyframeBoxes]:
    """The accumulated ground truth, {image key: KeyframeBoxes}."""
    return {k: _concat(v) for k, v in self._groundtruth.items()}

  def detections(self) -> Dict[str, KeyframeBoxes]:
    """The accumulated detections (capped only if class_ids was given)."""
    return {k: _concat(v) for k, v in self._detections.items()}

  def write_detections(self, path: PathOrFile) -> int:
    """Writes the accumulated detections as an official-format CSV.

    Args:
      path: output path or open text file.

    Returns:
      The number of rows written (capped rows if class_ids was given).
    """
    return write_detections_csv(path, rows_from_keyframes(self.detections()))

  def result(self, class_ids: Optional[Iterable[int]] = None,
             exclusions: Iterable[str] = (),
             iou_threshold: float = DEFAULT_IOU_THRESHOLD) -> Dict[str, Any]:
    """`frame_map` of everything added so far.

    Args:
      class_ids: label-map class ids; defaults to the constructor's (and must
        equal them when both are given).
      exclusions: image keys to drop.
      iou_threshold: matching threshold.

    Returns:
      See `frame_map`.
    """
    if class_ids is None:
      if self._class_array is None:
        raise ValueError('AvaEvaluator.result needs class_ids')
      class_array = self._class_array
    else:
      class_array = _class_array(class_ids)
      if (self._class_array is not None and
          not np.array_equal(class_array, self._class_array)):
        raise ValueError('class_ids differ from those the evaluator was '
                         'built with (its cap was applied after that '
                         'whitelist)')
    return frame_map(self.groundtruth(), self.detections(), class_array,
                     exclusions, iou_threshold, self._capacity)


# ----------------------------------------------------------------------------
# Command line.


def format_result(result: Mapping[str, Any],
                  class_names: Optional[Mapping[int, str]] = None) -> str:
  """Human-readable mAP and per-class AP table."""
  class_names = class_names or result.get('class_names', {})
  total = len(result['per_class_ap'])
  lines = [f'frame-mAP@{result.get("iou_threshold", 0.5)}IOU: '
           f'{result["mAP"]:.6f} (averaged over '
           f'{result["num_evaluated_classes"]} of {total} classes with ground '
           'truth)',
           f'{"id":>4}  {"AP":>8}  {"#GT":>7}  {"#det":>8}  name']
  for class_id, ap in result['per_class_ap'].items():
    ap_text = f'{ap:8.6f}' if not math.isnan(ap) else f'{"n/a":>8}'
    lines.append(f'{class_id:>4}  {ap_text}  '
                 f'{result["per_class_num_groundtruth"][class_id]:>7}  '
                 f'{result["per_class_num_detections"][class_id]:>8}  '
                 f'{class_names.get(class_id, "")}')
  return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      description='AVA v2.2 / AVA-Kinetics frame-mAP@0.5IOU (official '
                  'ActivityNet protocol).')
  parser.add_argument('-g', '--groundtruth', required=True,
                      help='ground-truth CSV')
  parser.add_argument('-d', '--detections', required=True,
                      help='detections CSV: video_id,timestamp,x1,y1,x2,y2,'
                           'action_id,score')
  parser.add_argument('-l', '--labelmap', required=True,
                      help='label map pbtxt (the evaluated classes)')
  parser.add_argument('-e', '--exclusions', default=None,
                      help='optional excluded-timestamps CSV')
  args = parser.parse_args(argv)
  result = evaluate_files(args.groundtruth, args.detections, args.labelmap,
                          args.exclusions)
  print(format_result(result))
  return 0


def console_main(argv: Optional[Sequence[str]] = None) -> None:
  """`main` with exit statuses: a missing / malformed file is exit 2."""
  errors.run_main(main, argv, user_errors=(ValueError, OSError))


if __name__ == '__main__':
  console_main()
