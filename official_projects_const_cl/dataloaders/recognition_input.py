"""Clip input pipeline for downstream action recognition (supplementary §3.1).

Reads the same video SequenceExamples as pretraining (`pretrain_input`'s
Decoder: one JPEG per frame in `image/encoded`, labels in `clip/label/index`)
with the same temporal sampling, looping and corrupt-frame rules.

* Training: one clip of `num_frames` frames at `temporal_stride` from a
  uniformly random start, a temporally consistent random resized crop
  (area / aspect ranges of the config) to `feature_shape[1:3]` and a random
  horizontal flip -- no color augmentation. 'image' float32 [T, H, W, 3] in
  [0, 1].
* Evaluation: `num_test_clips` clips whose starts are evenly spaced from the
  first to the last start that fits (inclusive; one clip = the centered one;
  a video shorter than a clip is looped and its starts spread over all its
  frames), each frame resized so that its shorter side is `min_image_size`,
  then `num_test_crops` crops of `feature_shape[1:3]`: 1 = center; 3 = both
  ends and the center of the longer side (left / center / right for a square
  or landscape frame), centered on the other side. 'image' float32
  [V, T, H, W, 3], views ordered clip-major (view = clip * crops + crop).

Every example also has 'label' int32 (the first `clip/label/index`),
'num_corrupt_frames' int32 (replaced frame slots over all views) and, from
`build_recognition_dataset`, 'skipped_videos' int32 (bad videos -- no frames,
or a clip without a readable sampled frame -- dropped within the config's
bad-video budget and attributed to kept examples; `records.py`). A record without a label, or with
a label outside [0, num_classes), fails with an InvalidArgumentError naming
the file and record.
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import tensorflow as tf

from official.core import config_definitions as cfg
from official.vision.dataloaders import input_reader_factory
from official.vision.dataloaders import parser as parser_lib
from official_projects_const_cl.dataloaders import augmentations
from official_projects_const_cl.dataloaders import frames as frames_lib
from official_projects_const_cl.dataloaders import pretrain_input
from official_projects_const_cl.dataloaders import records


def eval_clip_starts(num_video_frames: tf.Tensor, num_frames: int,
                     stride: int, num_clips: int) -> tf.Tensor:
  """Start frames of the evaluation clips of one video.

  Args:
    num_video_frames: int32 scalar (> 0).
    num_frames: T, frames per clip.
    stride: temporal stride.
    num_clips: clips per video.

  Returns:
    int32 [num_clips]: for one clip the centered start (0 if the video is
    shorter than a clip); else `round(linspace(0, last, num_clips))` with
    `last` the last start that fits (or the last frame, for a short video).
  """
  span = (num_frames - 1) * stride + 1
  fits = num_video_frames >= span
  if num_clips == 1:
    start = tf.where(fits, (num_video_frames - span) // 2, 0)
    return tf.reshape(start, [1])
  last = tf.where(fits, num_video_frames - span, num_video_frames - 1)
  starts = tf.linspace(0.0, tf.cast(last, tf.float32), num_clips)
  return tf.cast(tf.round(starts), tf.int32)


def crop_offsets(length: tf.Tensor, crop: int, num_crops: int,
                 along: tf.Tensor) -> tf.Tensor:
  """Offsets of `num_crops` crops of size `crop` on a side of `length`.

  Args:
    length: int32 scalar side length (>= crop).
    crop: crop size on that side.
    num_crops: 1 or 3.
    along: bool scalar, whether the crops move along this side (else they
      are all centered on it).

  Returns:
    int32 [num_crops].
  """
  center = (length - crop) // 2
  if num_crops == 1:
    return tf.reshape(center, [1])
  spread = tf.stack([0, center, length - crop])
  return tf.where(along, spread, tf.fill([3], center))


def spatial_crops(frames: tf.Tensor, min_image_size: int,
                  crop_size: Sequence[int], num_crops: int) -> tf.Tensor:
  """Resizes frames (shorter side -> min_image_size) and takes crops.

  Args:
    frames: [N, H, W, 3] uint8 (0..255) or float (0..1).
    min_image_size: shorter side after resizing.
    crop_size: (h, w), each <= min_image_size.
    num_crops: 1 (center) or 3 (ends and center of the longer side; along
      the width when H == W).

  Returns:
    float32 [num_crops, N, h, w, 3] in [0, 1].
  """
  shape = tf.shape(frames)
  height = tf.cast(shape[1], tf.float32)
  width = tf.cast(shape[2], tf.float32)
  scale = min_image_size / tf.minimum(height, width)
  new_h = tf.maximum(tf.cast(tf.round(height * scale), tf.int32),
                     min_image_size)
  new_w = tf.maximum(tf.cast(tf.round(width * scale), tf.int32),
                     min_image_size)
  resized = tf.image.resize(frames, tf.stack([new_h, new_w]),
                            method='bilinear')
  if frames.dtype == tf.uint8:
    resized = resized / 255.0
  resized = tf.clip_by_value(tf.cast(resized, tf.float32), 0.0, 1.0)
  crop_h, crop_w = int(crop_size[0]), int(crop_size[1])
  along_width = new_w >= new_h
  ys = crop_offsets(new_h, crop_h, num_crops, tf.logical_not(along_width))
  xs = crop_offsets(new_w, crop_w, num_crops, along_width)
  crops = [resized[:, ys[i]:ys[i] + crop_h, xs[i]:xs[i] + crop_w, :]
           for i in range(num_crops)]
  out = tf.stack(crops)
  out.set_shape([num_crops, frames.shape[0], crop_h, crop_w, 3])
  return out


class Parser(parser_lib.Parser):
  """One augmented clip (training) or the multi-view test views of a video."""

  def __init__(self,
               num_frames: int = 32,
               temporal_stride: int = 2,
               output_size: Tuple[int, int] = (224, 224),
               num_classes: int = 101,
               num_test_clips: int = 10,
               num_test_crops: int = 3,
               min_image_size: int = 256,
               augmentation: augmentations.ClipAugmentation = (
                   augmentations.ClipAugmentation(
                       color_jitter_prob=0.0, grayscale_prob=0.0,
                       blur_prob=0.0)),
               is_training: bool = True,
               image_key: str = pretrain_input.IMAGE_KEY):
    """Initializes the parser.

    Args:
      num_frames: T, frames per clip.
      temporal_stride: distance between sampled frames.
      output_size: (H, W) of a clip (training crop, or test crop).
      num_classes: labels must lie in [0, num_classes).
      num_test_clips: evaluation clips per video.
      num_test_crops: evaluation crops per clip (1 or 3).
      min_image_size: evaluation: shorter frame side before cropping.
      augmentation: training augmentation (crop / flip; color off by
        default).
      is_training: default mode of `__call__`.
      image_key: the frames' feature key (for the bad-video messages).

    Raises:
      ValueError: on impossible settings.
    """
    if num_frames < 1 or temporal_stride < 1:
      raise ValueError('num_frames and temporal_stride must be >= 1, got '
                       f'{num_frames}, {temporal_stride}.')
    if num_classes < 1:
      raise ValueError(f'num_classes must be >= 1, got {num_classes}.')
    if num_test_clips < 1:
      raise ValueError(f'num_test_clips must be >= 1, got {num_test_clips}.')
    if num_test_crops not in (1, 3):
      raise ValueError('num_test_crops must be 1 (center) or 3, got '
                       f'{num_test_crops}.')
    output_size = tuple(int(s) for s in output_size[:2])
    if not is_training and max(output_size) > min_image_size:
      raise ValueError(
          f'Test crops of {output_size} do not fit frames resized to a '
          f'shorter side of min_image_size={min_image_size}; set '
          'min_image_size >= the crop size.')
    self._num_frames = num_frames
    self._stride = temporal_stride
    self._output_size = output_size
    self._num_classes = num_classes
    self._num_test_clips = num_test_clips
    self._num_test_crops = num_test_crops
    self._min_image_size = min_image_size
    self._augmentation = augmentation
    self._is_training = is_training
    self._image_key = image_key

  @classmethod
  def from_config(cls, params: cfg.DataConfig) -> 'Parser':
    aug = augmentations.clip_augmentation_from_config(params, color=False)
    return cls(
        num_frames=params.feature_shape[0],
        temporal_stride=params.temporal_stride,
        output_size=tuple(params.feature_shape[1:3]),
        num_classes=params.num_classes,
        num_test_clips=params.num_test_clips,
        num_test_crops=params.num_test_crops,
        min_image_size=params.min_image_size,
        augmentation=aug,
        is_training=params.is_training,
        image_key=params.image_field_key)

  @property
  def num_views(self) -> int:
    """Evaluation views per video."""
    return self._num_test_clips * self._num_test_crops

  def __call__(self, decoded: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return self.parse_fn(self._is_training)(decoded)

  def _label(self, decoded: Dict[str, tf.Tensor]) -> tf.Tensor:
    label = tf.cast(decoded['label'], tf.int32)
    source = decoded['source']
    has_label = tf.debugging.Assert(tf.size(label) > 0, records.data_error(
        source, ': the record has no class label (clip/label/index); '
        'recognition needs labelled videos'))
    with tf.control_dependencies([has_label]):
      first = tf.reshape(label[:1], [])
    in_range = tf.debugging.Assert(
        tf.logical_and(first >= 0, first < self._num_classes),
        records.data_error(
            source, ': class label ', tf.strings.as_string(first),
            f' is outside [0, {self._num_classes}) (num_classes)'))
    with tf.control_dependencies([in_range]):
      first = tf.identity(first)
    first.set_shape([])
    return first

  def _parse_train_data(self, decoded: Dict[str, tf.Tensor]
                       ) -> Dict[str, tf.Tensor]:
    decoded = dict(decoded)
    decoded.setdefault('source', tf.constant(records.UNKNOWN_SOURCE))
    num_video_frames = tf.maximum(tf.shape(decoded['image'])[0], 1)
    indices = pretrain_input.sample_indices(
        num_video_frames, self._num_frames, self._stride, random=True)
    clips = frames_lib.decode_clips(decoded['image'], indices[None],
                                    self._output_size, self._image_key)
    clip, _, _ = augmentations.augment_clip(clips.images[0],
                                            self._output_size,
                                            self._augmentation)
    clip.set_shape([self._num_frames, *self._output_size, 3])
    return {'image': clip, 'label': self._label(decoded),
            'num_corrupt_frames': clips.num_corrupt,
            'problem': clips.problem, 'source': decoded['source']}

  def _parse_eval_data(self, decoded: Dict[str, tf.Tensor]
                      ) -> Dict[str, tf.Tensor]:
    decoded = dict(decoded)
    decoded.setdefault('source', tf.constant(records.UNKNOWN_SOURCE))
    num_video_frames = tf.maximum(tf.shape(decoded['image'])[0], 1)
    starts = eval_clip_starts(num_video_frames, self._num_frames,
                              self._stride, self._num_test_clips)
    offsets = tf.range(self._num_frames) * self._stride
    indices = tf.math.floormod(starts[:, None] + offsets[None, :],
                               num_video_frames)  # [clips, T]
    clips = frames_lib.decode_clips(decoded['image'], indices,
                                    (self._min_image_size,) * 2,
                                    self._image_key)
    frames = tf.reshape(clips.images, tf.concat(
        [[-1], tf.shape(clips.images)[2:]], axis=0))  # [clips * T, Hv, Wv, 3]
    frames.set_shape([self._num_test_clips * self._num_frames, None, None, 3])
    crops = spatial_crops(frames, self._min_image_size, self._output_size,
                          self._num_test_crops)  # [crops, clips * T, ...]
    h, w = self._output_size
    crops = tf.reshape(crops, [self._num_test_crops, self._num_test_clips,
                               self._num_frames, h, w, 3])
    views = tf.reshape(tf.transpose(crops, [1, 0, 2, 3, 4, 5]),
                       [self.num_views, self._num_frames, h, w, 3])
    return {'image': views, 'label': self._label(decoded),
            'num_corrupt_frames': clips.num_corrupt,
            'problem': clips.problem, 'source': decoded['source']}


def build_recognition_dataset(
    params: cfg.DataConfig,
    input_context: Optional[tf.distribute.InputContext] = None,
    parser: Optional[Parser] = None,  # pylint: disable=redefined-outer-name
    **reader_kwargs: Any) -> tf.data.Dataset:
  """Batched clips (training) or multi-view videos (evaluation).

  Sharding, interleave, shuffling, repetition (training), parallel parsing
  and batching come from Model Garden's InputReader, as in pretraining.

  Args:
    params: a `RecognitionDataConfig`.
    input_context: distribution input context, for per-worker sharding.
    parser: a parser to use instead of `Parser.from_config(params)`.
    **reader_kwargs: extra InputReader arguments.

  Returns:
    A dataset of per-replica batches of the per-example dict (module doc).

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
  decoder = pretrain_input.Decoder(image_key=params.image_field_key,
                                   label_key=params.label_field_key)
  reader_kwargs['transform_and_batch_fn'] = records.budget_and_batch(
      params, what, reader_kwargs.get('transform_and_batch_fn'))
  reader = input_reader_factory.input_reader_generator(
      params, dataset_fn=pretrain_input.dataset_fn(params),
      decoder_fn=decoder.decode,
      parser_fn=parser.parse_fn(params.is_training), **reader_kwargs)
  return reader.read(input_context=input_context)
