"""Two-view clip input pipeline for ConST-CL / CVRL pretraining.

Implements the data side of ConST-CL §3.3 / §4.1 (records: docs/datasets.md):
every video yields two clips ("views" a and b) of `num_frames` frames at
`temporal_stride`, each with its own temporally consistent augmentation
(`augmentations.py`) and its own region boxes per frame with a validity mask
(`region_generators.py`).

Records are Model Garden video `tf.train.SequenceExample`s (feature list
`image/encoded`, one JPEG per frame; context `clip/label/index`), so records
written by `official.vision.dataloaders.tfexample_utils.make_video_test_example`
load unchanged; `region/bbox/{ymin,xmin,ymax,xmax}` feature lists hold stored
boxes (MediaSequence style, any number per frame).

Rules worth knowing:

* Temporal sampling. A clip spans `(num_frames - 1) * stride + 1` frames and
  its frame indices are `i0 + k * stride`. In training both views draw their
  start `i0` independently and uniformly among the starts that fit the video.
  Videos SHORTER than the span are LOOPED: indices are taken modulo the video
  length and `i0` is uniform over all frames (so a 4-frame video read with
  stride 2 gives indices like 3, 1, 3, 1, ...). This is not an error.
* Evaluation: view 0 is the temporally centered clip (start
  `(length - span) // 2`, or 0 for a short video) with a center crop and no
  flip or color change -- what a kNN probe embeds; view 1 is a random clip
  with the training augmentation, so validation losses are measured on
  held-out videos.
* Bad frames and bad videos (`frames.py`, `records.py`). An unreadable
  sampled frame (not a complete JPEG, or one libjpeg rejects) is replaced by
  the nearest readable sampled frame of the same clip and counted in
  'num_corrupt_frames' (replaced frame slots, summed over both views; its
  'frame_index' is that of the frame actually shown). Frames of other sizes
  than the clip's first readable frame are resized to it. A video without
  frames, or a view none of whose sampled frames is readable, is bad: it is
  skipped within the data config's budget (`max_bad_videos`,
  `max_bad_video_fraction`), counted in 'skipped_videos' and named in the
  log, and beyond the budget the pipeline fails naming it.
* Only the sampled frames are decoded (strings are gathered first), unless
  the data config has `cache=True`: then the reader's cached stage decodes
  every frame of a video once (`Parser.decode_video`), and sampling and
  augmentation run on the cached frames in every epoch
  (`Parser.parse_cached_fn`, from the reader's `transform_and_batch_fn`,
  after the cache, repeat and shuffle), with the same rules and results.
* Errors name the file and record: records are read through
  `records.dataset_fn_with_source`; matched files are checked up front
  (gzip without `compressed_input`, not a TFRecord file).

VCLR segment tuples (`clip_sampling='vclr_segments'`, VCLR §3.2-3.3 and,
with clips of T > 1 frames, its §5.3): the video is cut into K segments and
each of two tuples (anchor, positive) holds one clip per segment; each clip
has its own augmentation, and each tuple is shuffled with probability p for
the temporal-order task (`segment_clip_indices`, `random_order`,
`Parser._parse_vclr`). A segment shorter than a clip's span is looped
inside the segment, by the rule above for short videos; its output is
described in `Parser._parse_vclr`.

Per-example output of the default `clip_sampling='two_clips'` (team
contract): 'image' float32 [2, T, H, W, 3] in
[0, 1]; 'boxes' float32 [2, T, N, 4] in view coordinates; 'boxes_mask'
float32 [2, T, N]; 'frame_index' int32 [2, T]; 'label' int32 (first
`clip/label/index` or -1); 'num_corrupt_frames' int32; from the `build_*` datasets also
'skipped_videos' int32 (bad videos dropped, attributed to kept examples:
summed over a validation pass, every bad video; `records.skip_bad_videos`).
"""

import functools
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import tensorflow as tf

from official.core import config_definitions as cfg
from official.vision.dataloaders import decoder
from official.vision.dataloaders import input_reader_factory
from official.vision.dataloaders import parser as parser_lib
from official_projects_const_cl.configs import const_cl as const_cl_cfg
from official_projects_const_cl.dataloaders import augmentations
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.dataloaders import frames as frames_lib
from official_projects_const_cl.dataloaders import records
from official_projects_const_cl.dataloaders import region_generators

IMAGE_KEY = features.IMAGE_KEY
LABEL_KEY = features.LABEL_KEY
REGION_SOURCES = ('random', 'slic', 'fh', 'stored')
UNKNOWN_SOURCE = records.UNKNOWN_SOURCE
CLIP_SAMPLINGS = const_cl_cfg.CLIP_SAMPLINGS


def _same_or_unequal_sizes(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
  """True if `a == b` everywhere, or if the sizes differ (reported apart)."""
  return tf.cond(tf.equal(tf.size(a), tf.size(b)),
                 lambda: tf.reduce_all(tf.equal(a, b)),
                 lambda: tf.constant(True))


def _first_label(labels: tf.Tensor) -> tf.Tensor:
  """int32 scalar: the first of the int64 [L] class indices, or -1."""
  label = tf.cast(labels, tf.int32)
  label = tf.cond(tf.size(label) > 0, lambda: label[0],
                  lambda: tf.constant(-1, tf.int32))
  label.set_shape([])
  return label


class Decoder(decoder.Decoder):
  """Decodes a video SequenceExample into frame strings, label and boxes."""

  def __init__(self, image_key: str = IMAGE_KEY, label_key: str = LABEL_KEY,
               load_boxes: bool = False):
    """Initializes the decoder.

    Args:
      image_key: Feature list of JPEG frames.
      label_key: Context int64 feature of class indices (may be absent).
      load_boxes: Also read the `region/bbox/*` feature lists.
    """
    self._image_key = image_key
    self._label_key = label_key
    self._load_boxes = load_boxes
    self._context_description = {label_key: tf.io.VarLenFeature(tf.int64)}
    self._sequence_description = {
        image_key: tf.io.FixedLenSequenceFeature((), tf.string,
                                                 allow_missing=True),
    }
    if load_boxes:
      for key in features.BBOX_KEYS:
        self._sequence_description[key] = tf.io.RaggedFeature(tf.float32)

  def decode(self, serialized: Union[tf.Tensor, Mapping[str, tf.Tensor]]
            ) -> Dict[str, tf.Tensor]:
    """Parses one record.

    Args:
      serialized: A scalar string tensor, or a dict {'serialized', 'source',
        'record_index'} from `records.dataset_fn_with_source`.

    Returns:
      'image': string [Tv] JPEG frames (Tv = 0 for a record without them: a
      bad video for the parser); 'label': int64 [L]; 'source': string
      '<file> record <i>'; with `load_boxes`: 'boxes' float32 [Tv, K, 4] and
      'boxes_mask' float32 [Tv, K] (K = most boxes on any frame).

    Raises:
      tf.errors.InvalidArgumentError (when run): a missing / inconsistent
        box feature list; the message names the file and record.
    """
    serialized, source = records.split_record(serialized)
    context, sequences = tf.io.parse_single_sequence_example(
        serialized, self._context_description, self._sequence_description)
    image = sequences[self._image_key]
    num_frames = tf.shape(image)[0]
    checks = []
    result = {
        'image': image,
        'label': tf.sparse.to_dense(context[self._label_key]),
        'source': source,
    }
    if self._load_boxes:
      coords = [sequences[key] for key in features.BBOX_KEYS]
      lengths0 = coords[0].row_lengths()
      for key, coord in zip(features.BBOX_KEYS, coords):
        # An empty video is reported by the check above, not here.
        present = tf.logical_or(
            tf.equal(num_frames, 0),
            tf.equal(coord.nrows(out_type=tf.int32), num_frames))
        checks.append(tf.debugging.Assert(present, records.data_error(
            source, f": box feature list '{key}' is missing or does not "
            f"have one entry per frame of '{self._image_key}'")))
        consistent = _same_or_unequal_sizes(coord.row_lengths(), lengths0)
        checks.append(tf.debugging.Assert(consistent, records.data_error(
            source, f": box feature list '{key}' has a different number "
            f"of boxes on some frame than '{features.BBOX_KEYS[0]}'")))
      with tf.control_dependencies(checks):
        boxes = tf.stack([c.to_tensor(0.0) for c in coords], axis=-1)
        mask = tf.ones_like(coords[0], tf.float32).to_tensor(0.0)
      result['boxes'] = tf.identity(boxes)
      result['boxes_mask'] = tf.identity(mask)
    with tf.control_dependencies(checks):
      result['image'] = tf.identity(image)
    return result


def sample_indices(num_video_frames: tf.Tensor, num_frames: int, stride: int,
                   random: bool) -> tf.Tensor:
  """Frame indices `(i0 + k * stride) mod length` of one clip.

  Args:
    num_video_frames: int32 scalar, frames in the video (> 0).
    num_frames: T.
    stride: Temporal stride.
    random: Uniform start among those that fit (all frames for a short
      video); else the centered start (0 for a short video).

  Returns:
    int32 [T].
  """
  span = (num_frames - 1) * stride + 1
  fits = num_video_frames >= span
  if random:
    num_starts = tf.where(fits, num_video_frames - span + 1, num_video_frames)
    start = tf.random.uniform([], 0, num_starts, dtype=tf.int32)
  else:
    start = tf.where(fits, (num_video_frames - span) // 2, 0)
  indices = tf.math.floormod(start + tf.range(num_frames) * stride,
                             num_video_frames)
  indices.set_shape([num_frames])
  return indices


def segment_bounds(num_video_frames: tf.Tensor, num_segments: int
                  ) -> Tuple[tf.Tensor, tf.Tensor]:
  """First frame and length of each of K equal segments of a video.

  Segment k covers frames `[floor(k L / K), floor((k + 1) L / K))` of a video
  of L frames: lengths differ by at most one frame. A video of fewer than K
  frames has empty segments; each is given the one frame at its start
  (`floor(k L / K) < L`), so some segments share a frame.

  Args:
    num_video_frames: int32 scalar L (> 0).
    num_segments: K (>= 1).

  Returns:
    starts: int32 [K]; lengths: int32 [K], each >= 1.
  """
  bounds = (tf.range(num_segments + 1) * num_video_frames) // num_segments
  return bounds[:-1], tf.maximum(bounds[1:] - bounds[:-1], 1)


def segment_clip_indices(num_video_frames: tf.Tensor, num_segments: int,
                         num_frames: int, stride: int,
                         random: bool) -> tf.Tensor:
  """Frame indices of one clip in each of K segments (VCLR §3.2).

  The clip of segment k is `sample_indices` applied to the segment as if it
  were a video of its own, offset by the segment's first frame: with
  `random` its start is uniform among the starts whose whole span
  `(T - 1) * stride + 1` lies in the segment; else it is the segment's
  centered clip. A segment SHORTER than the span follows the loop rule of
  `sample_indices` inside the segment: the start is uniform over all the
  segment's frames (0 without `random`) and the indices are taken modulo the
  segment length, so a 5-frame segment from frame 10 read as 4 frames at
  stride 2 from its third frame gives 12, 14, 11, 13. Every clip thus stays
  in its own segment, and the segment order is the clips' true temporal
  order. Each segment draws independently.

  Args:
    num_video_frames: int32 scalar L (> 0).
    num_segments: K.
    num_frames: T.
    stride: Temporal stride.
    random: Random starts (training) or centered clips.

  Returns:
    int32 [K, T].
  """
  starts, lengths = segment_bounds(num_video_frames, num_segments)
  indices = tf.stack([
      starts[k] + sample_indices(lengths[k], num_frames, stride, random)
      for k in range(num_segments)])
  indices.set_shape([num_segments, num_frames])
  return indices


def random_order(num_clips: int, shuffle_prob: float
                ) -> Tuple[tf.Tensor, tf.Tensor]:
  """The clip order of one tuple for the temporal-order task (VCLR §3.3).

  With probability `shuffle_prob` the tuple is shuffled: the permutation is
  uniform over the `K! - 1` permutations other than the identity (a uniform
  random permutation, redrawn while it is the identity). Otherwise it is the
  identity. (The authors' release also rejects the reversed order:
  `shuffle_list`, dataset/dataset_kinetics.py lines 206-220 at 4fb66c3;
  here any non-identity order counts as shuffled.)

  Args:
    num_clips: K, >= 2 unless `shuffle_prob` is 0.
    shuffle_prob: p.

  Returns:
    permutation: int32 [K], slot j shows the clip of segment
      `permutation[j]`.
    shuffled: bool scalar, True iff the permutation is not the identity.
  """
  identity = tf.range(num_clips)
  if shuffle_prob <= 0.0:
    return identity, tf.constant(False)
  if num_clips < 2:
    raise ValueError(f'random_order: num_clips={num_clips} cannot be '
                     'shuffled (needs >= 2 clips) with shuffle_prob='
                     f'{shuffle_prob}.')

  def draw():
    return tf.argsort(tf.random.uniform([num_clips]), stable=True)

  def non_identity():
    return tf.while_loop(
        lambda perm: tf.reduce_all(tf.equal(perm, identity)),
        lambda perm: [draw()], [draw()])[0]

  shuffled = tf.random.uniform([]) < shuffle_prob
  permutation = tf.cond(shuffled, non_identity, lambda: identity)
  permutation.set_shape([num_clips])
  return permutation, shuffled


class Parser(parser_lib.Parser):
  """Samples and augments the two views of a video, with region boxes.

  With `clip_sampling='vclr_segments'`: the VCLR anchor and positive tuples
  instead (`_parse_vclr`).
  """

  def __init__(self,
               num_frames: int = 16,
               temporal_stride: int = 2,
               output_size: Tuple[int, int] = (224, 224),
               num_boxes: int = 8,
               region_source: str = 'random',
               box_min_size: float = 0.1,
               box_max_size: float = 0.5,
               box_min_aspect_ratio: float = 0.5,
               box_max_aspect_ratio: float = 2.0,
               num_segments: int = 16,
               fh_scale: float = 500.0,
               segment_box_min_size: float = 0.05,
               segment_box_max_size: float = 0.7,
               augmentation: augmentations.ClipAugmentation = (
                   augmentations.ClipAugmentation()),
               is_training: bool = True,
               image_key: str = IMAGE_KEY,
               clip_sampling: str = 'two_clips',
               vclr_num_segments: int = 3,
               vclr_order_shuffle_prob: float = 0.5):
    """Initializes the parser.

    Args:
      num_frames: T, frames per clip.
      temporal_stride: Distance between sampled frames.
      output_size: (H, W) of the views.
      num_boxes: N, region boxes per frame.
      region_source: 'random' | 'slic' | 'fh' | 'stored' (from the record;
        the Decoder must use `load_boxes=True`).
      box_min_size: Random boxes: smallest side (fraction of the view).
      box_max_size: Random boxes: largest side.
      box_min_aspect_ratio: Random boxes: smallest width / height.
      box_max_aspect_ratio: Random boxes: largest width / height.
      num_segments: SLIC / FH: segments per frame.
      fh_scale: FH scale = minimum segment size (pixels).
      segment_box_min_size: SLIC / FH: smallest kept box side (fraction).
      segment_box_max_size: SLIC / FH: largest kept box side.
      augmentation: Training augmentation parameters.
      is_training: Default mode of `parse_fn`-less callers (`__call__`).
      image_key: The frames' feature key (for the bad-video messages).
      clip_sampling: 'two_clips' (two views a, b; module doc) or
        'vclr_segments' (VCLR tuples; `_parse_vclr`).
      vclr_num_segments: VCLR: K, segments per video = clips per tuple.
      vclr_order_shuffle_prob: VCLR: p, the chance that a tuple is shuffled.

    Raises:
      ValueError: an unknown `region_source` or `clip_sampling`, or values
        out of range (named in the message).
    """
    if clip_sampling not in CLIP_SAMPLINGS:
      raise ValueError(f'Unknown clip_sampling {clip_sampling!r}; expected '
                       f'one of {CLIP_SAMPLINGS}.')
    if vclr_num_segments < 1:
      raise ValueError('vclr_num_segments must be >= 1, got '
                       f'{vclr_num_segments}.')
    if not 0.0 <= vclr_order_shuffle_prob <= 1.0:
      raise ValueError('vclr_order_shuffle_prob must be in [0, 1], got '
                       f'{vclr_order_shuffle_prob}.')
    if (clip_sampling == 'vclr_segments' and vclr_num_segments < 2 and
        vclr_order_shuffle_prob > 0.0):
      raise ValueError(
          f'vclr_order_shuffle_prob={vclr_order_shuffle_prob} needs '
          f'vclr_num_segments >= 2 (a tuple of {vclr_num_segments} clip '
          'cannot be shuffled); set it to 0.')
    if region_source not in REGION_SOURCES:
      raise ValueError(f'Unknown region_source {region_source!r}; expected '
                       f'one of {REGION_SOURCES}.')
    if num_frames < 1 or temporal_stride < 1 or num_boxes < 1:
      raise ValueError('num_frames, temporal_stride and num_boxes must be '
                       f'>= 1, got {num_frames}, {temporal_stride}, '
                       f'{num_boxes}.')
    self._num_frames = num_frames
    self._stride = temporal_stride
    self._output_size = tuple(int(s) for s in output_size[:2])
    self._num_boxes = num_boxes
    self._region_source = region_source
    self._random_box_args = dict(
        min_size=box_min_size, max_size=box_max_size,
        min_aspect_ratio=box_min_aspect_ratio,
        max_aspect_ratio=box_max_aspect_ratio)
    # Fail at construction, not inside tf.data, on impossible box ranges.
    region_generators.random_boxes(1, 1, **self._random_box_args)
    self._segment_args = dict(
        num_segments=num_segments, fh_scale=fh_scale,
        min_size=segment_box_min_size, max_size=segment_box_max_size)
    self._augmentation = augmentation
    self._is_training = is_training
    self._image_key = image_key
    self._clip_sampling = clip_sampling
    self._vclr_num_segments = vclr_num_segments
    self._vclr_order_shuffle_prob = vclr_order_shuffle_prob

  @classmethod
  def from_config(cls, params: cfg.DataConfig) -> 'Parser':
    """Builds the parser from the project's `DataConfig`."""
    aug = augmentations.clip_augmentation_from_config(params)
    return cls(
        num_frames=params.feature_shape[0],
        temporal_stride=params.temporal_stride,
        output_size=tuple(params.feature_shape[1:3]),
        num_boxes=params.num_boxes,
        region_source=params.region_source,
        box_min_size=params.box_min_size,
        box_max_size=params.box_max_size,
        box_min_aspect_ratio=params.box_min_aspect_ratio,
        box_max_aspect_ratio=params.box_max_aspect_ratio,
        num_segments=params.num_segments,
        fh_scale=params.fh_scale,
        segment_box_min_size=params.segment_box_min_size,
        segment_box_max_size=params.segment_box_max_size,
        augmentation=aug,
        is_training=params.is_training,
        image_key=params.image_field_key,
        clip_sampling=params.clip_sampling,
        vclr_num_segments=params.vclr_num_segments,
        vclr_order_shuffle_prob=params.vclr_order_shuffle_prob)

  @property
  def region_source(self) -> str:
    return self._region_source

  @property
  def clip_sampling(self) -> str:
    return self._clip_sampling

  def __call__(self, decoded: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return self.parse_fn(self._is_training)(decoded)

  def _source_boxes(self, decoded: Dict[str, tf.Tensor], images: tf.Tensor,
                    indices: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Boxes of the sampled source frames: ([T, K, 4], [T, K])."""
    if self._region_source == 'stored':
      if 'boxes' not in decoded:
        raise ValueError("region_source='stored' needs Decoder(load_boxes="
                         'True): the decoded example has no boxes.')
      return (tf.gather(decoded['boxes'], indices),
              tf.gather(decoded['boxes_mask'], indices))
    return region_generators.segment_boxes_tf(
        images, self._region_source, self._num_boxes, **self._segment_args)

  def _view(self, decoded: Dict[str, tf.Tensor], training_view: bool
           ) -> Dict[str, tf.Tensor]:
    """One clip: sampled, decoded, augmented, with boxes in its coordinates."""
    video = decoded.get('video')
    num_stored = (video.num_stored if video is not None else
                  tf.shape(decoded['image'])[0])
    indices = sample_indices(tf.maximum(num_stored, 1), self._num_frames,
                             self._stride, random=training_view)
    if video is not None:
      clips = frames_lib.clips_from_video(video, indices[None],
                                          self._output_size, self._image_key)
    else:
      clips = frames_lib.decode_clips(decoded['image'], indices[None],
                                      self._output_size, self._image_key)
    images, indices = clips.images[0], clips.indices[0]
    if training_view:
      view, window, flipped = augmentations.augment_clip(
          images, self._output_size, self._augmentation)
    else:
      view, window, flipped = augmentations.eval_clip(images,
                                                      self._output_size)
    if self._region_source == 'random':
      boxes = region_generators.random_boxes(
          self._num_frames, self._num_boxes, **self._random_box_args)
      mask = tf.ones([self._num_frames, self._num_boxes], tf.float32)
    else:
      boxes, mask = self._source_boxes(decoded, images, indices)
      boxes, valid = region_generators.transform_boxes(boxes, window, flipped)
      mask = mask * tf.cast(valid, tf.float32)
      boxes, mask = region_generators.pad_boxes(boxes, mask, self._num_boxes)
    t, n = self._num_frames, self._num_boxes
    view.set_shape([t, self._output_size[0], self._output_size[1], 3])
    boxes.set_shape([t, n, 4])
    mask.set_shape([t, n])
    return {'image': view, 'boxes': boxes, 'boxes_mask': mask,
            'frame_index': indices, 'num_corrupt_frames': clips.num_corrupt,
            'problem': clips.problem}

  def decode_video(self, decoded: Dict[str, tf.Tensor]
                  ) -> Dict[str, tf.Tensor]:
    """The deterministic first stage of a cached pipeline (`cache=True`).

    Decodes every frame of the video once, so that a cache of its output
    leaves only sampling and augmentation to do per epoch:
    `parse_cached_fn` turns it into the same examples `parse_fn` gives.

    Args:
      decoded: the Decoder's output.

    Returns:
      The decoded example with 'image' replaced by 'video_images' (uint8
      [K, H, W, 3], the readable frames), 'row_of_frame' (int32 [Tv]) and
      'num_stored' (int32 scalar); see `frames.decode_video`.
    """
    out = dict(decoded)
    video = frames_lib.decode_video(out.pop('image'))
    out.update(video_images=video.images, row_of_frame=video.row_of_frame,
               num_stored=video.num_stored)
    out.setdefault('source', tf.constant(UNKNOWN_SOURCE))
    return out

  def parse_cached_fn(self, is_training: bool):
    """`parse_fn` for the output of `decode_video` (e.g. from a cache)."""
    def parse(cached):
      cached = dict(cached)
      cached['video'] = frames_lib.DecodedVideo(
          cached.pop('video_images'), cached.pop('row_of_frame'),
          cached.pop('num_stored'))
      return self._parse(cached, training=is_training)
    return parse

  def _parse(self, decoded: Dict[str, tf.Tensor],
             training: bool) -> Dict[str, tf.Tensor]:
    decoded = dict(decoded)
    decoded.setdefault('source', tf.constant(UNKNOWN_SOURCE))
    if self._clip_sampling == 'vclr_segments':
      return self._parse_vclr(decoded, training)
    views = [self._view(decoded, training_view=training),
             self._view(decoded, training_view=True)]
    out = {key: tf.stack([views[0][key], views[1][key]])
           for key in ('image', 'boxes', 'boxes_mask', 'frame_index')}
    out['num_corrupt_frames'] = (views[0]['num_corrupt_frames'] +
                                 views[1]['num_corrupt_frames'])
    out['problem'] = tf.where(tf.strings.length(views[0]['problem']) > 0,
                              views[0]['problem'], views[1]['problem'])
    out['source'] = decoded['source']
    out['label'] = _first_label(decoded['label'])
    out['num_corrupt_frames'].set_shape([])
    return out

  def _parse_vclr(self, decoded: Dict[str, tf.Tensor],
                  training: bool) -> Dict[str, tf.Tensor]:
    """An anchor and a positive tuple of K clips (VCLR §3.2-3.3).

    Each tuple holds one clip of T frames per segment
    (`segment_clip_indices`; the two tuples draw independently). All 2K
    clips are decoded together with the bad-frame rules of the module doc,
    and each gets its own training augmentation (`augment_clip`: one draw
    per clip, shared by its frames). Then each tuple is put in the order of
    `random_order`: shuffled, with probability p, by a non-identity
    permutation. In evaluation the anchor tuple is the centered clip of
    every segment with a center crop (`eval_clip`), never shuffled; the
    positive tuple is as in training. No region boxes are made
    (`region_source` is not used).

    Args:
      decoded: The Decoder's output (or `decode_video`'s, with 'video').
      training: Training or evaluation sampling of the anchor tuple.

    Returns:
      'anchor', 'positive': float32 [K, T, H, W, 3] in [0, 1], slot j
      showing the clip of segment `order_permutation[v, j]`;
      'order_permutation': int32 [2, K] (row 0 anchor, row 1 positive);
      'order_label': int32 `anchor_shuffled + 2 * positive_shuffled`
      (0: both in order, 1: anchor shuffled, 2: positive shuffled, 3: both;
      balanced at p = 0.5; the encoding of `losses.vclr.order_label` and of
      the authors' release); 'frame_index': int32 [2, K, T], the frames shown
      in each slot; 'anchor_second_view': float32 [T, H, W, 3], another
      training augmentation of the anchor tuple's clip of segment 0 (the
      slot j with order_permutation[0, j] == 0; in evaluation too);
      'label', 'num_corrupt_frames' (over all 2K clips), 'problem' and
      'source' as in the two-clip mode.
    """
    k, t = self._vclr_num_segments, self._num_frames
    video = decoded.get('video')
    num_stored = (video.num_stored if video is not None else
                  tf.shape(decoded['image'])[0])
    num_video_frames = tf.maximum(num_stored, 1)
    indices = tf.concat([
        segment_clip_indices(num_video_frames, k, t, self._stride,
                             random=training),
        segment_clip_indices(num_video_frames, k, t, self._stride,
                             random=True)], axis=0)  # [2K, T]
    if video is not None:
      clips = frames_lib.clips_from_video(video, indices, self._output_size,
                                          self._image_key)
    else:
      clips = frames_lib.decode_clips(decoded['image'], indices,
                                      self._output_size, self._image_key)
    out = {}
    permutations, shown, shuffled = [], [], []
    for v, name in enumerate(('anchor', 'positive')):
      eval_view = v == 0 and not training
      views = []
      for i in range(v * k, (v + 1) * k):
        if eval_view:
          view, _, _ = augmentations.eval_clip(clips.images[i],
                                               self._output_size)
        else:
          view, _, _ = augmentations.augment_clip(
              clips.images[i], self._output_size, self._augmentation)
        views.append(view)
      if eval_view:
        permutation, is_shuffled = random_order(k, 0.0)
      else:
        permutation, is_shuffled = random_order(
            k, self._vclr_order_shuffle_prob)
      out[name] = tf.gather(tf.stack(views), permutation)
      out[name].set_shape([k, t, self._output_size[0],
                           self._output_size[1], 3])
      permutations.append(permutation)
      shown.append(tf.gather(clips.indices[v * k:(v + 1) * k], permutation))
      shuffled.append(tf.cast(is_shuffled, tf.int32))
    # A second training augmentation of the anchor tuple's clip of segment
    # 0 (the same decoded frames): the positive of SeCo's intra-frame term
    # (VCLR eq. 3; the release's `frame1_aug2`, dataset/dataset_kinetics.py
    # lines 168-177, takes the first or the last segment's frame). Drawn
    # after everything else, so the other outputs are those of a parser
    # without it.
    second_view, _, _ = augmentations.augment_clip(
        clips.images[0], self._output_size, self._augmentation)
    second_view.set_shape([t, self._output_size[0], self._output_size[1], 3])
    out['anchor_second_view'] = second_view
    out['order_permutation'] = tf.stack(permutations)
    out['order_label'] = shuffled[0] + 2 * shuffled[1]
    out['frame_index'] = tf.stack(shown)
    out['frame_index'].set_shape([2, k, t])
    out['num_corrupt_frames'] = clips.num_corrupt
    out['problem'] = clips.problem
    out['source'] = decoded['source']
    out['label'] = _first_label(decoded['label'])
    out['order_label'].set_shape([])
    out['num_corrupt_frames'].set_shape([])
    return out

  def _parse_train_data(self, decoded_tensors):
    """Two random clips, each with the training augmentation."""
    return self._parse(decoded_tensors, training=True)

  def _parse_eval_data(self, decoded_tensors):
    """View 0: centered clip, center crop; view 1: as in training."""
    return self._parse(decoded_tensors, training=False)


def _decoder_for(params: cfg.DataConfig) -> Decoder:
  return Decoder(image_key=params.image_field_key,
                 label_key=params.label_field_key,
                 load_boxes=params.region_source == 'stored')


def dataset_fn(params: cfg.DataConfig):
  """The InputReader `dataset_fn` of a data config (GZIP if compressed)."""
  if params.compressed_input:
    return functools.partial(records.dataset_fn_with_source,
                             compression_type='GZIP')
  return records.dataset_fn_with_source


def build_pretrain_dataset(
    params: cfg.DataConfig,
    input_context: Optional[tf.distribute.InputContext] = None,
    parser: Optional[Parser] = None,  # pylint: disable=redefined-outer-name
    **reader_kwargs: Any) -> tf.data.Dataset:
  """The batched two-view dataset of `params` via Model Garden's InputReader.

  Sharding per worker (`input_context`), file interleave (`cycle_length`),
  shuffling, repetition (training), AUTOTUNE parallel decode/parse, batching
  and `drop_remainder` all come from `official.core.input_reader`. The demo
  data (`params.demo_data_dir`) is NOT generated here; the task does it first.

  Args:
    params: The project's `DataConfig`.
    input_context: Distribution input context, for per-worker sharding.
    parser: A parser to use instead of `Parser.from_config(params)`.
    **reader_kwargs: Extra InputReader arguments (e.g.
      `transform_and_batch_fn`).

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
  budget_and_batch = records.budget_and_batch(
      params, what, reader_kwargs.get('transform_and_batch_fn'))
  if params.cache:
    # The reader caches what `parser_fn` returns, then repeats and shuffles
    # it: cache the decoded videos, sample and augment afterwards.
    parse_cached = parser.parse_cached_fn(params.is_training)

    def transform_and_batch(dataset, context=None):
      dataset = dataset.map(parse_cached,
                            num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=params.deterministic)
      return budget_and_batch(dataset, context)

    reader_kwargs['transform_and_batch_fn'] = transform_and_batch
    parser_fn = parser.decode_video
  else:
    reader_kwargs['transform_and_batch_fn'] = budget_and_batch
    parser_fn = parser.parse_fn(params.is_training)
  reader = input_reader_factory.input_reader_generator(
      params,
      dataset_fn=dataset_fn(params),
      decoder_fn=_decoder_for(params).decode,
      parser_fn=parser_fn,
      **reader_kwargs)
  return reader.read(input_context=input_context)


def build_knn_dataset(
    params: cfg.DataConfig,
    input_context: Optional[tf.distribute.InputContext] = None,
    parser: Optional[Parser] = None  # pylint: disable=redefined-outer-name
) -> tf.data.Dataset:
  """Memory bank then queries, for the online kNN probe (validation).

  Reads, without shuffling or repeating and with the eval parse, first the
  training videos of `params.knn_bank_input_path` ('is_query' False), then
  the validation videos of `params.input_path` ('is_query' True). Batches
  have `params.global_batch_size` (per replica) examples and keep
  `params.drop_remainder` (False in the validation config: the last batch may
  be partial, which is fine on CPU/GPU; TPUs need static batch shapes, i.e.
  drop_remainder=True, which drops up to a batch of videos).

  Args:
    params: The validation `DataConfig` with `knn_bank_input_path` set.
    input_context: Distribution input context (each worker reads a shard of
      both the bank and the queries).
    parser: A parser to use instead of `Parser.from_config(params)`.

  Returns:
    A finite dataset of batches of the per-example dict plus 'is_query'
    (bool [B]).

  Raises:
    ValueError: `knn_bank_input_path` is empty.
    records.InputPathError, records.RecordFileError: as
      `build_pretrain_dataset`, for either path.
  """
  if not params.knn_bank_input_path:
    raise ValueError('build_knn_dataset needs knn_bank_input_path (the '
                     'training videos forming the kNN memory bank).')
  records.matched_record_files(
      params.knn_bank_input_path, params.compressed_input,
      f'{records.data_config_key(params)}.knn_bank_input_path')
  parser = parser or Parser.from_config(params)

  def read(input_path, is_query):
    part = params.replace(input_path=input_path, is_training=False,
                          cache=False)
    ds = build_pretrain_dataset(
        part, input_context, parser,
        transform_and_batch_fn=lambda ds, _: ds)  # Batched below.
    return ds.map(lambda x: dict(x, is_query=tf.constant(is_query)))

  dataset = read(params.knn_bank_input_path, False).concatenate(
      read(params.input_path, True))
  batch_size = (input_context.get_per_replica_batch_size(
      params.global_batch_size) if input_context else params.global_batch_size)
  dataset = dataset.batch(batch_size, drop_remainder=params.drop_remainder)
  return dataset.prefetch(tf.data.AUTOTUNE)
