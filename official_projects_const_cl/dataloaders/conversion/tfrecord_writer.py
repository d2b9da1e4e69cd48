"""Builds and writes the clip `tf.train.SequenceExample`s of docs/datasets.md.

One clip = one `tf.train.SequenceExample` in the layout read by Model Garden's
`official/vision/dataloaders/video_input.py` (feature list `image/encoded`,
one JPEG per frame; context `clip/label/index`), extended with the
MediaSequence-style per-frame region lists (`region/bbox/*`,
`region/label/index`, `region/track/index`, `region/bbox/score`) that the
ConST-CL region branch (paper §3.2, "region source") and the downstream
localization / tracking tasks read. The keys come from
`official_projects_const_cl.dataloaders.features`, shared with the loaders.

Used by the demo world generator (`demo_data.py`) and the video converter
(`convert_videos.py`).
"""

import io
import os
from typing import List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from official_projects_const_cl.dataloaders import features

try:  # PIL comes with scikit-image; it encodes without a TF eager call.
  from PIL import Image as _PILImage
except ImportError:  # pragma: no cover - exercised only without Pillow.
  _PILImage = None


def encode_jpeg(frame: np.ndarray, quality: int = 90,
                chroma_downsampling: bool = True) -> bytes:
  """Encodes one RGB frame as JPEG.

  Args:
    frame: uint8 [H, W, 3] (or [H, W] grayscale, stored as RGB).
    quality: JPEG quality in [1, 100].
    chroma_downsampling: 4:2:0 chroma (the usual); False keeps full-resolution
      colour (4:4:4), worth it for small frames with fine coloured texture.

  Returns:
    The JPEG bytes. Deterministic for a given frame and library version.

  Raises:
    ValueError: if the frame is not uint8 [H, W, 3] / [H, W].
  """
  frame = np.asarray(frame)
  if frame.dtype != np.uint8:
    raise ValueError(f'encode_jpeg expects a uint8 frame, got {frame.dtype}.')
  if frame.ndim == 2:
    frame = np.repeat(frame[..., None], 3, axis=-1)
  if frame.ndim != 3 or frame.shape[-1] != 3:
    raise ValueError(
        f'encode_jpeg expects a [H, W, 3] frame, got shape {frame.shape}.')
  if _PILImage is not None:
    buffer = io.BytesIO()
    _PILImage.fromarray(frame).save(
        buffer, format='JPEG', quality=quality,
        subsampling=2 if chroma_downsampling else 0)
    return buffer.getvalue()
  return tf.io.encode_jpeg(  # pragma: no cover
      frame, quality=quality, chroma_downsampling=chroma_downsampling).numpy()


def _bytes_feature(values: Sequence[bytes]) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int64_feature(values) -> tf.train.Feature:
  return tf.train.Feature(
      int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _float_feature(values) -> tf.train.Feature:
  return tf.train.Feature(
      float_list=tf.train.FloatList(value=[float(v) for v in values]))


def _per_frame_values(name: str, values, num_frames: int,
                      num_boxes: List[int], media_id: str) -> List[np.ndarray]:
  """Checks a per-frame, per-box list has one entry per box of each frame."""
  if len(values) != num_frames:
    raise ValueError(f'{media_id}: {name} has {len(values)} frames, expected '
                     f'{num_frames} (one entry per frame).')
  out = []
  for t, (v, n) in enumerate(zip(values, num_boxes)):
    v = np.asarray(v).reshape(-1)
    if v.shape[0] != n:
      raise ValueError(f'{media_id}: {name} of frame {t} has {v.shape[0]} '
                       f'values, expected {n} (one per box).')
    out.append(v)
  return out


def make_sequence_example(
    frames_jpeg: Sequence[bytes],
    labels: Sequence[int] = (),
    label_texts: Optional[Sequence[str]] = None,
    media_id: Optional[str] = None,
    boxes_per_frame: Optional[Sequence[np.ndarray]] = None,
    box_labels: Optional[Sequence[Sequence[int]]] = None,
    box_tracks: Optional[Sequence[Sequence[int]]] = None,
    box_scores: Optional[Sequence[Sequence[float]]] = None,
    timestamps_us: Optional[Sequence[int]] = None,
    frame_rate: Optional[float] = None,
    height: Optional[int] = None,
    width: Optional[int] = None,
) -> tf.train.SequenceExample:
  """Builds one clip record (docs/datasets.md).

  Args:
    frames_jpeg: T encoded frames (JPEG bytes), stored in `image/encoded`.
    labels: clip-level class indices (`clip/label/index`, may be empty or hold
      several).
    label_texts: optional class names, one per label (`clip/label/text`).
    media_id: optional video id (`clip/media_id`); also used in error messages.
    boxes_per_frame: optional T arrays of shape [n_t, 4] holding normalized
      `[ymin, xmin, ymax, xmax]` boxes (n_t may be 0 and vary over frames).
    box_labels: optional T sequences of n_t ints (`region/label/index`).
    box_tracks: optional T sequences of n_t ints (`region/track/index`).
    box_scores: optional T sequences of n_t floats (`region/bbox/score`).
    timestamps_us: optional T ints, microseconds (`image/timestamp`).
    frame_rate: optional frames per second (`clip/frame_rate`).
    height: optional frame height in pixels (`image/height`).
    width: optional frame width in pixels (`image/width`).

  Returns:
    The `tf.train.SequenceExample`.

  Raises:
    ValueError: on no frames, mismatched lengths or boxes outside [0, 1].
  """
  name = media_id or '<clip>'
  num_frames = len(frames_jpeg)
  if num_frames == 0:
    raise ValueError(f'{name}: a clip needs at least one frame, got none.')
  for t, frame in enumerate(frames_jpeg):
    if not isinstance(frame, (bytes, bytearray)) or not frame:
      raise ValueError(f'{name}: frame {t} is not non-empty encoded bytes.')

  context = {features.LABEL_KEY: _int64_feature(labels)}
  if label_texts is not None:
    if len(label_texts) != len(labels):
      raise ValueError(f'{name}: {len(label_texts)} label texts for '
                       f'{len(labels)} labels.')
    context[features.LABEL_TEXT_KEY] = _bytes_feature(
        [s.encode('utf-8') for s in label_texts])
  if media_id is not None:
    context[features.MEDIA_ID_KEY] = _bytes_feature([media_id.encode('utf-8')])
  if frame_rate is not None:
    context[features.FRAME_RATE_KEY] = _float_feature([frame_rate])
  if height is not None:
    context[features.IMAGE_HEIGHT_KEY] = _int64_feature([height])
  if width is not None:
    context[features.IMAGE_WIDTH_KEY] = _int64_feature([width])

  feature_lists = {
      features.IMAGE_KEY: tf.train.FeatureList(
          feature=[_bytes_feature([f]) for f in frames_jpeg]),
  }
  if timestamps_us is not None:
    if len(timestamps_us) != num_frames:
      raise ValueError(f'{name}: {len(timestamps_us)} timestamps for '
                       f'{num_frames} frames.')
    feature_lists[features.TIMESTAMP_KEY] = tf.train.FeatureList(
        feature=[_int64_feature([ts]) for ts in timestamps_us])

  if boxes_per_frame is not None:
    if len(boxes_per_frame) != num_frames:
      raise ValueError(f'{name}: boxes_per_frame has {len(boxes_per_frame)} '
                       f'frames, expected {num_frames}.')
    boxes = []
    for t, b in enumerate(boxes_per_frame):
      b = np.asarray(b, np.float32).reshape(-1, 4) if np.size(b) else (
          np.zeros((0, 4), np.float32))
      if np.any(b < -1e-6) or np.any(b > 1 + 1e-6):
        raise ValueError(f'{name}: frame {t} has boxes outside [0, 1] '
                         '(boxes must be normalized [ymin, xmin, ymax, xmax]).')
      if np.any(b[:, 2] < b[:, 0]) or np.any(b[:, 3] < b[:, 1]):
        raise ValueError(f'{name}: frame {t} has a box with ymax < ymin or '
                         'xmax < xmin (expected [ymin, xmin, ymax, xmax]).')
      boxes.append(np.clip(b, 0.0, 1.0))
    num_boxes = [b.shape[0] for b in boxes]
    for i, key in enumerate(features.BBOX_KEYS):
      feature_lists[key] = tf.train.FeatureList(
          feature=[_float_feature(b[:, i]) for b in boxes])
    optional = ((features.REGION_LABEL_KEY, 'box_labels', box_labels,
                 _int64_feature),
                (features.REGION_TRACK_KEY, 'box_tracks', box_tracks,
                 _int64_feature),
                (features.REGION_SCORE_KEY, 'box_scores', box_scores,
                 _float_feature))
    for key, arg_name, values, make in optional:
      if values is None:
        continue
      per_frame = _per_frame_values(arg_name, values, num_frames, num_boxes,
                                    name)
      feature_lists[key] = tf.train.FeatureList(
          feature=[make(v) for v in per_frame])
  elif any(v is not None for v in (box_labels, box_tracks, box_scores)):
    raise ValueError(f'{name}: box labels/tracks/scores given without '
                     'boxes_per_frame.')

  return tf.train.SequenceExample(
      context=tf.train.Features(feature=context),
      feature_lists=tf.train.FeatureLists(feature_list=feature_lists))


def shard_paths(output_prefix: str, num_shards: int,
                suffix: str = '.tfrecord') -> List[str]:
  """Returns `<prefix>-00000-of-0000N<suffix>` for every shard."""
  return [f'{output_prefix}-{i:05d}-of-{num_shards:05d}{suffix}'
          for i in range(num_shards)]


class ShardedWriter:
  """Writes serialized records round-robin (or by index) into N shards.

  Usage:
    with ShardedWriter('/data/train', num_shards=4) as writer:
      writer.write(example)
    paths = writer.paths   # ['/data/train-00000-of-00004.tfrecord', ...]

  Every shard file is created, even when fewer records than shards are
  written (an empty TFRecord file is a valid, empty dataset), so a glob of
  the shard pattern is stable.
  """

  def __init__(self, output_prefix: str, num_shards: int = 1,
               suffix: str = '.tfrecord'):
    if num_shards < 1:
      raise ValueError(f'num_shards must be >= 1, got {num_shards}.')
    self._paths = shard_paths(output_prefix, num_shards, suffix)
    self._writers = None
    self._next = 0
    self.num_written = 0
    self.counts = [0] * num_shards

  @property
  def paths(self) -> List[str]:
    return list(self._paths)

  def __enter__(self) -> 'ShardedWriter':
    self.open()
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def open(self) -> None:
    parent = os.path.dirname(self._paths[0])
    if parent:
      tf.io.gfile.makedirs(parent)
    self._writers = [tf.io.TFRecordWriter(p) for p in self._paths]

  def write(self, record: Union[bytes, tf.train.SequenceExample,
                                tf.train.Example],
            shard: Optional[int] = None) -> int:
    """Writes one record; returns the shard index it went to.

    Args:
      record: serialized bytes or a proto with `SerializeToString`.
      shard: shard index; by default the shards are used round-robin.
    """
    if self._writers is None:
      raise RuntimeError('ShardedWriter is not open; use it as a context '
                         'manager or call open().')
    if shard is None:
      shard = self._next
      self._next = (self._next + 1) % len(self._writers)
    elif not 0 <= shard < len(self._writers):
      raise ValueError(f'shard {shard} out of range [0, '
                       f'{len(self._writers)}).')
    if not isinstance(record, (bytes, bytearray)):
      record = record.SerializeToString()
    self._writers[shard].write(record)
    self.counts[shard] += 1
    self.num_written += 1
    return shard

  def close(self) -> List[str]:
    if self._writers is not None:
      for w in self._writers:
        w.close()
      self._writers = None
    return self.paths
