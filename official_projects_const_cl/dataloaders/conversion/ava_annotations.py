"""The converter's reading of AVA CSVs: keyframes, person boxes, bad rows.

Annotation rows `video_id,timestamp,x1,y1,x2,y2,action_id,person_id` are
grouped into one box per (keyframe, person, box) with all its actions;
detection and excluded-timestamp CSVs likewise. Unusable rows are counted
by reason and reported with file and line (`Tally`). Formats:
docs/datasets.md (AVA).
"""

import collections
import csv
import dataclasses
import math
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from absl import logging


_MAX_LOGGED = 20


_ANNOTATION_COLUMNS = 'video_id,timestamp,x1,y1,x2,y2,action_id,person_id'


Box = Tuple[float, float, float, float]  # ymin, xmin, ymax, xmax.


Where = Tuple[str, int]  # (file, line).


class _BadRow(Exception):
  """A row that cannot be used: `reason` code and a detail for people."""

  def __init__(self, reason: str, detail: str):
    super().__init__(f'{reason}: {detail}')
    self.reason = reason
    self.detail = detail


def _iter_csv(path: str) -> Iterator[Tuple[int, List[str]]]:
  """(line number, fields) of a CSV's non-blank, non-comment rows."""
  with open(path, newline='', encoding='utf-8-sig') as f:
    for line, row in enumerate(csv.reader(f), start=1):
      if not row or not ''.join(row).strip() or row[0].lstrip().startswith(
          '#'):
        continue
      yield line, row


def _is_header(line: int, row: List[str]) -> bool:
  return line == 1 and len(row) > 1 and bool(
      re.fullmatch(r'[A-Za-z_ ]+', row[1].strip()))


def _number(text: str, what: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise _BadRow('non_numeric', f'{what} {text!r} is not a number') from None
  if not math.isfinite(value):
    raise _BadRow('non_numeric', f'{what} {text!r} is not finite')
  return value


def _integer(text: str, what: str) -> int:
  value = _number(text, what)
  if value != int(value):
    raise _BadRow('non_numeric', f'{what} {text!r} is not an integer')
  return int(value)


def _timestamp(text: str) -> int:
  value = _number(text, 'timestamp')
  if abs(value - round(value)) > 1e-6:
    raise _BadRow('non_integer_timestamp',
                  f'timestamp {text!r} is not a whole second (AVA keyframes '
                  'are at whole seconds)')
  return int(round(value))


def _box(fields: Sequence[str], tolerance: float) -> Box:
  """(ymin, xmin, ymax, xmax) of CSV corners `x1,y1,x2,y2`, clipped."""
  x1, y1, x2, y2 = (_number(v, name) for v, name in
                    zip(fields, ('x1', 'y1', 'x2', 'y2')))
  if min(x1, y1, x2, y2) < -tolerance or max(x1, y1, x2, y2) > 1 + tolerance:
    raise _BadRow('box_outside_image',
                  f'box x1,y1,x2,y2 = {x1:g},{y1:g},{x2:g},{y2:g} is outside '
                  f'[0, 1] by more than {tolerance:g} (normalized corners '
                  'expected)')
  x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in (x1, y1, x2, y2))
  if x2 <= x1 or y2 <= y1:
    raise _BadRow('degenerate_box',
                  f'box x1,y1,x2,y2 = {x1:g},{y1:g},{x2:g},{y2:g} has x2 <= '
                  'x1 or y2 <= y1')
  return (y1, x1, y2, x2)


def _box_key(box: Box) -> Tuple[int, ...]:
  return tuple(int(round(v * 1000)) for v in box)


@dataclasses.dataclass
class PersonBox:
  """One annotated person at a keyframe.

  Attributes:
    box: normalized (ymin, xmin, ymax, xmax).
    person_id: the CSV person id (-1 when the CSV has none).
    actions: 1-based action ids, in CSV order.
  """
  box: Box
  person_id: int
  actions: List[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Keyframe:
  """Everything known about one (video, keyframe).

  Attributes:
    video_id: the CSV video id.
    timestamp: seconds, in the CSV's clock.
    boxes: ground-truth persons.
    detections: (box, score) of detected persons.
    rows: (file, line) of every CSV row of the keyframe, for reports.
  """
  video_id: str
  timestamp: int
  boxes: List[PersonBox] = dataclasses.field(default_factory=list)
  detections: List[Tuple[Box, float]] = dataclasses.field(
      default_factory=list)
  rows: List[Where] = dataclasses.field(default_factory=list)


class Tally:
  """Bad rows, skip counters and the warnings logged about them."""

  def __init__(self):
    self.bad_rows: List[Tuple[str, int, str]] = []
    self.rows_skipped: Dict[str, int] = collections.Counter()
    self.keyframes_skipped: Dict[str, int] = collections.Counter()
    self.rows_read = 0
    self._logged = 0

  def _warn(self, message: str):
    self._logged += 1
    if self._logged <= _MAX_LOGGED:
      logging.warning('%s', message)
    elif self._logged == _MAX_LOGGED + 1:
      logging.warning('More bad rows / skipped keyframes: see the summary and '
                      'the bad rows CSV.')

  def bad_row(self, where: Where, error: _BadRow):
    self.bad_rows.append((where[0], where[1], str(error)))
    self.rows_skipped[error.reason] += 1
    self._warn(f'{where[0]}:{where[1]}: {error}')

  def bad_keyframe(self, keyframe: Keyframe, reason: str, detail: str):
    self.keyframes_skipped[reason] += 1
    for file, line in keyframe.rows:
      self.bad_rows.append((file, line, f'{reason}: {detail}'))
    self._warn(f'Skipping keyframe {keyframe.video_id} at '
               f'{keyframe.timestamp} s ({reason}): {detail}')


def _no_valid_row_error(path: str, tally: Tally, valid: int):
  if valid:
    return
  mine = [b for b in tally.bad_rows if b[0] == path]
  if not mine:
    raise ValueError(f'{path} has no rows.')
  raise ValueError(f'{path} has no valid row: {len(mine)} bad rows, e.g. line '
                   f'{mine[0][1]}: {mine[0][2]}. Expected rows '
                   f'{_ANNOTATION_COLUMNS}.')


def read_annotations(path: str, label_map: Optional[Dict[int, str]],
                     box_tolerance: float, tally: Tally
                     ) -> Dict[Tuple[str, int], Keyframe]:
  """Reads an AVA annotations CSV into keyframes with grouped person boxes.

  Raises:
    ValueError: if the CSV has no valid row, or none of its actions is in
      the label map.
  """
  keyframes: Dict[Tuple[str, int], Keyframe] = {}
  index: Dict[Tuple[str, int], Dict[Tuple[int, Tuple[int, ...]], int]] = {}
  valid = 0
  dropped_keys = set()
  dropped_actions = collections.Counter()
  for line, row in _iter_csv(path):
    if _is_header(line, row):
      continue
    where = (path, line)
    try:
      if len(row) not in (7, 8):
        raise _BadRow('wrong_column_count',
                      f'{len(row)} columns, expected 8: {_ANNOTATION_COLUMNS}')
      video_id = row[0].strip()
      if not video_id:
        raise _BadRow('non_numeric', 'empty video_id')
      timestamp = _timestamp(row[1])
      box = _box(row[2:6], box_tolerance)
      action = _integer(row[6], 'action_id')
      person = _integer(row[7], 'person_id') if len(row) == 8 else -1
    except _BadRow as e:
      tally.bad_row(where, e)
      continue
    valid += 1
    key = (video_id, timestamp)
    if label_map is not None and action not in label_map:
      tally.rows_skipped['action_not_in_label_map'] += 1
      dropped_actions[action] += 1
      dropped_keys.add(key)
      continue
    keyframe = keyframes.get(key)
    if keyframe is None:
      keyframe = keyframes[key] = Keyframe(video_id, timestamp)
      index[key] = {}
    group = (person, _box_key(box))
    b = index[key].get(group)
    if b is None:
      b = index[key][group] = len(keyframe.boxes)
      keyframe.boxes.append(PersonBox(box, person))
    if action in keyframe.boxes[b].actions:
      tally.bad_row(where, _BadRow(
          'duplicate_label', f'person {person} of {video_id} at {timestamp} s '
          f'already has action {action} with this box'))
      continue
    keyframe.boxes[b].actions.append(action)
    keyframe.rows.append(where)
  _no_valid_row_error(path, tally, valid)
  tally.rows_read += valid
  if not keyframes and dropped_actions:
    raise ValueError(
        f'None of the action ids of {path} is in the label map (ids found: '
        + ', '.join(str(a) for a in sorted(dropped_actions)[:20])
        + '): wrong label map?')
  no_label = dropped_keys - set(keyframes)
  if no_label:
    tally.keyframes_skipped['no_action_in_label_map'] += len(no_label)
  if dropped_actions:
    logging.info('%s: dropped %d rows of %d action ids not in the label map '
                 '(%s).', path, sum(dropped_actions.values()),
                 len(dropped_actions),
                 ', '.join(f'{a}: {n}' for a, n in
                           sorted(dropped_actions.items())[:10]))
  return keyframes


def read_detections(path: str, box_tolerance: float, tally: Tally
                    ) -> Dict[Tuple[str, int], Keyframe]:
  """Reads a person-detection CSV (`video_id,timestamp,x1,y1,x2,y2,...,score`).

  Raises:
    ValueError: if the CSV has no valid row.
  """
  out: Dict[Tuple[str, int], Keyframe] = {}
  index: Dict[Tuple[str, int], Dict[Tuple[int, ...], int]] = {}
  valid = 0
  for line, row in _iter_csv(path):
    if _is_header(line, row):
      continue
    where = (path, line)
    try:
      if len(row) < 7:
        raise _BadRow('wrong_column_count',
                      f'{len(row)} columns, expected at least 7: video_id,'
                      'timestamp,x1,y1,x2,y2,...,score')
      video_id = row[0].strip()
      if not video_id:
        raise _BadRow('non_numeric', 'empty video_id')
      timestamp = _timestamp(row[1])
      box = _box(row[2:6], box_tolerance)
      score = _number(row[-1], 'score')
    except _BadRow as e:
      tally.bad_row(where, e)
      continue
    valid += 1
    key = (video_id, timestamp)
    keyframe = out.get(key)
    if keyframe is None:
      keyframe = out[key] = Keyframe(video_id, timestamp)
      index[key] = {}
    keyframe.rows.append(where)
    d = index[key].get(_box_key(box))
    if d is None:
      index[key][_box_key(box)] = len(keyframe.detections)
      keyframe.detections.append((box, score))
    else:
      tally.rows_skipped['duplicate_detection_merged'] += 1
      if score > keyframe.detections[d][1]:
        keyframe.detections[d] = (keyframe.detections[d][0], score)
  _no_valid_row_error(path, tally, valid)
  return out


def read_excluded_timestamps(path: str, tally: Tally
                             ) -> set:
  """(video_id, timestamp) pairs of an excluded-timestamps CSV."""
  out = set()
  for line, row in _iter_csv(path):
    if _is_header(line, row):
      continue
    try:
      if len(row) != 2:
        raise _BadRow('wrong_column_count',
                      f'{len(row)} columns, expected 2: video_id,timestamp')
      if not row[0].strip():
        raise _BadRow('non_numeric', 'empty video_id')
      out.add((row[0].strip(), _timestamp(row[1])))
    except _BadRow as e:
      tally.bad_row((path, line), e)
  return out
