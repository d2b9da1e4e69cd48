"""Tests for the VCLR segment tuples of dataloaders/pretrain_input.py.

The synthetic videos have frame i filled with pixel value i (uint8), so
every output pixel names the frame it came from: with the color
augmentations off (the crop and flip of a uniform frame keep its value),
`round(255 * pixel)` must equal the reported frame index.
"""

import collections

import numpy as np
import pytest
import tensorflow as tf

from official.core import exp_factory
from official.modeling import hyperparams
from official_projects_const_cl.configs import const_cl
from official_projects_const_cl.configs import validation
from official_projects_const_cl.dataloaders import augmentations
from official_projects_const_cl.dataloaders import pretrain_input as pi

SIDE = 8
NO_COLOR = augmentations.ClipAugmentation(
    color_jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0)


def _video(num_frames, side=SIDE):
  """uint8 [L, side, side, 3], frame i = value i."""
  return np.broadcast_to(np.arange(num_frames, dtype=np.uint8)[:, None, None,
                                                               None],
                         (num_frames, side, side, 3)).copy()


def _cached(images):
  """A `Parser.decode_video`-style element of already decoded frames."""
  n = images.shape[0]
  return {'video_images': tf.constant(images, tf.uint8),
          'row_of_frame': tf.range(n), 'num_stored': tf.constant(n),
          'label': tf.constant([7], tf.int64),
          'source': tf.constant('synthetic')}


def _parser(**kwargs):
  args = dict(num_frames=4, temporal_stride=2, output_size=(SIDE, SIDE),
              augmentation=NO_COLOR, clip_sampling='vclr_segments',
              vclr_num_segments=3, vclr_order_shuffle_prob=0.5)
  args.update(kwargs)
  return pi.Parser(**args)


def _draws(parser, images, count, training=True):
  """`count` parses of one cached video inside tf.data (as in training)."""
  ds = tf.data.Dataset.from_tensors(_cached(images)).repeat(count)
  ds = ds.map(parser.parse_cached_fn(training))
  return [tf.nest.map_structure(lambda t: t.numpy(), x) for x in ds]


def _levels(tuple_images):
  """[K, T, H, W, 3] in [0, 1] -> int [K, T] pixel values (all pixels equal)."""
  values = np.round(tuple_images * 255).astype(np.int64)
  assert (values == values[:, :, :1, :1, :1]).all()
  return values[:, :, 0, 0, 0]


def _segments(num_video_frames, num_segments):
  b = [k * num_video_frames // num_segments for k in range(num_segments + 1)]
  return [(b[k], max(b[k + 1] - b[k], 1)) for k in range(num_segments)]


# ------------------------------------------------------- pure functions ---


def test_segment_bounds_by_hand():
  starts, lengths = pi.segment_bounds(tf.constant(10), 3)
  np.testing.assert_array_equal(starts, [0, 3, 6])
  np.testing.assert_array_equal(lengths, [3, 3, 4])
  # Fewer frames than segments: empty segments get the frame at their start.
  starts, lengths = pi.segment_bounds(tf.constant(2), 3)
  np.testing.assert_array_equal(starts, [0, 0, 1])
  np.testing.assert_array_equal(lengths, [1, 1, 1])


def test_segment_clips_centered_without_random():
  # 30 frames, 3 segments of 10; span 7 -> centered start (10 - 7) // 2 = 1.
  np.testing.assert_array_equal(
      pi.segment_clip_indices(tf.constant(30), 3, 4, 2, random=False),
      [[1, 3, 5, 7], [11, 13, 15, 17], [21, 23, 25, 27]])
  # Short segments (4 frames < span 7) loop inside the segment from 0.
  np.testing.assert_array_equal(
      pi.segment_clip_indices(tf.constant(12), 3, 4, 2, random=False),
      [[0, 2, 0, 2], [4, 6, 4, 6], [8, 10, 8, 10]])


def test_random_segment_clips_stay_in_their_segment_and_cover_it():
  fn = tf.function(lambda: pi.segment_clip_indices(tf.constant(31), 3, 4, 2,
                                                   random=True))
  starts = collections.defaultdict(set)
  for _ in range(200):
    idx = fn().numpy()
    np.testing.assert_array_equal(np.diff(idx, axis=1), 2)
    for k, (first, length) in enumerate(_segments(31, 3)):
      assert first <= idx[k, 0] and idx[k, -1] < first + length, idx
      starts[k].add(int(idx[k, 0]))
  # Segments [0, 10), [10, 20), [20, 31): every start whose span fits.
  assert starts == {0: set(range(0, 4)), 1: set(range(10, 14)),
                    2: set(range(20, 25))}


def test_short_segment_follows_the_loop_rule():
  fn = tf.function(lambda: pi.segment_clip_indices(tf.constant(12), 3, 4, 2,
                                                   random=True))
  offsets = collections.defaultdict(set)
  for _ in range(120):
    idx = fn().numpy()
    for k in range(3):
      first = 4 * k
      i0 = idx[k, 0] - first
      np.testing.assert_array_equal(idx[k], first + (i0 + 2 * np.arange(4)) % 4)
      offsets[k].add(int(i0))
  assert offsets == {k: {0, 1, 2, 3} for k in range(3)}


def test_random_order_permutations_and_probabilities():
  fn = tf.function(lambda: pi.random_order(3, 0.5))
  seen = collections.Counter()
  for _ in range(300):
    perm, shuffled = (t.numpy() for t in fn())
    assert sorted(perm) == [0, 1, 2]
    assert bool(shuffled) == (perm.tolist() != [0, 1, 2])
    seen[tuple(perm)] += 1
  # All five non-identity orders appear; none dominates.
  assert len(seen) == 6, seen
  shuffled = {p: c for p, c in seen.items() if p != (0, 1, 2)}
  assert max(shuffled.values()) < 3 * min(shuffled.values()), seen
  perm, shuffled = pi.random_order(3, 0.0)
  np.testing.assert_array_equal(perm, [0, 1, 2])
  assert not shuffled.numpy()
  for _ in range(5):
    perm, shuffled = pi.random_order(2, 1.0)
    np.testing.assert_array_equal(perm, [1, 0])
    assert shuffled.numpy()
  with pytest.raises(ValueError, match='num_clips=1'):
    pi.random_order(1, 0.5)


# ------------------------------------------------------------- parser ---


def test_tuples_show_their_frames_in_their_segments():
  tf.random.set_seed(13)
  outs = _draws(_parser(), _video(30), 40)
  segments = _segments(30, 3)
  differ = 0
  for out in outs:
    assert out['anchor'].shape == (3, 4, SIDE, SIDE, 3)
    assert out['positive'].shape == (3, 4, SIDE, SIDE, 3)
    assert out['frame_index'].shape == (2, 3, 4)
    assert out['label'] == 7 and out['source'] == b'synthetic'
    assert out['num_corrupt_frames'] == 0 and out['problem'] == b''
    for v, name in enumerate(('anchor', 'positive')):
      idx = out['frame_index'][v]
      np.testing.assert_array_equal(_levels(out[name]), idx)
      np.testing.assert_array_equal(np.diff(idx, axis=1), 2)
      for slot, segment in enumerate(out['order_permutation'][v]):
        first, length = segments[segment]
        assert first <= idx[slot, 0] and idx[slot, -1] < first + length
    differ += not np.array_equal(np.sort(out['frame_index'][0], axis=0),
                                 np.sort(out['frame_index'][1], axis=0))
  # Independent draws: 4 starts per segment, so the tuples rarely coincide.
  assert differ >= 30, differ


def test_order_labels_are_balanced_and_match_the_permutation():
  tf.random.set_seed(2026)
  outs = _draws(_parser(), _video(30), 400)
  counts = collections.Counter(int(o['order_label']) for o in outs)
  expected = len(outs) / 4
  chi2 = sum((counts[c] - expected) ** 2 / expected for c in range(4))
  assert set(counts) == {0, 1, 2, 3}
  assert chi2 < 16.27, counts  # 3 degrees of freedom, p = 0.001.
  segments = _segments(30, 3)
  for out in outs:
    label = int(out['order_label'])
    assert out['order_label'].dtype == np.int32
    for v, bit in ((0, label % 2), (1, label // 2)):
      perm = out['order_permutation'][v]
      assert sorted(perm) == [0, 1, 2]
      assert (perm.tolist() != [0, 1, 2]) == bool(bit), (label, perm)
      # Slot j shows segment perm[j]: the shown clip order is the
      # permutation of the segment order.
      segment_of_slot = [
          next(k for k, (first, length) in enumerate(segments)
               if first <= start < first + length)
          for start in out['frame_index'][v][:, 0]]
      np.testing.assert_array_equal(segment_of_slot, perm)


def test_shuffle_probability_extremes():
  outs = _draws(_parser(vclr_order_shuffle_prob=0.0), _video(30), 5)
  assert [int(o['order_label']) for o in outs] == [0] * 5
  for out in outs:
    np.testing.assert_array_equal(out['order_permutation'], [[0, 1, 2]] * 2)
    assert (np.diff(out['frame_index'][:, :, 0], axis=1) > 0).all()
  outs = _draws(_parser(vclr_order_shuffle_prob=1.0), _video(30), 5)
  assert [int(o['order_label']) for o in outs] == [3] * 5


def test_one_frame_clips():
  """T = 1: the 2D frame setting; a start anywhere in the segment."""
  outs = _draws(_parser(num_frames=1, temporal_stride=1), _video(12), 80)
  starts = collections.defaultdict(set)
  for out in outs:
    assert out['anchor'].shape == (3, 1, SIDE, SIDE, 3)
    for v, name in enumerate(('anchor', 'positive')):
      np.testing.assert_array_equal(_levels(out[name]),
                                    out['frame_index'][v])
      for slot, segment in enumerate(out['order_permutation'][v]):
        frame = out['frame_index'][v, slot, 0]
        assert 4 * segment <= frame < 4 * segment + 4
        starts[int(segment)].add(int(frame))
  assert starts == {0: {0, 1, 2, 3}, 1: {4, 5, 6, 7}, 2: {8, 9, 10, 11}}


def _jpeg_record(num_frames):
  seq = tf.train.SequenceExample()
  frames = seq.feature_lists.feature_list[pi.IMAGE_KEY]
  for frame in _video(num_frames, side=16):
    frames.feature.add().bytes_list.value[:] = [
        tf.io.encode_jpeg(frame, quality=95).numpy()]
  return seq.SerializeToString()


def test_short_video_from_jpeg_records():
  """5 frames, K = 3: segments [0], [1, 2], [3, 4], each looped."""
  parser = _parser(vclr_order_shuffle_prob=0.0)
  ds = tf.data.Dataset.from_tensors(
      {'serialized': _jpeg_record(5), 'source': 'short.tfrecord'}).repeat(20)
  ds = ds.map(pi.Decoder().decode).map(parser.parse_fn(True))
  seen = set()
  for out in ds:
    out = tf.nest.map_structure(lambda t: t.numpy(), out)
    assert out['problem'] == b'' and out['label'] == -1
    for v, name in enumerate(('anchor', 'positive')):
      idx = out['frame_index'][v]
      np.testing.assert_allclose(out[name].mean(axis=(2, 3, 4)) * 255, idx,
                                 atol=0.6)
      np.testing.assert_array_equal(idx[0], [0, 0, 0, 0])
      for k, first in ((1, 1), (2, 3)):
        # Stride 2 in a 2-frame segment: the same frame 4 times.
        assert idx[k].tolist() in ([first] * 4, [first + 1] * 4)
        seen.add(int(idx[k, 0]))
  assert seen == {1, 2, 3, 4}
  # Evaluation: the anchor is the centered (here first) clip of each segment.
  out = parser.parse_fn(False)(pi.Decoder().decode(
      tf.constant(_jpeg_record(5))))
  np.testing.assert_array_equal(out['frame_index'][0].numpy(),
                                [[0] * 4, [1] * 4, [3] * 4])


def test_evaluation_anchor_is_centered_unshuffled_and_center_cropped():
  parser = _parser(vclr_order_shuffle_prob=1.0)
  outs = _draws(parser, _video(30), 4, training=False)
  for out in outs:
    np.testing.assert_array_equal(
        out['frame_index'][0],
        [[1, 3, 5, 7], [11, 13, 15, 17], [21, 23, 25, 27]])
    np.testing.assert_array_equal(out['order_permutation'][0], [0, 1, 2])
    assert int(out['order_label']) == 2  # Only the positive is shuffled.


def test_each_clip_has_its_own_consistent_augmentation(monkeypatch):
  """Left half i, right half i + 100: a flip shows as a swapped pair."""
  video = _video(30).astype(np.int64)
  video[:, :, SIDE // 2:] += 100
  calls = []
  original = augmentations.augment_clip

  def counted(frames, *args, **kwargs):
    calls.append(frames.shape.as_list())
    return original(frames, *args, **kwargs)

  monkeypatch.setattr(augmentations, 'augment_clip', counted)
  parser = _parser(augmentation=augmentations.ClipAugmentation(
      min_area_ratio=1.0, min_aspect_ratio=1.0, max_aspect_ratio=1.0,
      color_jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0))
  outs = _draws(parser, video.astype(np.uint8), 6)
  # Traced once: one call of the shared augmentation per clip (2 K), and
  # one for the anchor's second view of its segment-0 clip.
  assert calls == [[4, SIDE, SIDE, 3]] * 7
  mixed = 0
  for out in outs:
    flips = []
    for v, name in enumerate(('anchor', 'positive')):
      left = np.round(out[name][:, :, 0, 0, 0] * 255)
      right = np.round(out[name][:, :, 0, -1, 0] * 255)
      flipped = left > right  # [K, T]
      # One draw per clip: all its frames flipped alike.
      assert (flipped == flipped[:, :1]).all()
      np.testing.assert_array_equal(np.minimum(left, right),
                                    out['frame_index'][v])
      flips += flipped[:, 0].tolist()
    mixed += 0 < sum(flips) < len(flips)
  # A draw per clip: flipped and unflipped clips within one example.
  assert mixed >= 4, mixed


def test_bad_video_is_reported_for_skipping():
  seq = tf.train.SequenceExample()  # No frames at all.
  out = _parser().parse_fn(True)(pi.Decoder().decode(
      {'serialized': tf.constant(seq.SerializeToString()),
       'source': tf.constant('empty.tfrecord')}))
  assert b'no frames' in out['problem'].numpy()
  assert out['source'].numpy() == b'empty.tfrecord'


# ------------------------------------------------ the two-clip mode kept ---


def _gray_record(num_frames):
  """The record of the golden values below (gray level 8 + 12 k)."""
  seq = tf.train.SequenceExample()
  seq.context.feature['clip/label/index'].int64_list.value[:] = [3]
  frames = seq.feature_lists.feature_list[pi.IMAGE_KEY]
  for k in range(num_frames):
    frame = np.full((32, 40, 3), 8 + 12 * k, np.uint8)
    frames.feature.add().bytes_list.value[:] = [
        tf.io.encode_jpeg(frame, quality=95).numpy()]
  return seq.SerializeToString()


# Recorded from the parser before `clip_sampling` existed (main at 78a302c):
# (training, frame_index, per-frame mean of 'image', sum over frames and
# boxes of 'boxes') for two examples of a seeded pipeline.
_TWO_CLIP_GOLDEN = (
    (True, [[5, 7, 9, 11], [5, 7, 9, 11]],
     [[0.200395, 0.271122, 0.34185, 0.412578]] * 2,
     [[4.165044, 4.260602, 7.364785, 7.455538],
      [4.421569, 5.495192, 7.59791, 8.606218]]),
    (True, [[3, 5, 7, 9], [3, 5, 7, 9]],
     [[0.139146, 0.215044, 0.290942, 0.36684]] * 2,
     [[4.486018, 4.15682, 7.69721, 7.698594],
      [4.711435, 4.396101, 8.93495, 8.164596]]),
    (False, [[2, 4, 6, 8], [5, 7, 9, 11]],
     [[0.12549, 0.219608, 0.313726, 0.407843],
      [0.200395, 0.271122, 0.34185, 0.412578]],
     [[5.183402, 4.760544, 8.8898, 8.508277],
      [3.363795, 4.415407, 6.902089, 8.173271]]),
    (False, [[2, 4, 6, 8], [2, 4, 6, 8]],
     [[0.12549, 0.219608, 0.313726, 0.407843],
      [0.101197, 0.177095, 0.252993, 0.328891]],
     [[4.403449, 3.398596, 7.773224, 7.295574],
      [3.3848, 5.498058, 7.052917, 9.228577]]),
)


@pytest.mark.parametrize('training', [True, False])
def test_two_clip_mode_is_unchanged(training):
  tf.random.set_seed(20261202)
  parser = pi.Parser(num_frames=4, temporal_stride=2, output_size=(32, 32),
                     num_boxes=3, augmentation=augmentations.ClipAugmentation())
  assert parser.clip_sampling == 'two_clips'
  ds = tf.data.Dataset.from_tensors(
      {'serialized': _gray_record(12), 'source': 'g'}).repeat(2)
  ds = ds.map(pi.Decoder().decode).map(parser.parse_fn(training))
  golden = [g for g in _TWO_CLIP_GOLDEN if g[0] == training]
  for out, (_, frame_index, means, box_sums) in zip(ds, golden):
    out = tf.nest.map_structure(lambda t: t.numpy(), out)
    assert set(out) == {'image', 'boxes', 'boxes_mask', 'frame_index',
                        'label', 'num_corrupt_frames', 'problem', 'source'}
    np.testing.assert_array_equal(out['frame_index'], frame_index)
    np.testing.assert_allclose(out['image'].mean(axis=(2, 3, 4)), means,
                               atol=2e-6)
    np.testing.assert_allclose(out['boxes'].sum(axis=(1, 2)), box_sums,
                               atol=2e-5)
    assert out['label'] == 3


# ------------------------------------------------------------- configs ---


def test_config_fields_reach_the_parser():
  # pylint: disable=protected-access
  params = const_cl.DataConfig(feature_shape=(1, 16, 16, 3),
                               clip_sampling='vclr_segments',
                               vclr_num_segments=4,
                               vclr_order_shuffle_prob=0.25)
  parser = pi.Parser.from_config(params)
  assert parser.clip_sampling == 'vclr_segments'
  assert parser._vclr_num_segments == 4
  assert parser._vclr_order_shuffle_prob == 0.25
  default = const_cl.DataConfig()
  assert (default.clip_sampling, default.vclr_num_segments,
          default.vclr_order_shuffle_prob) == ('two_clips', 3, 0.5)


@pytest.mark.parametrize('kwargs,match', [
    (dict(clip_sampling='tsn'), 'clip_sampling'),
    (dict(vclr_num_segments=0), 'vclr_num_segments must be >= 1'),
    (dict(vclr_order_shuffle_prob=1.5), 'vclr_order_shuffle_prob must be'),
    (dict(vclr_num_segments=1), 'needs vclr_num_segments >= 2'),
])
def test_parser_rejects_bad_values(kwargs, match):
  with pytest.raises(ValueError, match=match):
    _parser(**kwargs)


def test_one_segment_without_shuffling_is_allowed():
  out = _draws(_parser(vclr_num_segments=1, vclr_order_shuffle_prob=0.0),
               _video(10), 1)[0]
  assert out['anchor'].shape == (1, 4, SIDE, SIDE, 3)
  assert int(out['order_label']) == 0


def _problems(override):
  params = hyperparams.override_params_dict(
      exp_factory.get_exp_config('const_cl_pretrain_demo'), override,
      is_strict=True)
  with pytest.raises(validation.ConfigError) as info:
    validation.validate_experiment(params, 'train')
  return info.value.problems


@pytest.mark.parametrize('override,expected', [
    ('task.train_data.clip_sampling=tsn',
     "task.train_data.clip_sampling: must be one of ['two_clips', "
     "'vclr_segments'], got 'tsn'"),
    ('task.train_data.vclr_num_segments=0',
     'task.train_data.vclr_num_segments: must be >= 1, got 0'),
    ('task.train_data.vclr_order_shuffle_prob=1.5',
     'task.train_data.vclr_order_shuffle_prob: must be in [0.0, 1.0], got '
     '1.5'),
    ('task.validation_data.clip_sampling=vclr_segments',
     "task.validation_data.clip_sampling: must be 'two_clips' for ConST-CL / "
     "CVRL pretraining (two views with region boxes), got 'vclr_segments'"),
])
def test_config_checks_name_the_key(override, expected):
  assert _problems(override) == [expected]


def test_one_segment_with_shuffling_is_a_config_error():
  problems = _problems('task.train_data.clip_sampling=vclr_segments,'
                       'task.train_data.vclr_num_segments=1')
  assert ('task.train_data.vclr_order_shuffle_prob: must be 0 with '
          'vclr_num_segments=1 (one clip cannot be shuffled), got 0.5'
          in problems), problems


def test_order_labels_use_the_losses_encoding():
  """The sampler's label is what `losses.vclr.order_label` computes from
  which tuple it shuffled."""
  from official_projects_const_cl.losses import vclr  # pylint: disable=g-import-not-at-top
  tf.random.set_seed(11)
  seen = set()
  for out in _draws(_parser(), _video(30), 40):
    anchor, positive = (p.tolist() != [0, 1, 2]
                        for p in out['order_permutation'])
    assert int(out['order_label']) == int(vclr.order_label(anchor, positive))
    seen.add(int(out['order_label']))
  assert seen == {0, 1, 2, 3}


@pytest.mark.parametrize('training', [True, False])
def test_second_view_shows_the_anchor_clip_of_segment_0(training):
  """'anchor_second_view' has the frames of the anchor slot of segment 0."""
  parser = _parser()
  for out in _draws(parser, _video(30), 6, training=training):
    assert out['anchor_second_view'].shape == (4, SIDE, SIDE, 3)
    slot = int(np.argmax(out['order_permutation'][0] == 0))
    levels = _levels(out['anchor_second_view'][None])[0]
    np.testing.assert_array_equal(levels, out['frame_index'][0, slot])
    np.testing.assert_array_equal(levels,
                                  _levels(out['anchor'])[slot])
