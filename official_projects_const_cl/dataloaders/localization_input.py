"""Keyframe input pipeline for action localization (supplementary §3.2).

Reads the keyframe examples of `tools/convert_ava.py` (keys in
`features.py`): the clip's frames (already at the source stride) with the
keyframe at 'clip/keyframe/index', the ground-truth person boxes with their
multi-labels, and optional detected boxes with scores.

Per example:
* 'image' float32 [T, H, W, 3] in [0, 1]: T frames at `temporal_stride`
  stored frames centered on the keyframe (positions outside the stored clip
  repeat its first / last frame), each resized to H x W. Training flips the
  clip and its boxes together with probability 0.5 (`aug_flip`).
* 'boxes' [N, 4] normalized (ymin, xmin, ymax, xmax), 'boxes_mask' [N]: the
  boxes the model classifies -- ground truth in training; in evaluation
  ground truth or detections with score >= threshold (`eval_boxes`).
  'labels' [N, C] multi-hot (zeros for detections).
* 'gt_boxes' [N, 4], 'gt_labels' [N, C], 'gt_mask' [N]: the ground truth,
  for the evaluator.
* 'media_id' string, 'timestamp' int64 (the keyframe's AVA timestamp),
  'num_corrupt_frames', 'num_dropped_boxes' (boxes beyond N, or degenerate
  boxes, which are masked out and counted) int32; from
  `build_localization_dataset` also 'skipped_videos' int32.

Frames follow the rules of `frames.py` (unreadable frames replaced and
counted, mixed sizes resized). A keyframe example without frames, or whose
clip has no readable frame, is a bad video, skipped within the config's
budget (`records.py`). A label id outside [1, num_classes], or a keyframe
index outside the stored frames, fails with an error naming the file and
record.
"""

from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

from official.core import config_definitions as cfg
from official.vision.dataloaders import decoder
from official.vision.dataloaders import input_reader_factory
from official.vision.dataloaders import parser as parser_lib
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.dataloaders import frames as frames_lib
from official_projects_const_cl.dataloaders import pretrain_input
from official_projects_const_cl.dataloaders import records

EVAL_BOXES = ('groundtruth', 'detected')


class Decoder(decoder.Decoder):
  """Decodes a keyframe SequenceExample."""

  def __init__(self):
    varlen_float = tf.io.VarLenFeature(tf.float32)
    varlen_int = tf.io.VarLenFeature(tf.int64)
    self._context = {
        features.MEDIA_ID_KEY: tf.io.FixedLenFeature((), tf.string, ''),
        features.KEYFRAME_TIMESTAMP_KEY: tf.io.FixedLenFeature(
            (), tf.int64, -1),
        features.KEYFRAME_INDEX_KEY: tf.io.FixedLenFeature((), tf.int64, -1),
        features.GT_LABEL_KEY: varlen_int,
        features.GT_LABEL_BOX_KEY: varlen_int,
        features.DET_SCORE_KEY: varlen_float,
    }
    for key in features.GT_BBOX_KEYS + features.DET_BBOX_KEYS:
      self._context[key] = varlen_float
    self._sequence = {
        features.IMAGE_KEY: tf.io.FixedLenSequenceFeature(
            (), tf.string, allow_missing=True)}

  def decode(self, serialized: Any) -> Dict[str, tf.Tensor]:
    """Parses one record ({'serialized', 'source', ...} or a string)."""
    serialized, source = records.split_record(serialized)
    context, sequences = tf.io.parse_single_sequence_example(
        serialized, self._context, self._sequence)
    dense = lambda key: tf.sparse.to_dense(context[key])
    image = sequences[features.IMAGE_KEY]
    num_frames = tf.shape(image)[0]
    keyframe = tf.cast(context[features.KEYFRAME_INDEX_KEY], tf.int32)
    # No frames at all is a bad video (the parser's budget), not this check.
    checks = [
        tf.debugging.Assert(
            tf.logical_or(tf.equal(num_frames, 0), tf.logical_and(
                keyframe >= 0, keyframe < num_frames)),
            records.data_error(
                source, ': clip/keyframe/index ',
                tf.strings.as_string(keyframe),
                ' is missing or outside the stored frames')),
    ]
    gt_boxes = tf.stack([dense(k) for k in features.GT_BBOX_KEYS], axis=-1)
    det_boxes = tf.stack([dense(k) for k in features.DET_BBOX_KEYS], axis=-1)
    label_ids = dense(features.GT_LABEL_KEY)
    label_boxes = dense(features.GT_LABEL_BOX_KEY)
    checks.append(tf.debugging.Assert(
        tf.equal(tf.size(label_ids), tf.size(label_boxes)), records.data_error(
            source, ': keyframe/bbox/label/index and .../box_index differ in '
            'length')))
    with tf.control_dependencies(checks):
      image = tf.identity(image)
    return {
        'image': image,
        'keyframe_index': keyframe,
        'gt_boxes': gt_boxes,
        'label_ids': tf.cast(label_ids, tf.int32),
        'label_boxes': tf.cast(label_boxes, tf.int32),
        'det_boxes': det_boxes,
        'det_scores': dense(features.DET_SCORE_KEY),
        'media_id': context[features.MEDIA_ID_KEY],
        'timestamp': context[features.KEYFRAME_TIMESTAMP_KEY],
        'source': source,
    }


def clip_positions(keyframe: tf.Tensor, num_stored: tf.Tensor,
                   num_frames: int, stride: int) -> tf.Tensor:
  """Stored-frame positions `keyframe + (i - T // 2) * stride`, clamped."""
  offsets = (tf.range(num_frames) - num_frames // 2) * stride
  return tf.clip_by_value(keyframe + offsets, 0, num_stored - 1)


def multi_hot(label_ids: tf.Tensor, label_boxes: tf.Tensor, num_boxes: tf.Tensor,
              num_classes: int, source: tf.Tensor) -> tf.Tensor:
  """[num_boxes, C] multi-hot labels from (box index, 1-based id) pairs."""
  valid = tf.logical_and(label_ids >= 1, label_ids <= num_classes)
  check = tf.debugging.Assert(tf.reduce_all(valid), records.data_error(
      source, ': action label ids ',
      tf.strings.reduce_join(tf.strings.as_string(label_ids), separator=','),
      f' must lie in [1, {num_classes}] (num_classes)'))
  in_range = tf.debugging.Assert(
      tf.reduce_all(tf.logical_and(label_boxes >= 0,
                                   label_boxes < num_boxes)),
      records.data_error(source, ': a label refers to a box that does not '
                         'exist'))
  with tf.control_dependencies([check, in_range]):
    indices = tf.stack([label_boxes, label_ids - 1], axis=-1)
  return tf.scatter_nd(indices, tf.ones_like(label_ids, tf.float32),
                       tf.stack([num_boxes, num_classes]))


def pad_boxes(boxes: tf.Tensor, extra: tf.Tensor, max_boxes: int
              ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
  """Keeps non-degenerate boxes, pads / truncates them to `max_boxes`.

  Args:
    boxes: [P, 4] (ymin, xmin, ymax, xmax).
    extra: [P, K] per-box values (labels) that follow the boxes.
    max_boxes: N.

  Returns:
    boxes [N, 4], extra [N, K], mask [N] float32, and the number of dropped
    boxes (degenerate, or beyond N) int32.
  """
  boxes = tf.clip_by_value(boxes, 0.0, 1.0)
  valid = tf.logical_and(boxes[:, 2] > boxes[:, 0], boxes[:, 3] > boxes[:, 1])
  kept_boxes = tf.boolean_mask(boxes, valid)
  kept_extra = tf.boolean_mask(extra, valid)
  count = tf.shape(kept_boxes)[0]
  dropped = tf.shape(boxes)[0] - tf.minimum(count, max_boxes)
  kept_boxes, kept_extra = kept_boxes[:max_boxes], kept_extra[:max_boxes]
  pad = max_boxes - tf.shape(kept_boxes)[0]
  out_boxes = tf.pad(kept_boxes, [[0, pad], [0, 0]])
  out_extra = tf.pad(kept_extra, [[0, pad], [0, 0]])
  mask = tf.pad(tf.ones([tf.shape(kept_boxes)[0]], tf.float32), [[0, pad]])
  out_boxes.set_shape([max_boxes, 4])
  mask.set_shape([max_boxes])
  return out_boxes, out_extra, mask, dropped


class Parser(parser_lib.Parser):
  """Builds the clip, the boxes to classify and the ground truth."""

  def __init__(self,
               num_frames: int = 32,
               temporal_stride: int = 1,
               output_size: Tuple[int, int] = (400, 400),
               num_classes: int = 80,
               max_num_boxes: int = 32,
               eval_boxes: str = 'groundtruth',
               detection_score_threshold: float = 0.8,
               flip: bool = True,
               is_training: bool = True):
    if eval_boxes not in EVAL_BOXES:
      raise ValueError(f'eval_boxes must be one of {EVAL_BOXES}, got '
                       f'{eval_boxes!r}.')
    if num_frames < 1 or temporal_stride < 1 or max_num_boxes < 1:
      raise ValueError('num_frames, temporal_stride and max_num_boxes must be '
                       f'>= 1, got {num_frames}, {temporal_stride}, '
                       f'{max_num_boxes}.')
    self._num_frames = num_frames
    self._stride = temporal_stride
    self._output_size = tuple(int(s) for s in output_size[:2])
    self._num_classes = num_classes
    self._max_num_boxes = max_num_boxes
    self._eval_boxes = eval_boxes
    self._threshold = detection_score_threshold
    self._flip = flip
    self._is_training = is_training

  @classmethod
  def from_config(cls, params: cfg.DataConfig) -> 'Parser':
    return cls(
        num_frames=params.feature_shape[0],
        temporal_stride=params.temporal_stride,
        output_size=tuple(params.feature_shape[1:3]),
        num_classes=params.num_classes,
        max_num_boxes=params.max_num_boxes,
        eval_boxes=params.eval_boxes,
        detection_score_threshold=params.detection_score_threshold,
        flip=params.aug_flip,
        is_training=params.is_training)

  def __call__(self, decoded: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return self.parse_fn(self._is_training)(decoded)

  def _parse(self, decoded: Dict[str, tf.Tensor],
             training: bool) -> Dict[str, tf.Tensor]:
    decoded = dict(decoded)
    source = decoded.setdefault('source',
                                tf.constant(records.UNKNOWN_SOURCE))
    positions = clip_positions(decoded['keyframe_index'],
                               tf.maximum(tf.shape(decoded['image'])[0], 1),
                               self._num_frames, self._stride)
    clips = frames_lib.decode_clips(decoded['image'], positions[None],
                                    self._output_size)
    clip = tf.image.resize(clips.images[0], self._output_size,
                           method='bilinear')
    clip = tf.clip_by_value(clip / 255.0, 0.0, 1.0)
    clip.set_shape([self._num_frames, *self._output_size, 3])

    gt_boxes = decoded['gt_boxes']
    labels = multi_hot(decoded['label_ids'], decoded['label_boxes'],
                       tf.shape(gt_boxes)[0], self._num_classes, source)
    gt_boxes, gt_labels, gt_mask, dropped = pad_boxes(
        gt_boxes, labels, self._max_num_boxes)
    gt_labels.set_shape([self._max_num_boxes, self._num_classes])

    if training and self._flip:
      flipped = tf.random.uniform([]) < 0.5
      clip = tf.cond(flipped, lambda: tf.reverse(clip, axis=[2]),
                     lambda: clip)
      mirrored = tf.stack([gt_boxes[:, 0], 1.0 - gt_boxes[:, 3],
                           gt_boxes[:, 2], 1.0 - gt_boxes[:, 1]], axis=-1)
      gt_boxes = tf.where(flipped, mirrored, gt_boxes) * gt_mask[:, None]

    boxes, box_labels, mask = gt_boxes, gt_labels, gt_mask
    if not training and self._eval_boxes == 'detected':
      scores = decoded['det_scores']
      keep = scores >= self._threshold
      det = tf.boolean_mask(decoded['det_boxes'], keep)
      det_scores = tf.boolean_mask(scores, keep)[:, None]
      boxes, det_scores, mask, det_dropped = pad_boxes(
          det, det_scores, self._max_num_boxes)
      dropped += det_dropped
      box_labels = tf.zeros([self._max_num_boxes, self._num_classes])
    return {
        'image': clip,
        'boxes': boxes,
        'boxes_mask': mask,
        'labels': box_labels,
        'gt_boxes': gt_boxes,
        'gt_labels': gt_labels,
        'gt_mask': gt_mask,
        'media_id': decoded['media_id'],
        'timestamp': decoded['timestamp'],
        'num_corrupt_frames': clips.num_corrupt,
        'num_dropped_boxes': dropped,
        'problem': clips.problem,
        'source': source,
    }

  def _parse_train_data(self, decoded):
    return self._parse(decoded, training=True)

  def _parse_eval_data(self, decoded):
    return self._parse(decoded, training=False)


def build_localization_dataset(
    params: cfg.DataConfig,
    input_context: Optional[tf.distribute.InputContext] = None,
    parser: Optional[Parser] = None  # pylint: disable=redefined-outer-name
) -> tf.data.Dataset:
  """Batched keyframe examples via Model Garden's InputReader.

  Raises:
    records.InputPathError (a FileNotFoundError): `params.input_path`
      matches no file.
    records.RecordFileError: a matched file is not a TFRecord file of the
      configured compression.
  """
  what = records.data_config_key(params)
  records.matched_record_files(params.input_path, params.compressed_input,
                               f'{what}.input_path')
  parser = parser or Parser.from_config(params)
  reader = input_reader_factory.input_reader_generator(
      params, dataset_fn=pretrain_input.dataset_fn(params),
      decoder_fn=Decoder().decode,
      parser_fn=parser.parse_fn(params.is_training),
      transform_and_batch_fn=records.budget_and_batch(params, what))
  return reader.read(input_context=input_context)
