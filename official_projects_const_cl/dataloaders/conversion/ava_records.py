"""Keyframe records of action localization: write and read (supp. §3.2).

One `tf.train.SequenceExample` per (video, keyframe): the clip's JPEG frames
and the keyframe's person boxes, actions and detections under the AVA keys
of `dataloaders/features.py`. Layout: docs/datasets.md (AVA).
"""

import glob
import io
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
import tensorflow as tf

from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.dataloaders.conversion import ava_annotations
from official_projects_const_cl.dataloaders.conversion import tfrecord_writer


def make_keyframe_example(
    media_id: str,
    timestamp: int,
    frames_jpeg: Sequence[bytes],
    keyframe_index: int,
    stride: int,
    source_fps: Optional[float],
    height: int,
    width: int,
    boxes: Sequence[ava_annotations.PersonBox] = (),
    detections: Sequence[Tuple[ava_annotations.Box, float]] = ()
) -> tf.train.SequenceExample:
  """The SequenceExample of one keyframe (layout: docs/datasets.md, AVA)."""
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
