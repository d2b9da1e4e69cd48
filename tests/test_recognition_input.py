"""Tests for dataloaders/recognition_input.py (training clips, test views)."""

import numpy as np
import pytest
import tensorflow as tf

from official_projects_const_cl.configs import recognition as rec_cfg
from official_projects_const_cl.dataloaders import pretrain_input as pi
from official_projects_const_cl.dataloaders import recognition_input as ri
# Record writers shared with the pretraining input tests (H=32, W=40 frames
# whose gray level codes the frame index).
from test_pretrain_input import _coded_frame, _coded_video, _example, _level, _write  # pylint: disable=g-multiple-import


def _parse(record, training, source='mem.tfrecord', **kwargs):
  args = dict(num_frames=4, temporal_stride=2, output_size=(32, 32),
              num_classes=10, num_test_clips=3, num_test_crops=3,
              min_image_size=32)
  args.update(kwargs)
  parser = ri.Parser(**args)
  ds = tf.data.Dataset.from_tensors({'serialized': record, 'source': source})
  ds = ds.map(pi.Decoder().decode).map(parser.parse_fn(training))
  return tf.nest.map_structure(lambda t: t.numpy(), ds.get_single_element())


def test_eval_clip_starts_worked_values():
  # 32 frames, 8 x stride 2 = span 15: starts 0..17 in 10 even steps.
  starts = ri.eval_clip_starts(tf.constant(32), 8, 2, 10).numpy()
  np.testing.assert_array_equal(starts, [0, 2, 4, 6, 8, 9, 11, 13, 15, 17])
  # One clip: the centered one ((32 - 15) // 2).
  assert ri.eval_clip_starts(tf.constant(32), 8, 2, 1).numpy().tolist() == [8]
  # Short video (5 < 15 frames): starts spread over all its frames.
  np.testing.assert_array_equal(
      ri.eval_clip_starts(tf.constant(5), 8, 2, 3).numpy(), [0, 2, 4])
  assert ri.eval_clip_starts(tf.constant(5), 8, 2, 1).numpy().tolist() == [0]


@pytest.mark.parametrize('height,width,axis', [(4, 6, 'x'), (6, 4, 'y'),
                                               (4, 4, 'x')])
def test_three_crops_along_the_longer_side(height, width, axis):
  ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  frame = np.stack([ys / 10.0, xs / 10.0, np.zeros_like(ys, float)], -1)
  frames = tf.constant(frame[None], tf.float32)  # No resize: shorter side 4.
  crops = ri.spatial_crops(frames, 4, (4, 4), 3).numpy()
  assert crops.shape == (3, 1, 4, 4, 3)
  top_left = [(round(c[0, 0, 0, 0] * 10), round(c[0, 0, 0, 1] * 10))
              for c in crops]
  longer = max(height, width)
  moving = [0, (longer - 4) // 2, longer - 4]
  expected = ([(0, m) for m in moving] if axis == 'x' else
              [(m, 0) for m in moving])
  assert top_left == expected
  center = ri.spatial_crops(frames, 4, (4, 4), 1).numpy()[0, 0]
  np.testing.assert_allclose(center, crops[1, 0])


def test_crops_after_resizing_the_shorter_side():
  frames = tf.zeros([2, 20, 40, 3], tf.uint8)  # -> 16 x 32.
  crops = ri.spatial_crops(frames, 16, (16, 16), 3)
  assert crops.shape == (3, 2, 16, 16, 3)
  with pytest.raises(ValueError, match='min_image_size'):
    ri.Parser(output_size=(32, 32), min_image_size=24, is_training=False)


def test_eval_views_are_clip_major_and_frame_exact():
  # 16 frames, 4 frames at stride 2 (span 7): clip starts 0, 4, 9.
  out = _parse(_coded_video(16, label=7), training=False,
               min_image_size=32)
  assert out['image'].shape == (9, 4, 32, 32, 3)
  assert out['label'] == 7 and out['num_corrupt_frames'] == 0
  levels = out['image'].mean(axis=(2, 3, 4)) * 255  # [views, T]
  for view in range(9):
    clip = view // 3
    start = [0, 4, 9][clip]
    expected = [_level(start + 2 * k) for k in range(4)]
    np.testing.assert_allclose(levels[view], expected, atol=2.0)
  # Frames are 32 x 40: the three crops move along the width.
  first_columns = out['image'][:3, 0, 0, 0, 0]
  assert np.all(np.isfinite(first_columns))


def test_training_clip_is_one_augmented_clip():
  out = _parse(_coded_video(20, label=2), training=True)
  assert out['image'].shape == (4, 32, 32, 3)
  assert out['image'].dtype == np.float32
  assert 0.0 <= out['image'].min() and out['image'].max() <= 1.0
  levels = out['image'].mean(axis=(1, 2, 3)) * 255
  # Consecutive sampled frames are 2 apart (level step 24), in order.
  np.testing.assert_allclose(np.diff(levels), 24.0, atol=2.0)
  assert out['label'] == 2


def test_missing_label_names_the_file():
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'videos/a\.tfrecord: the record has no class'):
    _parse(_coded_video(8), training=True, source='videos/a.tfrecord')


def test_label_out_of_range_names_the_file_and_label():
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'b\.tfrecord: class label 12 is outside \[0, 10\)'):
    _parse(_coded_video(8, label=12), training=False, source='b.tfrecord')


def test_corrupt_frames_are_replaced_and_counted_in_eval():
  frames = [_coded_frame(k) for k in range(16)]
  frames[4] = b'not a jpeg'
  out = _parse(_example(frames, labels=(1,)), training=False,
               num_test_clips=2, num_test_crops=1)
  # Clips start at 0 and 9; frame 4 is sampled once (clip 0, slot 2).
  assert out['num_corrupt_frames'] == 1
  levels = out['image'].mean(axis=(2, 3, 4)) * 255
  # Slot 2 shows the nearest readable sampled frame (slot 1, frame 2).
  np.testing.assert_allclose(levels[0], [_level(k) for k in (0, 2, 2, 6)],
                             atol=2.0)


def test_dataset_batches_views(tmp_path):
  path = _write(tmp_path / 'val.tfrecord',
                [_coded_video(12, label=i) for i in range(3)])
  params = rec_cfg.RecognitionDataConfig(
      input_path=path, feature_shape=(4, 32, 32, 3), temporal_stride=2,
      num_classes=5, num_test_clips=2, num_test_crops=3, min_image_size=32,
      global_batch_size=2, is_training=False, drop_remainder=False)
  batches = list(ri.build_recognition_dataset(params))
  assert [b['image'].shape[0] for b in batches] == [2, 1]
  assert batches[0]['image'].shape[1:] == (6, 4, 32, 32, 3)
  labels = sorted(np.concatenate([b['label'].numpy() for b in batches]))
  assert labels == [0, 1, 2]
  with pytest.raises(FileNotFoundError, match='nowhere'):
    ri.build_recognition_dataset(
        params.replace(input_path=str(tmp_path / 'nowhere*')))
