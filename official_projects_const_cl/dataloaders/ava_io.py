r"""AVA files: label map, annotation / detection CSVs, excluded timestamps.

The one reader of these files, used by the converter, the localization task
and the frame-mAP command line. CSV rows are `video_id,timestamp,x1,y1,x2,y2,
action_id[,person_id | score]` with normalized corners, and under the
'current' AVA protocol also `video_id,timestamp` (a keyframe without actions;
`configs/ava_protocols.py`); in memory boxes are (y1, x1, y2, x2)
(`ops/ava_keyframes.py`). The conversion happens only in `read_csv` and
`rows_from_keyframes`. Every error on a file's content is a ValueError that
names the file (and the line where there is one).
"""

import contextlib
import csv
import heapq
import math
import os
import re
from typing import (Any, Dict, IO, Iterable, Iterator, List, Mapping,
                    Optional, Sequence, Set, Tuple, Union)

import numpy as np

from official_projects_const_cl.configs import ava_protocols
from official_projects_const_cl.ops import ava_keyframes

PathOrFile = Union[str, os.PathLike, IO[str]]
KeyframeBoxes = ava_keyframes.KeyframeBoxes


@contextlib.contextmanager
def _open_text(path: PathOrFile) -> Iterator[Tuple[IO[str], str]]:
  """Yields (text file, display name) for a path or an open text file.

  A file that is not UTF-8 text fails (while it is read in the block) with a
  ValueError naming it, not with the decoder's nameless message.
  """
  name = (str(getattr(path, 'name', '<stream>')) if hasattr(path, 'read')
          else os.fspath(path))
  try:
    if hasattr(path, 'read'):
      yield path, name
    else:
      with open(path, 'r', newline='', encoding='utf-8') as f:
        yield f, name
  except UnicodeDecodeError as e:
    raise ValueError(f'{name} is not UTF-8 text ({e.reason}); expected a '
                     'CSV / pbtxt text file') from None


def _row_error(name: str, line_no: int, problem: str) -> ValueError:
  return ValueError(f'{name}, line {line_no}: {problem}')


def _csv_rows(f: IO[str], name: str) -> Iterator[Tuple[int, List[str]]]:
  """(line number, row) of the non-blank rows; csv.Error names the line."""
  reader = csv.reader(f)
  while True:
    try:
      row = next(reader)
    except StopIteration:
      return
    except csv.Error as e:
      raise _row_error(name, reader.line_num, f'not a CSV row ({e})') from None
    if not _is_blank(row):
      yield reader.line_num, row


def _is_blank(row: Sequence[str]) -> bool:
  return all(not cell.strip() for cell in row)


_PBTXT_TOKEN = re.compile(r"""
    \s*(?:
      (?P<comment>\#[^\n]*)
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    | (?P<punct>[{}<>\[\]:;,])
    | (?P<word>[^\s{}<>\[\]:;,"'\#]+)
    )""", re.VERBOSE)

_CLOSING = {'{': '}', '<': '>'}
# Entry blocks: 'item' (OD API / ActivityNet), 'label' (AVA v2.2 action list).
_LABEL_FIELDS = ('item', 'label')
_LABEL_BLOCK = re.compile(r'\b(?:item|label)\s*:?\s*[{<]')


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
  """Reads an AVA / OD API label map (pbtxt): the one label-map reader.

  Accepts `item { name: "..." id: N }` entries (the ActivityNet 2019 file)
  and `label { name: "..." label_id: N ... }` entries (`ava_action_list_v2.2
  .pbtxt`) in any layout (one line or several, comments allowed);
  `label_id` is accepted for `id` and `display_name` for `name` (`name` wins
  when both are given, as in the official reader). Other fields are ignored.

  Args:
    path: file path or open text file.

  Returns:
    categories: [{'id': int, 'name': str}] in file order.
    class_ids: the set of ids (the class whitelist).

  Raises:
    FileNotFoundError: if the file does not exist.
    ValueError: naming the file (and the line), when it has no item, is not
      UTF-8 text, on a syntax error, an item without an integer id, an id < 1
      (the OD API requires 1-indexed classes) or an id given twice.
  """
  with _open_text(path) as (f, name):
    text = f.read()
  text = text[1:] if text.startswith('\ufeff') else text
  if not _LABEL_BLOCK.search(text):
    raise ValueError(f'Label map {name} has no "item {{ name: ... id: ... }}" '
                     'block.')
  categories = []
  class_ids = set()
  for field, value, offset in _parse_pbtxt(text, name):
    if field not in _LABEL_FIELDS or not isinstance(value, list):
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
      raise _row_error(name, line, f'label map id {class_id} is given twice')
    class_name = entry.get('name', entry.get('display_name', str(class_id)))
    categories.append({'id': class_id, 'name': class_name})
    class_ids.add(class_id)
  if not categories:
    raise ValueError(f'Label map {name} has no class: no top-level "item {{ '
                     'name: ... id: ... }" block (the evaluated classes).')
  return categories, class_ids


def label_names(path: PathOrFile) -> Dict[int, str]:
  """{action id: name} of a label map (`read_label_map`)."""
  categories, _ = read_label_map(path)
  return {c['id']: c['name'] for c in categories}


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
    for line_no, row in _csv_rows(f, name):
      if len(row) != 2:
        raise _row_error(name, line_no, f'expected 2 columns '
                         f'(video_id,timestamp), got {len(row)}: {row!r}')
      try:
        excluded.add(ava_keyframes.make_image_key(row[0], row[1]))
      except ValueError as e:
        raise _row_error(name, line_no, str(e)) from None
  return excluded


def _parse_row(row: Sequence[str], is_groundtruth: bool, protocol: str
               ) -> Tuple[str, float, int, float, float, float, float]:
  """(image key, score, action id, y1, x1, y2, x2) of one CSV row."""
  kind = ('video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]'
          if is_groundtruth else
          'video_id,timestamp,x1,y1,x2,y2,action_id[,score]')
  if len(row) == 2 and protocol == ava_protocols.PROTOCOL_2018:
    raise ValueError(
        f'a two-column row {row!r} (video_id,timestamp: a keyframe without '
        "actions) belongs to the 'current' AVA protocol; the 2018 one has 7 "
        f'or 8 columns ({kind}). Evaluate with --protocol=current '
        '(task.evaluation.protocol=current) or remove the row')
  if len(row) not in (7, 8):
    extra = (' (or 2: video_id,timestamp)'
             if protocol == ava_protocols.PROTOCOL_CURRENT else '')
    raise ValueError(f'expected 7 or 8 columns ({kind}){extra}, got '
                     f'{len(row)}: {row!r}')
  key = ava_keyframes.make_image_key(row[0], row[1])
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
             is_groundtruth: bool = False,
             protocol: str = ava_protocols.DEFAULT_PROTOCOL
             ) -> Dict[str, KeyframeBoxes]:
  """Reads an AVA CSV into {image key: KeyframeBoxes}.

  Rows are `video_id,timestamp,x1,y1,x2,y2,action_id[,last]` with normalized
  coordinates. For detections `last` is the score (1.0 when absent, as in the
  official reader); for ground truth (`is_groundtruth=True`) it is the
  person id, which is ignored, and the score is 1.0.

  Under protocol 'current' a row may also be `video_id,timestamp` (a
  keyframe without actions), and every keyframe named by a row is a key of
  the result, with no boxes when none of its rows is left (two-column rows,
  classes outside the whitelist): `frame_map` then evaluates it, as the
  current ActivityNet script evaluates every key of its ground-truth file.
  Under '2018' a two-column row is an error naming the file and the line,
  not a skipped row: the 2018 script stops on it ("Wrong number of
  columns"), so there is no 2018 number of such a file to reproduce, and a
  file with such rows was written for the current rules (its unlisted
  keyframes are meant to be ignored, while '2018' would count their
  detections as false positives).

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
    protocol: '2018' or 'current' (`configs/ava_protocols.py`), see above.

  Returns:
    Keyframes in order of first appearance. Within a keyframe the rows are
    sorted by descending score, ties in file order (ground truth thus stays in
    file order).

  Raises:
    ValueError: naming the file and the line, on a malformed row (wrong number
      of columns, a field that is not a number, a non-finite value, an
      inverted ground-truth box); naming the file if it is not UTF-8 text.
      Blank lines are skipped.
  """
  ava_protocols.check_protocol(protocol)
  keep_every_key = protocol == ava_protocols.PROTOCOL_CURRENT
  whitelist = set(class_ids) if class_ids else None
  entries: Dict[str, list] = {}
  with _open_text(path) as (f, name):
    for line_no, row in _csv_rows(f, name):
      if len(row) == 2 and keep_every_key:
        try:
          entries.setdefault(ava_keyframes.make_image_key(row[0], row[1]), [])
        except ValueError as e:
          raise _row_error(name, line_no, str(e)) from None
        continue
      try:
        key, score, action_id, y1, x1, y2, x2 = _parse_row(row, is_groundtruth,
                                                           protocol)
      except ValueError as e:
        raise _row_error(name, line_no, str(e)) from None
      if keep_every_key:
        entries.setdefault(key, [])
      if whitelist is not None and action_id not in whitelist:
        continue
      # The line number only breaks ties between identical rows.
      item = (score, action_id, y1, x1, y2, x2, line_no)
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
    timestamp = ava_keyframes.timestamp_value(row[1])
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
    frame = ava_keyframes.as_keyframe(value, key, is_groundtruth=False)
    video_id, timestamp = ava_keyframes.split_image_key(key)
    for (y1, x1, y2, x2), label, score in zip(frame.boxes, frame.labels,
                                              frame.scores):
      rows.append((video_id, timestamp, float(x1), float(y1), float(x2),
                   float(y2), int(label), float(score)))
  return rows


def write_keyframes_csv(path: PathOrFile,
                        keyframes: Mapping[str, Any]) -> int:
  """Writes {image key: KeyframeBoxes} detections as an official CSV.

  Returns:
    The number of rows written.
  """
  return write_detections_csv(path, rows_from_keyframes(keyframes))
