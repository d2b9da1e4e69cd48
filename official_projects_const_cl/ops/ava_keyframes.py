"""AVA keyframe keys and boxes, shared by the AVA reader and the metric.

A keyframe ("image key") is `f'{video_id},{int(timestamp):04d}'`, as in
ActivityNet's `get_ava_performance.py` before 2020 (docs/metrics.md); its
boxes are float64 [N, 4] normalized (y1, x1, y2, x2) with action ids and
scores (paper §4.2, AVA).
"""

import math
from typing import Any, Mapping, NamedTuple, Tuple, Union

import numpy as np

# Detection rows kept per keyframe by the official script.
DETECTION_CAPACITY = 50

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


def timestamp_value(timestamp: Timestamp) -> Union[int, float]:
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
  """The keyframe id of the 2018 official script: 'video_id,%04d'.

  Args:
    video_id: YouTube / Kinetics video id.
    timestamp: keyframe second (int, float or text such as '0902').

  Returns:
    f'{video_id},{int(timestamp):04d}' for integral timestamps, e.g.
    'abc,0902'; f'{video_id},{float(timestamp)!r}' otherwise (the 2018
    script rejects non-integral timestamps; the current one keys them as
    '%.6f', which groups timestamps as this key does down to a microsecond).

  Raises:
    ValueError: if the timestamp is not a finite number.
  """
  value = timestamp_value(timestamp)
  if isinstance(value, int):
    return f'{video_id},{value:04d}'
  return f'{video_id},{value!r}'


def split_image_key(image_key: str) -> Tuple[str, Union[int, float]]:
  """(video_id, timestamp) of an image key; inverse of `make_image_key`."""
  video_id, sep, timestamp = image_key.rpartition(',')
  if not sep:
    raise ValueError(f'image key {image_key!r} is not "video_id,timestamp"')
  return video_id, timestamp_value(timestamp)


def normalize_key(image_key: Any) -> str:
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


def as_keyframe(value: Any, key: str, is_groundtruth: bool) -> KeyframeBoxes:
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
