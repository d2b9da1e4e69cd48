"""Tests for dataloaders/pretrain_input.py (two-view clips with boxes)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from official.vision.data import fake_feature_generator
from official.vision.dataloaders import tfexample_utils
from official_projects_const_cl.configs import const_cl
from official_projects_const_cl.dataloaders import augmentations
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.dataloaders import frames as frames_lib
from official_projects_const_cl.dataloaders import pretrain_input as pi
from official_projects_const_cl.dataloaders import records

H, W = 32, 40
NO_COLOR = augmentations.ClipAugmentation(
    color_jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0)


# ------------------------------------------------------- fixture writers ---


def _level(k):
  """Gray level coding frame index k."""
  return 8 + 12 * k


def _jpeg(image):
  return tf.io.encode_jpeg(tf.constant(image, tf.uint8), quality=95).numpy()


def _coded_frame(k):
  return _jpeg(np.full((H, W, 3), _level(k), np.uint8))


def _example(frames, labels=(), boxes=None, image_key=features.IMAGE_KEY):
  """A SequenceExample: frames (JPEG bytes), labels, per-frame box lists."""
  seq = tf.train.SequenceExample()
  seq.context.feature[features.LABEL_KEY].int64_list.value[:] = list(labels)
  image_list = seq.feature_lists.feature_list[image_key]  # May stay empty.
  for frame in frames:
    image_list.feature.add().bytes_list.value[:] = [frame]
  if boxes is not None:
    for t in range(len(frames)):
      frame_boxes = np.asarray(boxes[t], np.float32).reshape(-1, 4)
      for i, key in enumerate(features.BBOX_KEYS):
        feature = seq.feature_lists.feature_list[key].feature.add()
        feature.float_list.value[:] = frame_boxes[:, i].tolist()
  return seq.SerializeToString()


def _write(path, records):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for record in records:
      writer.write(record)
  return str(path)


def _coded_video(n, label=None):
  return _example([_coded_frame(k) for k in range(n)],
                  labels=() if label is None else (label,))


def _config(path, **overrides):
  params = const_cl.DataConfig(
      input_path=path, feature_shape=(4, 32, 32, 3), temporal_stride=2,
      num_boxes=3, global_batch_size=2, is_training=True, drop_remainder=True,
      shuffle_buffer_size=4, cycle_length=2)
  return params.replace(**overrides)


def _parse(record, source='mem.tfrecord', training=True, load_boxes=False,
           **parser_kwargs):
  """Decoder + Parser on one record, inside a tf.data map (as in training)."""
  kwargs = dict(num_frames=4, temporal_stride=2, output_size=(32, 32),
                num_boxes=3, augmentation=NO_COLOR)
  kwargs.update(parser_kwargs)
  parser = pi.Parser(**kwargs)
  decoder = pi.Decoder(load_boxes=load_boxes)
  ds = tf.data.Dataset.from_tensors({'serialized': record, 'source': source})
  ds = ds.map(decoder.decode).map(parser.parse_fn(training))
  return tf.nest.map_structure(lambda t: t.numpy(), ds.get_single_element())


def _frame_levels(image):
  """Mean gray level (0..255) of every frame of [2, T, H, W, 3] views."""
  return image.mean(axis=(2, 3, 4)) * 255


# --------------------------------------------------------------- parsing ---


def test_shapes_dtypes_ranges_and_labels():
  out = _parse(_example([_coded_frame(k) for k in range(12)], labels=(3, 5)),
               augmentation=augmentations.ClipAugmentation())
  assert set(out) == {'image', 'boxes', 'boxes_mask', 'frame_index', 'label',
                      'num_corrupt_frames', 'problem', 'source'}
  assert out['problem'] == b'' and out['source'] == b'mem.tfrecord'
  assert out['image'].shape == (2, 4, 32, 32, 3)
  assert out['image'].dtype == np.float32
  assert 0.0 <= out['image'].min() and out['image'].max() <= 1.0
  assert out['boxes'].shape == (2, 4, 3, 4)
  assert out['boxes'].dtype == np.float32
  assert out['boxes_mask'].shape == (2, 4, 3)
  np.testing.assert_array_equal(out['boxes_mask'], 1.0)
  assert out['frame_index'].shape == (2, 4)
  assert out['frame_index'].dtype == np.int32
  assert out['label'] == 3 and out['label'].dtype == np.int32
  assert out['num_corrupt_frames'] == 0
  assert out['num_corrupt_frames'].dtype == np.int32
  # No label -> -1.
  assert _parse(_coded_video(12))['label'] == -1


def test_static_shapes_for_batching():
  parser = pi.Parser(num_frames=4, temporal_stride=2, output_size=(32, 48),
                     num_boxes=3)
  ds = tf.data.Dataset.from_tensors(
      {'serialized': _coded_video(12), 'source': 'x'}).map(
          pi.Decoder().decode).map(parser.parse_fn(True))
  spec = ds.element_spec
  assert spec['image'].shape == (2, 4, 32, 48, 3)
  assert spec['boxes'].shape == (2, 4, 3, 4)
  assert spec['boxes_mask'].shape == (2, 4, 3)
  assert spec['frame_index'].shape == (2, 4)
  assert spec['label'].shape == () and spec['num_corrupt_frames'].shape == ()


def test_frame_index_stride_and_pixels():
  seen_starts = set()
  for _ in range(6):
    out = _parse(_coded_video(12))
    idx = out['frame_index']
    np.testing.assert_array_equal(np.diff(idx, axis=1), 2)
    assert idx.min() >= 0 and idx.max() <= 11
    seen_starts.update(idx[:, 0].tolist())
    # The pixels are those of the reported frames.
    np.testing.assert_allclose(_frame_levels(out['image']), _level(idx),
                               atol=2.5)
  assert len(seen_starts) > 1  # Random starts.


def test_short_video_loops():
  for _ in range(4):
    idx = _parse(_coded_video(5))['frame_index']
    for view in idx:
      np.testing.assert_array_equal(view, (view[0] + 2 * np.arange(4)) % 5)
  # Centered eval clip of a short video starts at 0.
  np.testing.assert_array_equal(
      _parse(_coded_video(3), training=False)['frame_index'][0], [0, 2, 1, 0])


def test_eval_view0_centered_and_deterministic():
  outs = [_parse(_coded_video(12), training=False,
                 augmentation=augmentations.ClipAugmentation())
          for _ in range(2)]
  for out in outs:
    # span 7 in 12 frames -> start (12 - 7) // 2 = 2.
    np.testing.assert_array_equal(out['frame_index'][0], [2, 4, 6, 8])
    np.testing.assert_allclose(_frame_levels(out['image'])[0],
                               [_level(k) for k in (2, 4, 6, 8)], atol=2.5)
  np.testing.assert_allclose(outs[0]['image'][0], outs[1]['image'][0])


def test_two_views_differ():
  rng = np.random.default_rng(0)
  frames = [_jpeg(rng.integers(0, 256, (H, W, 3), np.uint8))] * 12
  out = _parse(_example(frames), augmentation=augmentations.ClipAugmentation())
  assert not np.allclose(out['image'][0], out['image'][1], atol=1e-3)
  assert not np.allclose(out['boxes'][0], out['boxes'][1])


# ------------------------------------------------------ through InputReader --


def _generate_image_np(height, width, num_channels=3):
  """Model Garden's fake image (its own `np.reshape(newshape=...)` call
  fails under NumPy >= 2.4), same pixels."""
  return np.reshape(
      np.mod(np.arange(height * width * num_channels), 255).astype(np.uint8),
      (height, width, num_channels))


def test_model_garden_test_records_load(tmp_path, monkeypatch):
  monkeypatch.setattr(fake_feature_generator, 'generate_image_np',
                      _generate_image_np)
  examples = [tfexample_utils.make_video_test_example(
      image_shape=(36, 48, 3), audio_shape=(4, 8), label=7) for _ in range(2)]
  path = str(tmp_path / 'mg.tfrecord')
  tfexample_utils.dump_to_tfrecord(path, examples)
  ds = pi.build_pretrain_dataset(_config(path))
  batch = next(iter(ds))
  assert batch['image'].shape == (2, 2, 4, 32, 32, 3)
  np.testing.assert_array_equal(batch['label'].numpy(), [7, 7])
  # 4 frames, stride 2: the clips loop.
  for view in batch['frame_index'].numpy().reshape(-1, 4):
    np.testing.assert_array_equal(view, (view[0] + 2 * np.arange(4)) % 4)
  assert batch['num_corrupt_frames'].numpy().tolist() == [0, 0]


def test_boxes_fresh_across_examples_in_pipeline(tmp_path):
  rng = np.random.default_rng(1)
  frame = _jpeg(rng.integers(0, 256, (H, W, 3), np.uint8))
  paths = [_write(tmp_path / f'train-{i}.tfrecord',
                  [_example([frame] * 8, labels=(i,))] * 2) for i in range(2)]
  ds = pi.build_pretrain_dataset(
      _config(str(tmp_path / 'train-*.tfrecord'), global_batch_size=4))
  assert len(paths) == 2
  boxes = np.concatenate([b['boxes'].numpy() for b in ds.take(2)])
  boxes = boxes.reshape(-1, 4, 3, 4)  # 8 examples x 2 views.
  for i in range(len(boxes)):
    for j in range(i):
      assert not np.allclose(boxes[i], boxes[j]), (i, j)
  flat = boxes.reshape(-1, 4)
  assert np.mean(np.abs(flat[:, 0] - flat[:, 1]) < 1e-3) < 0.05


def test_knn_dataset_bank_then_queries(tmp_path):
  bank = _write(tmp_path / 'bank.tfrecord',
                [_coded_video(6, label) for label in (0, 1, 2)])
  queries = _write(tmp_path / 'val.tfrecord',
                   [_coded_video(6, label) for label in (5, 6)])
  params = _config(queries, is_training=False, drop_remainder=False,
                   knn_bank_input_path=bank)
  batches = list(pi.build_knn_dataset(params))
  assert [b['label'].shape[0] for b in batches] == [2, 2, 1]
  labels = np.concatenate([b['label'].numpy() for b in batches])
  is_query = np.concatenate([b['is_query'].numpy() for b in batches])
  np.testing.assert_array_equal(labels, [0, 1, 2, 5, 6])
  np.testing.assert_array_equal(is_query, [False, False, False, True, True])
  # Eval view 0: span 7 > 6 frames, so the clip loops from 0.
  for b in batches:
    for idx in b['frame_index'].numpy()[:, 0]:
      np.testing.assert_array_equal(idx, [0, 2, 4, 0])
  with pytest.raises(ValueError, match='knn_bank_input_path'):
    pi.build_knn_dataset(_config(queries, is_training=False))


# ------------------------------------------------------------ region sources --


def _square_video(n):
  """Black frames with a white 12 x 16 square left of the center."""
  frame = np.zeros((H, W, 3), np.uint8)
  frame[8:20, 4:20] = 255
  box = [8 / H, 4 / W, 20 / H, 20 / W]
  # A second stored box only on frame 0, to exercise ragged lists.
  boxes = [[box, [0, 0, 0.5, 0.5]] if t == 0 else [box] for t in range(n)]
  return _example([_jpeg(frame)] * n, boxes=boxes)


def test_stored_boxes_follow_crop_and_flip():
  aug = augmentations.ClipAugmentation(
      min_area_ratio=0.8, color_jitter_prob=0.0, grayscale_prob=0.0,
      blur_prob=0.0)
  for training in (True, False, True, True):
    out = _parse(_square_video(8), training=training, load_boxes=True,
                 region_source='stored', augmentation=aug)
    for v in range(2):
      for t in range(4):
        box, mask = out['boxes'][v, t], out['boxes_mask'][v, t]
        assert mask[0] == 1.0  # The square stays in the 80% crops.
        ys, xs = np.nonzero(out['image'][v, t, :, :, 0] > 0.5)
        center = [(ys.mean() + 0.5) / 32, (xs.mean() + 0.5) / 32]
        np.testing.assert_allclose(
            center, [(box[0][0] + box[0][2]) / 2, (box[0][1] + box[0][3]) / 2],
            atol=1.5 / 32)
        if out['frame_index'][v, t] != 0:
          np.testing.assert_array_equal(mask[1:], 0)
          np.testing.assert_array_equal(box[1:], 0)
  # View 0 in eval: center crop of 32 x 40 -> 32 x 32, columns 4..35.
  out = _parse(_square_video(8), training=False, load_boxes=True,
               region_source='stored', augmentation=aug)
  np.testing.assert_allclose(out['boxes'][0, 0, 0],
                             [8 / 32, 0 / 32, 20 / 32, 16 / 32], atol=1e-5)
  np.testing.assert_allclose(out['boxes'][0, 0, 1],
                             [0, 0, 0.5, 16 / 32], atol=1e-5)
  np.testing.assert_array_equal(out['boxes_mask'][0, 0], [1, 1, 0])


def test_slic_boxes_in_pipeline():
  rng = np.random.default_rng(2)
  blocks = rng.integers(0, 256, (4, 5, 3), np.uint8)
  frame = np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)
  out = _parse(_example([_jpeg(frame)] * 8), region_source='slic',
               num_boxes=4, num_segments=16)
  assert out['boxes'].shape == (2, 4, 4, 4)
  assert out['boxes_mask'].sum() > 0
  valid = out['boxes'][out['boxes_mask'] > 0]
  assert valid.min() >= 0 and valid.max() <= 1
  assert (valid[:, 2] > valid[:, 0]).all() and (valid[:, 3] > valid[:, 1]).all()
  np.testing.assert_array_equal(out['boxes'][out['boxes_mask'] == 0], 0)


# ------------------------------------------------------------- bad inputs ---


@pytest.mark.parametrize('cache', [False, True])
def test_corrupt_frames_are_replaced_and_counted(tmp_path, cache):
  # 8 frames, clips of 4 at stride 2 start at 0 or 1, so every clip holds
  # exactly one of the broken frames 2 (truncated) and 3 (garbage).
  frames = [_coded_frame(k) for k in range(8)]
  frames[2] = frames[2][:len(frames[2]) // 2]
  frames[3] = b'this is not a jpeg'
  record = _example(frames, labels=(1,))
  out = _parse(record, training=False)
  # Centered clip [0, 2, 4, 6]: slot 1 takes its nearest readable neighbour
  # (tie between frames 0 and 4 -> the earlier one).
  np.testing.assert_array_equal(out['frame_index'][0], [0, 0, 4, 6])
  np.testing.assert_allclose(_frame_levels(out['image'])[0],
                             [_level(k) for k in (0, 0, 4, 6)], atol=2.5)
  assert out['num_corrupt_frames'] == 2
  # Through the full pipeline nothing fails and every example counts 2.
  path = _write(tmp_path / 'corrupt.tfrecord', [record] * 2)
  batch = next(iter(pi.build_pretrain_dataset(_config(path, cache=cache))))
  np.testing.assert_array_equal(batch['num_corrupt_frames'].numpy(), [2, 2])


def test_overlapping_clips_share_decoded_frames():
  """Clips sampling the same frames (decoded once) show them all, in order."""
  frames = [_coded_frame(k) for k in range(8)]
  frames[3] = b'this is not a jpeg'
  indices = tf.constant([[0, 2, 4, 6], [3, 4, 5, 6], [6, 6, 3, 1]])
  clips = frames_lib.decode_clips(tf.constant(frames), indices, (H, W))
  # Frame 3 is unreadable: slot (1, 0) takes 4 (its only neighbour), slot
  # (2, 2) the earlier of its neighbours 6 and 1 (tie -> earlier slot).
  want = [[0, 2, 4, 6], [4, 4, 5, 6], [6, 6, 6, 1]]
  np.testing.assert_array_equal(clips.indices, want)
  levels = clips.images.numpy().reshape(3, 4, -1).mean(-1)
  np.testing.assert_allclose(levels, np.vectorize(_level)(want), atol=2.5)
  # Counted per sampled slot, not per distinct frame.
  assert int(clips.num_corrupt) == 2 and clips.problem.numpy() == b''
  # A video decoded once (the cached pipeline) gives the same clips.
  frames[5] = frames[5][:len(frames[5]) // 2]  # Truncated as well.
  video = frames_lib.decode_video(tf.constant(frames))
  np.testing.assert_array_equal(video.row_of_frame,
                                [0, 1, 2, -1, 3, -1, 4, 5])
  for idx in (indices, tf.constant([[5, 5, 5, 5], [3, 5, 3, 5]])):
    want = frames_lib.decode_clips(tf.constant(frames), idx, (H, W))
    got = frames_lib.clips_from_video(video, idx, (H, W))
    for a, b in zip(want, got):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert b'none of the sampled frames (5,5,5,5)' in got.problem.numpy()
  empty = frames_lib.clips_from_video(
      frames_lib.decode_video(tf.zeros([0], tf.string)),
      tf.zeros([1, 4], tf.int32), (H, W))
  assert b'no frames under' in empty.problem.numpy()
  assert empty.images.shape == (1, 4, H, W, 3)


def _all(dataset, limit):
  return [{k: v.numpy() for k, v in b.items()}
          for b in dataset.take(limit)]


def test_cached_pipeline_matches_and_augments_afresh(tmp_path):
  """cache=True: same eval views as without it, fresh training draws."""
  videos = [_coded_video(10 + k, label=k) for k in range(4)]
  path = _write(tmp_path / 'v.tfrecord', videos)
  val = dict(is_training=False, drop_remainder=False, global_batch_size=4)
  plain = _all(pi.build_pretrain_dataset(_config(path, **val)), 2)
  cached = _all(pi.build_pretrain_dataset(_config(path, cache=True, **val)),
                2)
  assert len(plain) == len(cached) == 1
  order = np.argsort(plain[0]['label']), np.argsort(cached[0]['label'])
  for key in ('image', 'frame_index', 'boxes_mask'):
    np.testing.assert_array_equal(plain[0][key][order[0], 0],
                                  cached[0][key][order[1], 0])
  # Training: 4 videos, 8 epochs; every video is sampled afresh each time
  # (the cache holds decoded frames, not clips).
  train = pi.build_pretrain_dataset(
      _config(path, cache=True, global_batch_size=4, shuffle_buffer_size=1))
  starts = {k: set() for k in range(4)}
  for batch in _all(train, 8):
    for label, index in zip(batch['label'], batch['frame_index']):
      starts[int(label)].update(index[:, 0].tolist())
      # Frames at the stride, looped within the video's own length.
      assert np.all(np.diff(index, axis=1) % (10 + label) == 2)
  assert all(len(s) > 1 for s in starts.values()), starts


def test_readable_jpeg_checks():
  good = _coded_frame(0)
  frames = tf.constant([good, good[:-40], b'garbage', b'', good + b'\0' * 8])
  np.testing.assert_array_equal(frames_lib.readable_jpeg(frames).numpy(),
                                [True, False, False, False, True])


@pytest.mark.parametrize('cache', [False, True])
def test_all_sampled_frames_corrupt_names_file(tmp_path, cache):
  # With no bad-video budget the first bad video stops the pipeline.
  path = _write(tmp_path / 'allbad.tfrecord', [_example([b'junk'] * 6)])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'allbad\.tfrecord record 0: none of the sampled '
                     r'frames \([0-9,]+\) is a readable JPEG'):
    next(iter(pi.build_pretrain_dataset(
        _config(path, max_bad_videos=0, max_bad_video_fraction=0.0,
                cache=cache))))


@pytest.mark.parametrize('record', [
    _example([_coded_frame(0)] * 4, image_key='image/other'),  # No key.
    _example([]),  # Empty video.
], ids=['missing_key', 'empty_video'])
def test_no_frames_error_names_file(tmp_path, record):
  # Only bad videos: the default budget (max(100, 1% of the videos read))
  # stops the training pipeline at the 101st, naming it.
  path = _write(tmp_path / 'broken.tfrecord', [record])
  with pytest.raises(tf.errors.InvalidArgumentError) as info:
    next(iter(pi.build_pretrain_dataset(_config(path))))
  message = str(info.value)
  assert 'broken.tfrecord record 0' in message
  assert '101 of the 101 videos read are bad' in message
  assert 'no frames under' in message and 'image/encoded' in message
  assert 'key missing or video empty' in message


def test_missing_stored_boxes_names_file_and_key(tmp_path):
  path = _write(tmp_path / 'noboxes.tfrecord', [_coded_video(8)])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'noboxes\.tfrecord.*region/bbox/ymin'):
    next(iter(pi.build_pretrain_dataset(
        _config(path, region_source='stored'))))


def test_input_path_errors(tmp_path):
  pattern = str(tmp_path / 'nothing-*.tfrecord')
  with pytest.raises(FileNotFoundError, match='nothing-'):
    records.check_input_path(pattern)
  with pytest.raises(FileNotFoundError,
                     match='task.train_data.input_path: .*nothing-'):
    pi.build_pretrain_dataset(_config(pattern))
  with pytest.raises(FileNotFoundError, match=r'is a directory.*\*\.tfrecord'):
    records.check_input_path(str(tmp_path))
  with pytest.raises(FileNotFoundError, match='empty'):
    records.check_input_path('')
  a = _write(tmp_path / 'a.tfrecord', [])
  b = _write(tmp_path / 'b.tfrecord', [])
  assert records.check_input_path(f'{b}, {tmp_path}/a*') == [a, b]
  with pytest.raises(FileNotFoundError, match='missing.tfrecord'):
    records.check_input_path(
        f'{a},{os.path.join(tmp_path, "missing.tfrecord")}')


def test_from_config_maps_fields():
  # pylint: disable=protected-access
  params = _config('x', feature_shape=(6, 24, 40, 3), temporal_stride=3,
                   num_boxes=5, region_source='fh', fh_scale=1000.0,
                   aug_flip=False, aug_blur_prob=0.0)
  parser = pi.Parser.from_config(params)
  assert parser._num_frames == 6 and parser._stride == 3
  assert parser._output_size == (24, 40)
  assert parser._num_boxes == 5 and parser.region_source == 'fh'
  assert parser._segment_args['fh_scale'] == 1000.0
  assert not parser._augmentation.flip
  assert parser._augmentation.blur_prob == 0.0
  with pytest.raises(ValueError, match='region_source'):
    pi.Parser(region_source='detector')


def test_decoder_and_parser_eagerly():
  record = _example([_coded_frame(k) for k in range(12)], labels=(4,),
                    boxes=[[[0.1, 0.1, 0.5, 0.5]]] * 12)
  decoded = pi.Decoder(load_boxes=True).decode(tf.constant(record))
  assert decoded['image'].shape == (12,)
  assert decoded['source'].numpy() == pi.UNKNOWN_SOURCE.encode()
  np.testing.assert_array_equal(decoded['label'].numpy(), [4])
  assert decoded['boxes'].shape == (12, 1, 4)
  np.testing.assert_array_equal(decoded['boxes_mask'].numpy(), 1.0)
  parser = pi.Parser(num_frames=4, temporal_stride=2, output_size=(32, 32),
                     num_boxes=3, region_source='stored', augmentation=NO_COLOR,
                     is_training=False)
  out = tf.nest.map_structure(lambda t: t.numpy(), parser(decoded))
  np.testing.assert_array_equal(out['frame_index'][0], [2, 4, 6, 8])
  np.testing.assert_allclose(_frame_levels(out['image'])[0],
                             [_level(k) for k in (2, 4, 6, 8)], atol=2.5)
  np.testing.assert_array_equal(out['boxes_mask'][0], [[1, 0, 0]] * 4)
  # Center crop of 32 x 40: columns 4..35 -> x = (0.1 * 40 - 4) / 32 = 0.
  np.testing.assert_allclose(out['boxes'][0, :, 0],
                             [[0.1, 0, 0.5, 16 / 32]] * 4, atol=1e-5)
  # A record without frames decodes (the parser marks it as a bad video).
  assert pi.Decoder().decode(tf.constant(_example([])))['image'].shape == (0,)


def test_inconsistent_stored_boxes_name_file_and_key():
  seq = tf.train.SequenceExample.FromString(_square_video(2))
  seq.feature_lists.feature_list[features.BBOX_XMIN_KEY].feature[
      1].float_list.value.append(0.3)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'f\.tfrecord.*region/bbox/xmin.*different number'):
    pi.Decoder(load_boxes=True).decode(
        {'serialized': tf.constant(seq.SerializeToString()),
         'source': tf.constant('f.tfrecord')})


def test_files_are_sharded_per_worker(tmp_path):
  for i in range(4):
    _write(tmp_path / f'val-{i}.tfrecord', [_coded_video(8, label=i)])
  params = _config(str(tmp_path / 'val-*.tfrecord'), is_training=False,
                   drop_remainder=False, global_batch_size=2)
  seen = []
  for worker in range(2):
    context = tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=worker,
        num_replicas_in_sync=2)
    ds = pi.build_pretrain_dataset(params, input_context=context)
    labels = [b['label'].numpy().tolist() for b in ds]
    assert all(len(b) == 1 for b in labels)  # Per-replica batch 2 / 2.
    seen.append(sorted(sum(labels, [])))
  assert len(seen[0]) == 2 and len(seen[1]) == 2
  assert sorted(seen[0] + seen[1]) == [0, 1, 2, 3]
