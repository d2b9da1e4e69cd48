"""Converts AVA v2.2 / AVA-Kinetics keyframe labels into keyframe TFRecords.

One `tf.train.SequenceExample` per (video, keyframe), in the format of the
AVA constants of `dataloaders/features.py`:

  feature list `image/encoded` (IMAGE_KEY): the clip, `num_frames` JPEG frames
      at `frame_stride` source frames apart, centred on the keyframe: source
      frame indices `k + (i - num_frames // 2) * frame_stride`, i < num_frames,
      where k = round((timestamp - offset) * fps) is the keyframe's source
      frame. Indices outside the video are clamped to its first / last frame
      (edge frames repeated).
  context:
    KEYFRAME_TIMESTAMP_KEY   the CSV timestamp (whole seconds);
    KEYFRAME_INDEX_KEY       num_frames // 2, the keyframe's position;
    CLIP_STRIDE_KEY          frame_stride;
    MEDIA_ID_KEY             the CSV video_id (AVA movie / YouTube id), so
                             (media_id, timestamp) is the key of the official
                             AVA evaluation;
    FRAME_RATE_KEY           frames per second of the STORED frames, i.e.
                             source fps / frame_stride (as in the clip
                             records, where it is the rate of `image/encoded`);
    IMAGE_HEIGHT_KEY / IMAGE_WIDTH_KEY   the stored frame size;
    GT_BBOX_KEYS, GT_PERSON_KEY          one box per annotated person
                             (normalized ymin, xmin, ymax, xmax);
    GT_LABEL_BOX_KEY, GT_LABEL_KEY       the (box index, 1-based action id)
                             pairs: several per box for multi-label persons;
    DET_BBOX_KEYS, DET_SCORE_KEY         detected person boxes and scores
                             (empty without a detection CSV).

Inputs:
  * annotations CSV (`ava_{train,val}_v2.2.csv`, AVA-Kinetics
    `kinetics_{train,val}_v1.0.csv`): rows `video_id,timestamp,x1,y1,x2,y2,
    action_id,person_id` (normalized corners; a row without person_id gets
    -1). Rows of one (video, timestamp) with the same person_id and box
    (rounded to 1e-3, the CSVs' precision) are ONE box with several labels;
    a repeated (box, action) row is a bad row (`duplicate_label`).
  * `excluded_timestamps` CSV (`video_id,timestamp`): those keyframes are not
    written (counted as `excluded_timestamp`).
  * `label_map` pbtxt: `item { name: "..." id: N }` blocks (also `label {
    name / display_name ... label_id: N }`). Rows of other action ids are
    dropped and counted (`action_not_in_label_map`; not listed as bad rows:
    AVA train holds many rows of non-evaluated classes); a box left without
    label is dropped, a keyframe left without box too
    (`no_action_in_label_map`). Without a label map every action id is kept.
  * `detections` CSV (optional): rows `video_id,timestamp,x1,y1,x2,y2,...,
    score` (score in the last column, at least 7 columns). Rows repeating a
    box of a keyframe (files listing one row per box and class) are merged,
    keeping the highest score (`duplicate_detection_merged`).
    Decision: with a detection CSV, keyframes with detections but no ground
    truth are written too (no GT boxes; `detection_keyframes=True`, the
    default): evaluating on detected boxes needs every keyframe with GT
    (missed persons) AND every keyframe with detections (false positives).
    `detection_keyframes=False` (CLI `--no_detection_keyframes`) writes only
    the GT keyframes, with their detections attached (e.g. training with
    detected boxes as extra proposals); the other detection rows are counted
    (`detection_without_gt_keyframe`).
  * the video source, exactly one of:
    - `frames_dir`: frames already extracted at `fps` (default 30):
      `<frames_dir>/<name>/<name>_%06d.jpg`, 1-based (SlowFast layout;
      `frame_pattern` / `frame_start_index` for others). Frame folders are
      found anywhere under `frames_dir`, named like the video.
    - `videos_dir`: `<name>.<mp4|mkv|webm|avi|mov|m4v>` anywhere under it,
      decoded with PyAV (`convert_videos.iter_video_frames`): the keyframes
      of a video are read in one pass from a seek to the first needed frame,
      re-seeking over gaps longer than `seek_gap_s`; every needed frame is
      decoded and JPEG-encoded once (a 15-min AVA segment is decoded once,
      not once per keyframe). Frames are resampled to `fps`: source frame i
      is the decoded frame nearest to time i / fps.
    - `video_records`: a glob of this project's clip TFRecords
      (`image/encoded`, `clip/media_id`, `clip/frame_rate` or
      `image/timestamp`); frame i of a record is at i / clip/frame_rate
      (`fps` is not used). This converts the demo world
      (`demo_data.write_ava_csv` CSVs).
    `timestamp_offset_s` is the time of the first frame of a source in the
    CSV's clock: 900 for AVA frames / videos cut to the 15-min segment
    (ffmpeg -ss 900), 0 for full movies and the demo. Sources named like
    Kinetics clips, `<youtube_id>_<start:06d>_<end:06d>`
    (`convert_videos.kinetics_clip_name`), serve the CSV video_id
    `<youtube_id>` (AVA-Kinetics) with their own offset `start`; a keyframe
    goes to the clip whose [start, end] holds it.

Bad input (never a silent wrong result):
  * a missing required input path, no source / several sources, bad
    options, an unreadable label map: an immediate error naming it; an
    annotations CSV without any valid row (or whose actions are all outside
    the label map) too.
  * bad rows (reported with file and line, counted, the rest converted):
    `wrong_column_count`, `non_numeric` (also empty / NaN fields),
    `non_integer_timestamp`, `box_outside_image` (a coordinate beyond
    [0, 1] by more than `box_tolerance`; smaller excursions are clipped),
    `degenerate_box` (x2 <= x1 or y2 <= y1 after clipping),
    `duplicate_label`. A first line whose timestamp field is a word is a
    header and skipped.
  * keyframes not written (counted; every row of the keyframe is reported
    with the reason): `unknown_video` (no source of that name),
    `ambiguous_video` (several sources of that name hold it),
    `keyframe_outside_video` (its frame is before the first or after the
    last frame of the source), `unreadable_frame` (a frame file / record
    frame that is missing or does not decode; the reason names it),
    `unreadable_video` (a video that cannot be decoded).
Bad rows and skipped keyframes go to `<output_prefix>_bad_rows.csv` (header
`file,line,reason`; reason = `code: detail`), written when there are some
(an older one is removed otherwise). A summary (keyframes written, boxes,
labels, detections, skipped rows and keyframes by reason) is logged, printed
by the CLI and returned as an `AvaConversionReport`.

CLI (`python -m official_projects_const_cl.tools.convert_ava`):
  AVA v2.2 train, SlowFast frames of the 15-min segments:
    --annotations=ava/annotations/ava_train_v2.2.csv
    --excluded_timestamps=ava/annotations/ava_train_excluded_timestamps_v2.2.csv
    --label_map=ava/annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt
    --frames_dir=ava/frames --timestamp_offset_s=900
    --output_prefix=/data/ava/train --num_shards=256
  AVA v2.2 val with person detections, from the cut videos:
    --annotations=ava/annotations/ava_val_v2.2.csv
    --excluded_timestamps=ava/annotations/ava_val_excluded_timestamps_v2.2.csv
    --label_map=ava/annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt
    --detections=ava/annotations/ava_val_predicted_boxes.csv
    --videos_dir=ava/videos_15min --timestamp_offset_s=900
    --output_prefix=/data/ava/val --num_shards=64
  AVA-Kinetics (Kinetics-700 clips <id>_<start>_<end>.mp4):
    --annotations=ava_kinetics_v1_0/kinetics_train_v1.0.csv
    --label_map=ava/annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt
    --videos_dir=kinetics700/train --output_prefix=/data/ava_kinetics/train
    --num_shards=256
  Demo world (records at 10 fps):
    --annotations=DEMO/ava_train.csv --label_map=DEMO/ava_action_list.pbtxt
    --video_records='DEMO/train-*.tfrecord' --num_frames=8
    --output_prefix=DEMO/ava/train
"""

import argparse
import collections
import contextlib
import csv
import dataclasses
import glob
import io
import math
import os
import re
import sys
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.tools import convert_videos
from official_projects_const_cl.tools import tfrecord_writer

DEFAULT_FPS = 30.0
DEFAULT_NUM_FRAMES = 32
DEFAULT_FRAME_STRIDE = 2
DEFAULT_FRAME_PATTERN = '{name}_{index:06d}.jpg'
DEFAULT_BOX_TOLERANCE = 0.01
DEFAULT_SEEK_GAP_S = 5.0
DEFAULT_LOG_EVERY = 500
BAD_ROWS_SUFFIX = '_bad_rows.csv'

_KINETICS_NAME = re.compile(r'(?P<id>.+)_(?P<start>\d{6})_(?P<end>\d{6})')
_MAX_LOGGED = 20
_ANNOTATION_COLUMNS = 'video_id,timestamp,x1,y1,x2,y2,action_id,person_id'

Box = Tuple[float, float, float, float]  # ymin, xmin, ymax, xmax.
Where = Tuple[str, int]  # (file, line).


# ----------------------------------------------------------------------------
# Reading the CSVs and the label map.


def load_label_map(path: str) -> Dict[int, str]:
  """Reads an AVA label map pbtxt: action id -> name.

  Accepts `item { name: "..." id: N }` blocks (the ActivityNet 2019 file)
  and `label { name: "..." label_id: N ... }` blocks (`ava_action_list_v2.2
  .pbtxt`); `display_name` is used when there is no `name`.

  Raises:
    FileNotFoundError: if the file does not exist.
    ValueError: naming the file when it has no item, a block has no id, or
      an id is given twice.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Label map {path} does not exist.')
  with open(path, encoding='utf-8-sig') as f:
    text = '\n'.join(line.split('#', 1)[0] if '"' not in line else line
                     for line in f.read().splitlines())
  blocks = re.findall(r'\b(?:item|label)\s*\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}',
                      text)
  if not blocks:
    raise ValueError(f'Label map {path} has no "item {{ name: ... id: ... }}" '
                     'block.')
  out = {}
  for n, block in enumerate(blocks, start=1):
    ids = re.findall(r'(?<![\w])(?:label_)?id\s*:\s*(-?\d+)', block)
    names = dict(re.findall(r'\b(name|display_name)\s*:\s*"((?:[^"\\]|\\.)*)"',
                            block))
    if len(ids) != 1:
      raise ValueError(f'Label map {path}: block {n} ({block.strip()!r}) needs '
                       'exactly one "id: N" (or "label_id: N").')
    action = int(ids[0])
    if action in out:
      raise ValueError(f'Label map {path}: id {action} is given twice.')
    out[action] = names.get('name', names.get('display_name', str(action)))
  return out


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


class _Tally:
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


def _no_valid_row_error(path: str, tally: _Tally, valid: int):
  if valid:
    return
  mine = [b for b in tally.bad_rows if b[0] == path]
  if not mine:
    raise ValueError(f'{path} has no rows.')
  raise ValueError(f'{path} has no valid row: {len(mine)} bad rows, e.g. line '
                   f'{mine[0][1]}: {mine[0][2]}. Expected rows '
                   f'{_ANNOTATION_COLUMNS}.')


def read_annotations(path: str, label_map: Optional[Dict[int, str]],
                     box_tolerance: float, tally: _Tally
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


def read_detections(path: str, box_tolerance: float, tally: _Tally
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


def read_excluded_timestamps(path: str, tally: _Tally
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


# ----------------------------------------------------------------------------
# Video sources.


@dataclasses.dataclass(frozen=True)
class _Source:
  """A frame folder, video file or clip record holding one video.

  Attributes:
    kind: 'frames', 'video' or 'record'.
    name: folder name / file stem / media id.
    location: the folder or file path; for records, the TFRecord file.
    position: the record's position in its file (records only).
    offset_s: time of the first frame in the CSV's clock.
    end_s: Kinetics clips: the end time in the CSV's clock.
  """
  kind: str
  name: str
  location: str
  position: int = -1
  offset_s: float = 0.0
  end_s: Optional[float] = None


class _SourceIndex:
  """Finds the source of a keyframe by CSV video id and time."""

  def __init__(self, what: str, offset_s: float, parse_kinetics_names: bool):
    self.what = what
    self.offset_s = offset_s
    self.parse_kinetics_names = parse_kinetics_names
    self.by_name: Dict[str, List[_Source]] = collections.defaultdict(list)
    self.count = 0

  def add(self, kind: str, name: str, location: str, position: int = -1):
    self.count += 1
    match = (_KINETICS_NAME.fullmatch(name) if self.parse_kinetics_names
             else None)
    if match:
      source = _Source(kind, name, location, position,
                       float(int(match['start'])), float(int(match['end'])))
      self.by_name[match['id']].append(source)
    else:
      source = _Source(kind, name, location, position, self.offset_s)
    self.by_name[name].append(source)

  def find(self, video_id: str, timestamp: int
           ) -> Tuple[Optional[_Source], str, str]:
    """(source, '', '') or (None, reason, detail)."""
    candidates = self.by_name.get(video_id, [])
    if not candidates:
      return None, 'unknown_video', f'no {self.what} named {video_id!r}'
    holding = [s for s in candidates
               if s.end_s is None or s.offset_s <= timestamp <= s.end_s]
    if len(holding) == 1:
      return holding[0], '', ''
    if len(holding) > 1:
      return None, 'ambiguous_video', (
          f'{len(holding)} {self.what}s hold {video_id!r} at {timestamp} s: '
          + ', '.join(s.location + (f'#{s.position}' if s.position >= 0
                                    else '') for s in holding[:5]))
    if len(candidates) == 1:
      return candidates[0], '', ''  # Its frame check reports the time.
    return None, 'keyframe_outside_video', (
        f'none of the {len(candidates)} Kinetics clips of {video_id!r} ('
        + ', '.join(s.name for s in candidates[:5]) + f') holds {timestamp} s')


def clip_frame_indices(keyframe_index: int, num_frames: int, stride: int,
                       num_source_frames: Optional[int] = None) -> List[int]:
  """Source frame indices of the clip centred on a keyframe.

  `keyframe_index + (i - num_frames // 2) * stride` for i < num_frames,
  clamped to [0, num_source_frames - 1] (edge frames repeated); the upper
  clamp only when `num_source_frames` is given.
  """
  out = []
  for i in range(num_frames):
    index = max(0, keyframe_index + (i - num_frames // 2) * stride)
    if num_source_frames is not None:
      index = min(index, num_source_frames - 1)
    out.append(index)
  return out


def _round_half_up(x: float) -> int:
  return int(math.floor(x + 0.5 + 1e-9))


@dataclasses.dataclass
class AvaConversionReport:
  """Result of `convert_ava`.

  Attributes:
    keyframes_written: examples written (one per keyframe).
    videos_written: videos with at least one keyframe written.
    boxes: ground-truth person boxes written.
    labels: (box, action) labels written.
    detections: detected boxes written.
    rows_read: well-formed rows of the annotations CSV (label-map drops and
      duplicate labels included).
    rows_skipped: rows not used, by reason (bad rows and counted drops).
    keyframes_skipped: keyframes not written, by reason.
    bad_rows: (file, line, 'reason: detail') of every bad row and of every
      row of a skipped keyframe (excluded ones and label-map drops aside).
    bad_rows_csv: the CSV of `bad_rows`, None when there are none.
    output_paths: the shard files.
    seconds: wall time.
  """
  keyframes_written: int = 0
  videos_written: int = 0
  boxes: int = 0
  labels: int = 0
  detections: int = 0
  rows_read: int = 0
  rows_skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
  keyframes_skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
  bad_rows: List[Tuple[str, int, str]] = dataclasses.field(
      default_factory=list)
  bad_rows_csv: Optional[str] = None
  output_paths: List[str] = dataclasses.field(default_factory=list)
  seconds: float = 0.0

  def summary(self) -> str:
    def counts(d):
      return ', '.join(f'{k} {v}' for k, v in sorted(d.items())) or 'none'
    text = (f'Wrote {self.keyframes_written} keyframes of '
            f'{self.videos_written} videos ({self.boxes} boxes, {self.labels} '
            f'labels, {self.detections} detections) to '
            f'{len(self.output_paths)} shards in {self.seconds:.1f}s. '
            f'Keyframes skipped: {counts(self.keyframes_skipped)}. '
            f'Rows skipped: {counts(self.rows_skipped)}.')
    if self.bad_rows_csv:
      text += f' {len(self.bad_rows)} bad rows listed in {self.bad_rows_csv}.'
    return text


# ----------------------------------------------------------------------------
# Writing.


def make_keyframe_example(media_id: str, timestamp: int,
                          frames_jpeg: Sequence[bytes], keyframe_index: int,
                          stride: int, source_fps: Optional[float],
                          height: int, width: int,
                          boxes: Sequence[PersonBox] = (),
                          detections: Sequence[Tuple[Box, float]] = ()
                          ) -> tf.train.SequenceExample:
  """The SequenceExample of one keyframe (see the module docstring)."""
  example = tfrecord_writer.make_sequence_example(
      frames_jpeg, media_id=media_id,
      frame_rate=source_fps / stride if source_fps else None,
      height=height, width=width)
  context = example.context.feature
  del context[features.LABEL_KEY]  # Keyframe labels are per box, below.

  def put(key, values, kind):
    if kind == 'int':
      context[key].CopyFrom(tf.train.Feature(int64_list=tf.train.Int64List(
          value=[int(v) for v in values])))
    else:
      context[key].CopyFrom(tf.train.Feature(float_list=tf.train.FloatList(
          value=[float(v) for v in values])))

  put(features.KEYFRAME_TIMESTAMP_KEY, [timestamp], 'int')
  put(features.KEYFRAME_INDEX_KEY, [keyframe_index], 'int')
  put(features.CLIP_STRIDE_KEY, [stride], 'int')
  for i, key in enumerate(features.GT_BBOX_KEYS):
    put(key, [b.box[i] for b in boxes], 'float')
  put(features.GT_PERSON_KEY, [b.person_id for b in boxes], 'int')
  pairs = [(i, a) for i, b in enumerate(boxes) for a in sorted(b.actions)]
  put(features.GT_LABEL_BOX_KEY, [i for i, _ in pairs], 'int')
  put(features.GT_LABEL_KEY, [a for _, a in pairs], 'int')
  for i, key in enumerate(features.DET_BBOX_KEYS):
    put(key, [d[0][i] for d in detections], 'float')
  put(features.DET_SCORE_KEY, [d[1] for d in detections], 'float')
  return example


def read_keyframe_example(serialized: bytes, decode_frames: bool = True
                          ) -> Dict[str, object]:
  """Decodes one written keyframe example to numpy (tests, debugging).

  Args:
    serialized: the record bytes.
    decode_frames: also decode the JPEG frames (with PIL).

  Returns:
    Dict with 'media_id' (str), 'timestamp', 'keyframe_index',
    'frame_stride', 'height', 'width' (ints), 'frame_rate' (float or None),
    'frames_jpeg' (list of bytes), 'frames' (uint8 [T, H, W, 3], when
    decode_frames), 'gt_boxes' (float32 [P, 4] ymin, xmin, ymax, xmax),
    'person_ids' (int64 [P]), 'label_box_index' / 'label_index' (int64 [L]),
    'labels_per_box' (P lists of action ids), 'det_boxes' (float32 [D, 4]),
    'det_scores' (float32 [D]).

  Raises:
    ValueError: if the example is inconsistent (lengths, box indices).
  """
  example = tf.train.SequenceExample.FromString(serialized)
  context = example.context.feature

  def ints(key):
    return np.array(context[key].int64_list.value if key in context else [],
                    np.int64)

  def floats(key):
    return np.array(context[key].float_list.value if key in context else [],
                    np.float32)

  def one(key, default=None):
    values = ints(key)
    return int(values[0]) if values.size else default

  def boxes(keys):
    columns = [floats(k) for k in keys]
    if len({c.size for c in columns}) != 1:
      raise ValueError(f'{keys}: coordinate lists of different lengths.')
    return np.stack(columns, -1).reshape(-1, 4)

  frames_jpeg = [f.bytes_list.value[0] for f in
                 example.feature_lists.feature_list[features.IMAGE_KEY].feature]
  gt_boxes = boxes(features.GT_BBOX_KEYS)
  person_ids = ints(features.GT_PERSON_KEY)
  label_box = ints(features.GT_LABEL_BOX_KEY)
  label_index = ints(features.GT_LABEL_KEY)
  det_boxes = boxes(features.DET_BBOX_KEYS)
  det_scores = floats(features.DET_SCORE_KEY)
  if person_ids.size != len(gt_boxes) or label_box.size != label_index.size or (
      det_scores.size != len(det_boxes)) or np.any(label_box < 0) or np.any(
          label_box >= len(gt_boxes)):
    raise ValueError('Inconsistent keyframe example: '
                     f'{len(gt_boxes)} boxes, {person_ids.size} person ids, '
                     f'label boxes {label_box.tolist()}, {label_index.size} '
                     f'labels, {len(det_boxes)} detections, {det_scores.size} '
                     'scores.')
  labels_per_box = [[] for _ in range(len(gt_boxes))]
  for b, a in zip(label_box.tolist(), label_index.tolist()):
    labels_per_box[b].append(a)
  rate = floats(features.FRAME_RATE_KEY)
  media = context[features.MEDIA_ID_KEY].bytes_list.value if (
      features.MEDIA_ID_KEY in context) else []
  out = {
      'media_id': media[0].decode('utf-8') if media else '',
      'timestamp': one(features.KEYFRAME_TIMESTAMP_KEY),
      'keyframe_index': one(features.KEYFRAME_INDEX_KEY),
      'frame_stride': one(features.CLIP_STRIDE_KEY),
      'frame_rate': float(rate[0]) if rate.size else None,
      'height': one(features.IMAGE_HEIGHT_KEY),
      'width': one(features.IMAGE_WIDTH_KEY),
      'frames_jpeg': frames_jpeg,
      'gt_boxes': gt_boxes,
      'person_ids': person_ids,
      'label_box_index': label_box,
      'label_index': label_index,
      'labels_per_box': labels_per_box,
      'det_boxes': det_boxes,
      'det_scores': det_scores,
  }
  if decode_frames:
    from PIL import Image  # pylint: disable=g-import-not-at-top
    out['frames'] = np.stack([np.asarray(Image.open(io.BytesIO(f)).convert(
        'RGB')) for f in frames_jpeg]) if frames_jpeg else np.zeros(
            (0, 0, 0, 3), np.uint8)
  return out


def iter_keyframe_examples(pattern: str, decode_frames: bool = True
                           ) -> Iterator[Dict[str, object]]:
  """`read_keyframe_example` of every record of the files matching a glob."""
  for path in sorted(glob.glob(pattern)):
    for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
      yield read_keyframe_example(raw, decode_frames)


class _Converter:
  """Turns the keyframes of each source into written examples."""

  def __init__(self, writer: tfrecord_writer.ShardedWriter, tally: _Tally,
               report: AvaConversionReport, total: int, num_frames: int,
               stride: int, fps: float, short_side: Optional[int],
               jpeg_quality: int, seek_gap_s: float, log_every: int):
    self.writer, self.tally, self.report = writer, tally, report
    self.total, self.num_frames, self.stride = total, num_frames, stride
    self.fps, self.short_side = fps, short_side
    self.jpeg_quality, self.seek_gap_s = jpeg_quality, seek_gap_s
    self.log_every = log_every
    self.done = 0
    self.start = time.time()
    self.videos = set()

  def _progress(self):
    self.done += 1
    if self.log_every and (self.done % self.log_every == 0
                           or self.done == self.total):
      elapsed = max(time.time() - self.start, 1e-6)
      logging.info('Read %d of %d keyframes (%.1f keyframes/s): %d written, '
                   '%d skipped.', self.done, self.total, self.done / elapsed,
                   self.report.keyframes_written,
                   self.done - self.report.keyframes_written)

  def skip(self, keyframe: Keyframe, reason: str, detail: str):
    self.tally.bad_keyframe(keyframe, reason, detail)
    self._progress()

  def emit(self, keyframe: Keyframe, frames: List[bytes], fps: float,
           size: Tuple[int, int]):
    self.writer.write(make_keyframe_example(
        keyframe.video_id, keyframe.timestamp, frames, self.num_frames // 2,
        self.stride, fps, size[0], size[1], keyframe.boxes,
        keyframe.detections))
    report = self.report
    report.keyframes_written += 1
    report.boxes += len(keyframe.boxes)
    report.labels += sum(len(b.actions) for b in keyframe.boxes)
    report.detections += len(keyframe.detections)
    self.videos.add(keyframe.video_id)
    self._progress()

  def _keyframe_frame(self, source: _Source, keyframe: Keyframe,
                      fps: float) -> int:
    return _round_half_up((keyframe.timestamp - source.offset_s) * fps)

  def _outside(self, source: _Source, keyframe: Keyframe, k: int, fps: float,
               length: str):
    self.skip(keyframe, 'keyframe_outside_video',
              f'{keyframe.timestamp} s is frame {k} of {source.location} '
              f'({fps:g} fps, first frame at {source.offset_s:g} s), which '
              f'{length}')

  def indexed(self, source: _Source, keyframes: List[Keyframe],
              num_source_frames: int, fps: float,
              load: Callable[[int], Tuple[bytes, str]]):
    """Keyframes of a source whose frames are read by index (folder, record).

    `load(i)` returns (encoded frame i, where it is) or raises
    `VideoReadError`. Frames are cached while consecutive keyframes' clips
    overlap, so each is read and checked once.
    """
    cache: Dict[int, bytes] = {}
    size = None
    for keyframe in sorted(keyframes, key=lambda kf: kf.timestamp):
      k = self._keyframe_frame(source, keyframe, fps)
      if not 0 <= k < num_source_frames:
        self._outside(source, keyframe, k, fps,
                      f'has frames 0 to {num_source_frames - 1}')
        continue
      indices = clip_frame_indices(k, self.num_frames, self.stride,
                                   num_source_frames)
      for i in [i for i in cache if i < indices[0]]:
        del cache[i]
      try:
        for i in indices:
          if i not in cache:
            data, where = load(i)
            cache[i], size = convert_videos.load_frame_image(
                data, where, short_side=self.short_side, size=size,
                jpeg_quality=self.jpeg_quality)
      except convert_videos.VideoReadError as e:
        self.skip(keyframe, 'unreadable_frame', str(e))
        continue
      self.emit(keyframe, [cache[i] for i in indices], fps, size)

  def frame_folder(self, source: _Source, keyframes: List[Keyframe],
                   pattern: str, start_index: int):
    num = sum(1 for f in os.listdir(source.location)
              if f.lower().endswith(convert_videos.IMAGE_EXTENSIONS))

    def load(i):
      file = os.path.join(source.location, pattern.format(
          name=source.name, index=i + start_index))
      try:
        with open(file, 'rb') as f:
          return f.read(), file
      except OSError as e:
        raise convert_videos.VideoReadError(
            f'{file}: cannot read frame {i} ({e.strerror or e}; frame_pattern '
            f'{pattern!r}, first index {start_index}).') from e

    self.indexed(source, keyframes, num, self.fps, load)

  def record(self, source: _Source, keyframes: List[Keyframe], raw: bytes):
    example = tf.train.SequenceExample.FromString(raw)
    frames = [f.bytes_list.value[0] if f.bytes_list.value else b'' for f in
              example.feature_lists.feature_list[features.IMAGE_KEY].feature]
    context = example.context.feature
    fps = None
    if features.FRAME_RATE_KEY in context and context[
        features.FRAME_RATE_KEY].float_list.value:
      fps = float(context[features.FRAME_RATE_KEY].float_list.value[0])
    if not fps:
      stamps = [f.int64_list.value[0] for f in example.feature_lists
                .feature_list[features.TIMESTAMP_KEY].feature
                if f.int64_list.value]
      steps = np.diff(stamps)
      if len(stamps) == len(frames) and steps.size and np.all(steps > 0):
        fps = 1e6 / float(np.median(steps))
    where = f'{source.location} record {source.position} ({source.name})'
    if not fps or not frames:
      for keyframe in keyframes:
        self.skip(keyframe, 'unreadable_video',
                  f'{where}: ' + ('no frames' if not frames else
                                  f'no {features.FRAME_RATE_KEY} and no '
                                  f'{features.TIMESTAMP_KEY}'))
      return

    def load(i):
      return frames[i], f'{where} frame {i}'

    self.indexed(source, keyframes, len(frames), fps, load)

  def video(self, source: _Source, keyframes: List[Keyframe]):
    """Keyframes of a video file: one decoding pass per run of keyframes."""
    items = []
    for keyframe in sorted(keyframes, key=lambda kf: kf.timestamp):
      k = self._keyframe_frame(source, keyframe, self.fps)
      if k < 0:
        self._outside(source, keyframe, k, self.fps, 'starts at frame 0')
        continue
      items.append((k, keyframe, clip_frame_indices(k, self.num_frames,
                                                    self.stride)))
    runs, run = [], []
    for item in items:
      if run and (item[2][0] - run[-1][2][-1]) / self.fps > self.seek_gap_s:
        runs.append(run)
        run = []
      run.append(item)
    if run:
      runs.append(run)
    for run in runs:
      self._video_run(source, run)

  def _video_run(self, source: _Source,
                 run: List[Tuple[int, Keyframe, List[int]]]):
    """Decodes from a seek to the run's first frame until its last one.

    Source frame i (time i / fps) is the decoded frame nearest to that time
    (the earlier on a tie); past the end of the video, the last frame.
    """
    fps = self.fps
    targets = sorted({i for _, _, indices in run for i in indices})
    assigned: Dict[int, bytes] = {}
    size = None
    p = q = 0  # Next target to assign, next keyframe to emit.
    prev_t = prev_prev_t = prev_frame = prev_jpeg = None

    def encode(frame):
      nonlocal size
      if size is None:
        # pylint: disable-next=protected-access
        size = convert_videos._resized_shape(frame.height, frame.width,
                                             self.short_side)
      rgb = frame.reformat(width=size[1], height=size[0],
                           format='rgb24').to_ndarray()
      return tfrecord_writer.encode_jpeg(rgb, self.jpeg_quality)

    def emit_ready():
      nonlocal q
      limit = targets[p] if p < len(targets) else math.inf
      while q < len(run) and run[q][2][-1] < limit:
        _, keyframe, indices = run[q]
        self.emit(keyframe, [assigned[i] for i in indices], fps, size)
        q += 1
        if q < len(run):
          for i in [i for i in assigned if i < run[q][2][0]]:
            del assigned[i]

    try:
      with contextlib.closing(convert_videos.iter_video_frames(
          source.location, start_s=targets[0] / fps)) as frames:
        for t, frame in frames:
          if prev_frame is not None:
            middle = (prev_t + t) / 2
            while p < len(targets) and targets[p] / fps <= middle + 1e-9:
              if prev_jpeg is None:
                prev_jpeg = encode(prev_frame)
              assigned[targets[p]] = prev_jpeg
              p += 1
            emit_ready()
          prev_prev_t, prev_t, prev_frame, prev_jpeg = prev_t, t, frame, None
          if p == len(targets):
            break
    except convert_videos.VideoReadError as e:
      for _, keyframe, _ in run[q:]:
        self.skip(keyframe, 'unreadable_video', str(e))
      return
    if q == len(run):
      return
    if prev_frame is None:
      for _, keyframe, _ in run[q:]:
        self.skip(keyframe, 'unreadable_video',
                  f'{source.location}: no decodable frame after '
                  f'{targets[0] / fps:g} s.')
      return
    # End of the video: the remaining frames are its last one.
    end_t = prev_t + (prev_t - prev_prev_t if prev_prev_t is not None
                      else 1.0 / fps)
    last = encode(prev_frame)
    while p < len(targets):
      assigned[targets[p]] = last
      p += 1
    for k, keyframe, indices in run[q:]:
      if k / fps >= end_t - 1e-6:
        self._outside(source, keyframe, k, self.fps,
                      f'ends at {end_t:g} s (video time)')
      else:
        self.emit(keyframe, [assigned[i] for i in indices], fps, size)


def _record_media_ids(files: List[str]) -> Iterator[Tuple[str, int, str]]:
  """(file, position, media id) of every record, parsing only the id."""
  spec = {features.MEDIA_ID_KEY: tf.io.FixedLenFeature([], tf.string,
                                                       default_value='')}
  for path in files:
    dataset = tf.data.TFRecordDataset(path).map(
        lambda r: tf.io.parse_single_sequence_example(r, spec)[0][
            features.MEDIA_ID_KEY])
    for position, media in enumerate(dataset.as_numpy_iterator()):
      yield path, position, media.decode('utf-8')


def _check_file(path: Optional[str], what: str):
  if path is not None and not os.path.isfile(path):
    raise FileNotFoundError(f'{what} {path} does not exist or is not a file.')


def convert_ava(annotations: str,
                output_prefix: str,
                frames_dir: Optional[str] = None,
                videos_dir: Optional[str] = None,
                video_records: Optional[str] = None,
                label_map: Optional[str] = None,
                excluded_timestamps: Optional[str] = None,
                detections: Optional[str] = None,
                detection_keyframes: bool = True,
                fps: float = DEFAULT_FPS,
                timestamp_offset_s: float = 0.0,
                num_frames: int = DEFAULT_NUM_FRAMES,
                frame_stride: int = DEFAULT_FRAME_STRIDE,
                short_side: Optional[int] = None,
                jpeg_quality: int = 90,
                num_shards: int = 1,
                frame_pattern: str = DEFAULT_FRAME_PATTERN,
                frame_start_index: int = 1,
                box_tolerance: float = DEFAULT_BOX_TOLERANCE,
                parse_kinetics_names: bool = True,
                seek_gap_s: float = DEFAULT_SEEK_GAP_S,
                log_every: int = DEFAULT_LOG_EVERY) -> AvaConversionReport:
  """Converts AVA-style keyframe labels and their videos into TFRecords.

  See the module docstring for the formats and the handling of bad input.

  Args:
    annotations: the annotations CSV (`ava_train_v2.2.csv`, ...).
    output_prefix: shards are `<output_prefix>-0000i-of-0000N.tfrecord`.
    frames_dir: frame folders at `fps` (one source of the three).
    videos_dir: video files (one source of the three).
    video_records: glob of clip TFRecords (one source of the three).
    label_map: the action label map pbtxt (None keeps every action id).
    excluded_timestamps: the excluded-timestamps CSV.
    detections: a person-detection CSV.
    detection_keyframes: with `detections`, also write keyframes that have
      detections but no ground truth.
    fps: frame rate of `frames_dir`, and the rate videos are resampled to.
    timestamp_offset_s: time of a source's first frame in the CSV's clock
      (AVA 15-min segments: 900); Kinetics-named sources use their start.
    num_frames: frames per clip.
    frame_stride: source frames between stored frames.
    short_side: resize stored frames to this short side (None keeps).
    jpeg_quality: quality of (re-)encoded frames.
    num_shards: output shards.
    frame_pattern: frame file name in a frame folder; `{name}` is the
      folder's name, `{index}` the frame number.
    frame_start_index: number of the first frame file (SlowFast: 1).
    box_tolerance: coordinates at most this far outside [0, 1] are clipped;
      farther ones make the row bad.
    parse_kinetics_names: treat `<id>_<start:06d>_<end:06d>` sources as
      Kinetics clips of `<id>` starting at `start` seconds.
    seek_gap_s: videos: seek instead of decoding through gaps longer than
      this between consecutive keyframes' clips.
    log_every: log progress every this many keyframes.

  Returns:
    An `AvaConversionReport`.

  Raises:
    FileNotFoundError: naming a required input that does not exist.
    ValueError: for bad options, an unreadable label map, or an annotations
      CSV without a usable row.
  """
  start = time.time()
  sources = [(flag, value) for flag, value in (
      ('frames_dir', frames_dir), ('videos_dir', videos_dir),
      ('video_records', video_records)) if value]
  if len(sources) != 1:
    named = ', '.join(f for f, _ in sources) or 'none'
    raise ValueError('Give exactly one video source: frames_dir, videos_dir or '
                     f'video_records (got {named}).')
  if num_frames < 1 or frame_stride < 1 or not fps > 0 or box_tolerance < 0:
    raise ValueError('Need num_frames >= 1, frame_stride >= 1, fps > 0 and '
                     f'box_tolerance >= 0, got {num_frames}, {frame_stride}, '
                     f'{fps}, {box_tolerance}.')
  if not 1 <= jpeg_quality <= 100:
    raise ValueError(f'jpeg_quality must be in [1, 100], got {jpeg_quality}.')
  try:
    frame_pattern.format(name='x', index=1)
  except (KeyError, IndexError, ValueError) as e:
    raise ValueError(f'frame_pattern {frame_pattern!r} must use only {{name}} '
                     f'and {{index}} ({e}).') from e
  _check_file(annotations, 'Annotations CSV')
  _check_file(label_map, 'Label map')
  _check_file(excluded_timestamps, 'Excluded-timestamps CSV')
  _check_file(detections, 'Detections CSV')
  for path, what in ((frames_dir, 'Frames folder'),
                     (videos_dir, 'Videos folder')):
    if path and not os.path.isdir(path):
      raise FileNotFoundError(f'{what} {path} does not exist or is not a '
                              'folder.')
  record_files = sorted(glob.glob(video_records)) if video_records else []
  if video_records and not record_files:
    raise FileNotFoundError(f'No TFRecord file matches video_records '
                            f'{video_records!r}.')

  tally = _Tally()
  actions = load_label_map(label_map) if label_map else None
  if actions is None:
    logging.warning('No label map: every action id of %s is kept.',
                    annotations)
  gt = read_annotations(annotations, actions, box_tolerance, tally)
  rows_read = tally.rows_read
  excluded = (read_excluded_timestamps(excluded_timestamps, tally)
              if excluded_timestamps else set())
  det = read_detections(detections, box_tolerance, tally) if detections else {}

  keyframes: Dict[Tuple[str, int], Keyframe] = {}
  for key, keyframe in gt.items():
    keyframes[key] = keyframe
  for key, found in det.items():
    if key in keyframes:
      keyframes[key].detections = found.detections
      keyframes[key].rows.extend(found.rows)
    elif detection_keyframes:
      keyframes[key] = found
    else:
      tally.rows_skipped['detection_without_gt_keyframe'] += len(found.rows)
  for key in [k for k in keyframes if k in excluded]:
    del keyframes[key]
    tally.keyframes_skipped['excluded_timestamp'] += 1

  # Sources.
  if frames_dir:
    index = _SourceIndex('frame folder', timestamp_offset_s,
                         parse_kinetics_names)
    for path in convert_videos.discover_media(frames_dir):
      if os.path.isdir(path):
        index.add('frames', os.path.basename(path), path)
    where = f'under {frames_dir}'
  elif videos_dir:
    index = _SourceIndex('video file', timestamp_offset_s,
                         parse_kinetics_names)
    for path in convert_videos.discover_media(videos_dir):
      if os.path.isfile(path):
        index.add('video', os.path.splitext(os.path.basename(path))[0], path)
    where = f'under {videos_dir}'
  else:
    index = _SourceIndex('clip record', timestamp_offset_s,
                         parse_kinetics_names)
    unnamed = 0
    for path, position, media in _record_media_ids(record_files):
      if media:
        index.add('record', media, path, position)
      else:
        unnamed += 1
    if unnamed:
      logging.warning('%d records of %s have no %s and cannot be matched.',
                      unnamed, video_records, features.MEDIA_ID_KEY)
    where = f'in {video_records}'
  if not index.count:
    logging.warning('No %s found %s.', index.what, where)

  report = AvaConversionReport(rows_read=rows_read)
  bad_rows_csv = output_prefix + BAD_ROWS_SUFFIX
  with tfrecord_writer.ShardedWriter(output_prefix, num_shards) as writer:
    converter = _Converter(writer, tally, report, len(keyframes), num_frames,
                           frame_stride, fps, short_side, jpeg_quality,
                           seek_gap_s, log_every)
    by_source: Dict[_Source, List[Keyframe]] = collections.defaultdict(list)
    for key in sorted(keyframes):
      keyframe = keyframes[key]
      source, reason, detail = index.find(keyframe.video_id,
                                          keyframe.timestamp)
      if source is None:
        converter.skip(keyframe, reason, f'{detail} {where}')
      else:
        by_source[source].append(keyframe)
    if video_records:
      wanted = {(s.location, s.position): s for s in by_source}
      for path in record_files:
        positions = {p for loc, p in wanted if loc == path}
        if not positions:
          continue
        for position, raw in enumerate(
            tf.data.TFRecordDataset(path).as_numpy_iterator()):
          if position in positions:
            source = wanted[(path, position)]
            converter.record(source, by_source[source], raw)
    else:
      for source in sorted(by_source, key=lambda s: (s.name, s.location)):
        if source.kind == 'frames':
          converter.frame_folder(source, by_source[source], frame_pattern,
                                 frame_start_index)
        else:
          converter.video(source, by_source[source])

  report.videos_written = len(converter.videos)
  report.rows_skipped = dict(tally.rows_skipped)
  report.rows_skipped = {k: v for k, v in report.rows_skipped.items() if v}
  report.keyframes_skipped = {k: v for k, v in tally.keyframes_skipped.items()
                              if v}
  report.bad_rows = tally.bad_rows
  report.output_paths = writer.paths
  if tally.bad_rows:
    os.makedirs(os.path.dirname(os.path.abspath(bad_rows_csv)), exist_ok=True)
    with open(bad_rows_csv, 'w', newline='') as f:
      out = csv.writer(f)
      out.writerow(('file', 'line', 'reason'))
      out.writerows(tally.bad_rows)
    report.bad_rows_csv = bad_rows_csv
  elif os.path.isfile(bad_rows_csv):
    os.remove(bad_rows_csv)  # From an earlier run; this one has none.
  report.seconds = time.time() - start
  logging.info('%s', report.summary())
  return report


def cli(argv: Optional[List[str]] = None) -> AvaConversionReport:
  """Command line; raises SystemExit(1) when no keyframe could be written.

  A missing or malformed input file raises a UserError (exit status 2 from
  `main`).
  """
  parser = argparse.ArgumentParser(
      description='Convert AVA v2.2 / AVA-Kinetics keyframe labels and videos '
      'into keyframe TFRecords (one SequenceExample per keyframe).')
  parser.add_argument('--annotations', required=True,
                      help='CSV of video_id,timestamp,x1,y1,x2,y2,action_id,'
                      'person_id rows (ava_train_v2.2.csv, ...).')
  parser.add_argument('--output_prefix', required=True,
                      help='Shards are <prefix>-0000i-of-0000N.tfrecord.')
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument('--frames_dir', default=None,
                      help='Frame folders <name>/<name>_%%06d.jpg at --fps.')
  source.add_argument('--videos_dir', default=None,
                      help='Video files <name>.mp4|mkv|webm|avi.')
  source.add_argument('--video_records', default=None,
                      help='Glob of clip TFRecords (e.g. the demo world '
                      'train-*.tfrecord).')
  parser.add_argument('--label_map', default=None,
                      help='Action label map pbtxt; rows of other ids are '
                      'dropped.')
  parser.add_argument('--excluded_timestamps', default=None)
  parser.add_argument('--detections', default=None,
                      help='Person detections CSV video_id,timestamp,x1,y1,'
                      'x2,y2,...,score.')
  parser.add_argument('--no_detection_keyframes', action='store_true',
                      help='Write only keyframes with ground truth, even when '
                      'detections name others.')
  parser.add_argument('--fps', type=float, default=DEFAULT_FPS,
                      help='Frame rate of --frames_dir; videos are resampled '
                      'to it. Records use their own clip/frame_rate.')
  parser.add_argument('--timestamp_offset_s', type=float, default=0.0,
                      help='Time of the first frame in the CSV clock (AVA '
                      '15-min segments: 900).')
  parser.add_argument('--num_frames', type=int, default=DEFAULT_NUM_FRAMES)
  parser.add_argument('--frame_stride', type=int,
                      default=DEFAULT_FRAME_STRIDE)
  parser.add_argument('--short_side', type=int, default=None)
  parser.add_argument('--jpeg_quality', type=int, default=90)
  parser.add_argument('--num_shards', type=int, default=1)
  parser.add_argument('--frame_pattern', default=DEFAULT_FRAME_PATTERN)
  parser.add_argument('--frame_start_index', type=int, default=1)
  parser.add_argument('--box_tolerance', type=float,
                      default=DEFAULT_BOX_TOLERANCE)
  parser.add_argument('--seek_gap_s', type=float, default=DEFAULT_SEEK_GAP_S)
  parser.add_argument('--log_every', type=int, default=DEFAULT_LOG_EVERY)
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  try:
    report = convert_ava(
        args.annotations, args.output_prefix, frames_dir=args.frames_dir,
        videos_dir=args.videos_dir, video_records=args.video_records,
        label_map=args.label_map,
        excluded_timestamps=args.excluded_timestamps,
        detections=args.detections,
        detection_keyframes=not args.no_detection_keyframes, fps=args.fps,
        timestamp_offset_s=args.timestamp_offset_s,
        num_frames=args.num_frames, frame_stride=args.frame_stride,
        short_side=args.short_side, jpeg_quality=args.jpeg_quality,
        num_shards=args.num_shards, frame_pattern=args.frame_pattern,
        frame_start_index=args.frame_start_index,
        box_tolerance=args.box_tolerance, seek_gap_s=args.seek_gap_s,
        log_every=args.log_every)
  except (FileNotFoundError, ValueError) as e:
    raise errors.UserError(str(e)) from e
  print(report.summary())
  if report.keyframes_written == 0:
    sys.stderr.write('ERROR: no keyframe was written; the summary above '
                     'gives the reasons.\n')
    raise SystemExit(errors.EXIT_FAILURE)
  return report


def main(argv: Optional[List[str]] = None) -> None:
  """Console-script entry point: `cli` with the exit statuses of errors.py."""
  errors.run_main(cli, argv)


if __name__ == '__main__':
  main()
