"""Tests of the demo world and its dataset (dataloaders/demo_*.py, docs/demo.md)."""

import collections
import glob
import hashlib
import json
import os
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from official.vision.configs import video_classification as video_cfg
from official.vision.dataloaders import video_input
from official_projects_const_cl.configs import demo_paths
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.dataloaders import demo_world
from official_projects_const_cl.dataloaders import demo_writers
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.tools import demo_data as demo_data_cli

TINY = demo_world.DemoWorldConfig(num_frames=8, height=32, width=32,
                                  num_classes=4)
TINY_ARGS = dict(num_train=8, num_val=4, num_shards=2, world_config=TINY)


def _hashes(paths):
  out = {}
  for p in paths:
    with open(p, 'rb') as f:
      out[os.path.basename(p)] = hashlib.sha256(f.read()).hexdigest()
  return out


def _decode_all(paths):
  decoder = video_input.Decoder()
  decoder.add_context(features.MEDIA_ID_KEY,
                      tf.io.FixedLenFeature((), tf.string))
  for key in features.BBOX_KEYS:
    decoder.add_feature(key, tf.io.VarLenFeature(tf.float32))
  for key in (features.REGION_LABEL_KEY, features.REGION_TRACK_KEY):
    decoder.add_feature(key, tf.io.VarLenFeature(tf.int64))
  return [decoder.decode(raw) for raw in tf.data.TFRecordDataset(paths)]


@pytest.fixture(scope='module')
def tiny_dataset(tmp_path_factory):
  out = tmp_path_factory.mktemp('demo') / 'tiny'
  start = time.time()
  paths = demo_data.generate_demo_dataset(str(out), seed=3, **TINY_ARGS)
  paths['seconds'] = time.time() - start
  return paths


def test_square_box_hand_computed():
  # Square of half side 0.8 * radius = 6.4 px centred at (16, 16): pixels
  # whose centre is within 6.4 px, i.e. 10..21, are covered >= 0.5.
  coverage, _ = demo_world._render_object(
      'square', 'solid', 8.0, np.array([[16.0, 16.0]], np.float32),
      np.zeros(1, np.float32), 3.0, np.zeros(2), np.ones((1, 2, 3), np.float32),
      32, 32)
  np.testing.assert_allclose(demo_world._tight_boxes(coverage),
                             [[10 / 32, 10 / 32, 22 / 32, 22 / 32]])
  assert coverage[0, 16, 16] == 1.0 and coverage[0, 16, 25] == 0.0


def test_render_video_boxes_follow_the_object():
  cfg = demo_world.DemoWorldConfig(
      num_frames=6, height=48, width=48, max_objects=1, noise_std=0.0,
      brightness_jitter=0.0, contrast_jitter=0.0)
  for index in range(4):
    video = demo_world.render_video(demo_world.video_rng(1, 't', index),
                                    index % 4, cfg)
    assert video.frames.shape == (6, 48, 48, 3)
    assert video.frames.dtype == np.uint8
    assert video.boxes.shape == (6, 1, 4)
    assert np.all((video.boxes >= 0) & (video.boxes <= 1))
    assert np.all(video.boxes[..., 2] > video.boxes[..., 0])
    assert np.all(video.boxes[..., 3] > video.boxes[..., 1])
    np.testing.assert_allclose(video.visibility, 1.0)
    # Pixels whose colour lies on the segment between the object's two
    # colours are the object: most of the box, almost nothing outside.
    for t in range(6):
      c0, c1 = video.colors[t, 0]
      x = video.frames[t].astype(np.float32) / 255
      d = c1 - c0
      s = np.clip(((x - c0) @ d) / (d @ d), 0, 1)[..., None]
      on_object = np.linalg.norm(x - (c0 + s * d), axis=-1) < 0.008
      y0, x0, y1, x1 = np.round(video.boxes[t, 0] * 48).astype(int)
      inside = np.zeros((48, 48), bool)
      inside[y0:y1, x0:x1] = True
      assert on_object[inside].mean() > 0.3  # A triangle fills half its box.
      # (Background pixels can match by chance: a loose bound outside.)
      assert on_object[~inside].mean() < 0.1
      assert on_object[inside].mean() > 5 * on_object[~inside].mean()
      # Tight: the object's pure-colour pixels reach within 3 px of every
      # side (edge pixels, and thin tips, are blended with the background;
      # exact tightness is checked in test_square_box_hand_computed).
      rows = np.flatnonzero(on_object[y0:y1, x0:x1].any(axis=1))
      cols = np.flatnonzero(on_object[y0:y1, x0:x1].any(axis=0))
      assert rows[0] <= 3 and rows[-1] >= y1 - y0 - 4
      assert cols[0] <= 3 and cols[-1] >= x1 - x0 - 4


def test_class_identity_and_distractors():
  cfg = demo_world.DemoWorldConfig(num_frames=2, height=32, width=32,
                                   min_objects=3, max_objects=3,
                                   class_defined_by='shape_texture',
                                   num_classes=4)
  names = demo_world.class_names(cfg)
  assert names == ['disk-stripes', 'square-checker', 'triangle-dots',
                   'cross-rings']
  identities = {tuple(n.split('-')) for n in names}
  for index in range(8):
    video = demo_world.render_video(demo_world.video_rng(0, 'x', index),
                                    index % 4, cfg)
    assert '-'.join((video.shapes[0], video.textures[0])) == names[index % 4]
    assert video.num_objects == 3
    for shape, texture in zip(video.shapes[1:], video.textures[1:]):
      assert (shape, texture) not in identities


def test_scene_classes_film_their_photograph():
  cfg = demo_world.DemoWorldConfig(num_frames=2, height=32, width=32,
                                   class_defined_by='scene', num_classes=5)
  assert demo_world.class_names(cfg) == list(cfg.backgrounds[:5])
  seen = collections.defaultdict(set)
  for index in range(20):
    video = demo_world.render_video(demo_world.video_rng(0, 'x', index),
                                    index % 5, cfg)
    assert video.background == cfg.backgrounds[index % 5]
    seen[index % 5].add((video.shapes[0], video.textures[0]))
  # The main object is a nuisance here: it varies within a class.
  assert max(len(v) for v in seen.values()) > 1
  with pytest.raises(ValueError, match='num_classes'):
    demo_world.DemoWorldConfig(class_defined_by='scene', num_classes=18)


def test_actions_follow_the_motion():
  cfg = demo_world.DemoWorldConfig(num_frames=24, height=64, width=64,
                                   max_objects=1)
  moves = {'moving-left': (1, -1), 'moving-right': (1, 1),
           'moving-up': (0, -1), 'moving-down': (0, 1)}
  checked = 0
  for index in range(12):
    video = demo_world.render_video(demo_world.video_rng(2, 'a', index), 0,
                                    cfg)
    center = (video.boxes_pixels[:, 0, :2] + video.boxes_pixels[:, 0, 2:]) / 2
    for t in range(23):
      name = demo_world.ACTIONS[video.actions[t, 0]]
      step = center[t + 1] - center[t]
      if name in moves and video.actions[t + 1, 0] == video.actions[t, 0]:
        axis, sign = moves[name]
        assert step[axis] * sign >= -1.0  # Pixel rounding of tight boxes.
        checked += 1
      if name in ('still', 'rotating') and (
          video.actions[t + 1, 0] == video.actions[t, 0]):
        assert np.abs(step).max() <= 1.0  # Only the pixel grid moves it.
  assert checked > 20


def test_photo_strip_and_colour_drift():
  cfg = demo_world.DemoWorldConfig(
      num_frames=8, height=32, width=32, max_objects=1, photos_per_video=3,
      camera_pan=2.0, object_color_drift=1.0, min_color_contrast=0.3)
  video = demo_world.render_video(demo_world.video_rng(0, 's', 0), 2, cfg)
  assert len(video.background.split('+')) == 3
  # The camera pans along the strip (80 px photos side by side, 240 px).
  assert abs(video.camera[-1, 1] - video.camera[0, 1]) > 40
  assert np.all(video.camera[:, 1] - video.camera[:, 3] / 2 >= 0)
  assert np.all(video.camera[:, 1] + video.camera[:, 3] / 2 <= 240)
  colors = video.colors[:, 0]
  assert np.abs(colors[-1] - colors[0]).max() > 0.05
  lum = colors @ np.array([0.299, 0.587, 0.114], np.float32)
  contrast = lum[:, 1] - lum[:, 0]
  assert np.all(np.abs(contrast) >= 0.3 - 1e-5)  # Never through zero.
  assert np.all(np.sign(contrast) == np.sign(contrast[0]))


def test_config_validation():
  with pytest.raises(ValueError, match='num_classes must be in'):
    demo_world.DemoWorldConfig(num_classes=40)
  with pytest.raises(ValueError, match='No distractor identity'):
    demo_world.DemoWorldConfig(class_defined_by='shape', num_classes=6)
  with pytest.raises(ValueError, match='class_defined_by'):
    demo_world.DemoWorldConfig(class_defined_by='colour')
  with pytest.raises(ValueError, match='class_id 8 outside'):
    demo_world.render_video(np.random.default_rng(0), 8,
                            demo_world.DemoWorldConfig())


def test_dataset_files_splits_and_balance(tiny_dataset):
  assert tiny_dataset['seconds'] < 30
  assert [os.path.basename(p) for p in tiny_dataset['train']] == [
      'train-00000-of-00002.tfrecord', 'train-00001-of-00002.tfrecord']
  assert sorted(glob.glob(tiny_dataset['val_pattern'])) == tiny_dataset['val']
  with open(tiny_dataset['label_map']) as f:
    assert f.read().split() == demo_world.class_names(TINY)
  with open(tiny_dataset['manifest']) as f:
    manifest = json.load(f)
  assert manifest['seed'] == 3 and manifest['num_train'] == 8
  assert manifest['version'] == demo_data.DEMO_DATA_VERSION
  assert manifest['world_config']['num_frames'] == 8
  assert manifest['class_counts'] == {'train': [2, 2, 2, 2],
                                      'val': [1, 1, 1, 1]}

  ids = {}
  for split, num in (('train', 8), ('val', 4)):
    examples = _decode_all(tiny_dataset[split])
    assert len(examples) == num
    labels = [int(ex[features.LABEL_KEY][0]) for ex in examples]
    assert collections.Counter(labels) == {c: num // 4 for c in range(4)}
    ids[split] = {ex[features.MEDIA_ID_KEY].numpy() for ex in examples}
    for ex in examples:
      assert ex[features.IMAGE_KEY].shape == (8,)
      frame = tf.io.decode_jpeg(ex[features.IMAGE_KEY][0])
      assert frame.shape == (32, 32, 3)
      boxes = tf.stack([ex[k] for k in features.BBOX_KEYS], -1).numpy()
      assert boxes.shape[0] == 8 and 1 <= boxes.shape[1] <= 3
      assert np.all((boxes >= 0) & (boxes <= 1))
      assert np.all(boxes[..., 2] > boxes[..., 0])
      # Track ids are the same objects in every frame.
      tracks = ex[features.REGION_TRACK_KEY].numpy()
      np.testing.assert_array_equal(
          tracks, np.tile(np.arange(boxes.shape[1]), (8, 1)))
      actions = ex[features.REGION_LABEL_KEY].numpy()
      assert actions.min() >= 0 and actions.max() < len(demo_world.ACTIONS)
  assert len(ids['train']) == 8 and not ids['train'] & ids['val']


def test_records_match_the_rendered_videos(tiny_dataset):
  examples = {ex[features.MEDIA_ID_KEY].numpy().decode(): ex
              for ex in _decode_all(tiny_dataset['val'])}
  for vid, video in demo_data.iter_demo_videos(3, 'val', 4, TINY):
    ex = examples[vid]
    assert int(ex[features.LABEL_KEY][0]) == video.class_id
    boxes = tf.stack([ex[k] for k in features.BBOX_KEYS], -1).numpy()
    np.testing.assert_allclose(boxes, video.boxes, atol=1e-6)
    frames = tf.stack([tf.io.decode_jpeg(f) for f in ex[features.IMAGE_KEY]])
    err = np.abs(frames.numpy().astype(float) - video.frames).mean()
    assert err < 6  # JPEG at quality 90, 4:4:4, of frames with pixel noise.


def test_model_garden_decoder_and_parser_read_records(tiny_dataset):
  params = video_cfg.DataConfig(
      feature_shape=(4, 32, 32, 3), temporal_stride=2, min_image_size=32,
      num_classes=4, is_training=False)
  decoder = video_input.Decoder()
  parser = video_input.Parser(params)
  dataset = tf.data.TFRecordDataset(tiny_dataset['train']).map(
      decoder.decode).map(parser.parse_fn(is_training=False))
  for image_features, label in dataset.take(2):
    assert image_features['image'].shape == (4, 32, 32, 3)
    assert label.shape == (4,) and float(tf.reduce_sum(label)) == 1.0


def test_deterministic_byte_identical(tiny_dataset, tmp_path):
  again = demo_data.generate_demo_dataset(str(tmp_path / 'again'), seed=3,
                                          **TINY_ARGS)
  files = tiny_dataset['train'] + tiny_dataset['val']
  assert _hashes(files) == _hashes(again['train'] + again['val'])
  with open(tiny_dataset['ava_val_csv']) as f, open(again['ava_val_csv']) as g:
    assert f.read() == g.read()
  other = demo_data.generate_demo_dataset(str(tmp_path / 'other'), seed=4,
                                          **TINY_ARGS)
  assert _hashes(files) != _hashes(other['train'] + other['val'])


def test_ensure_is_idempotent_and_checks_arguments(tmp_path):
  out = str(tmp_path / 'demo')
  first = demo_data.ensure_demo_dataset(out, seed=0, **TINY_ARGS)
  mtimes = {p: os.path.getmtime(p) for p in first['train']}
  second = demo_data.ensure_demo_dataset(out, seed=0, **TINY_ARGS)
  assert second == first
  assert {p: os.path.getmtime(p) for p in second['train']} == mtimes
  with pytest.raises(ValueError, match=r'seed: 0 -> 1.*overwrite'):
    demo_data.ensure_demo_dataset(out, seed=1, **TINY_ARGS)
  third = demo_data.generate_demo_dataset(out, seed=1, overwrite=True,
                                          **TINY_ARGS)
  with open(third['manifest']) as f:
    assert json.load(f)['seed'] == 1
  (tmp_path / 'junk').mkdir()
  (tmp_path / 'junk' / 'file.txt').write_text('x')
  with pytest.raises(ValueError, match='junk exists but has no manifest'):
    demo_data.ensure_demo_dataset(str(tmp_path / 'junk'), **TINY_ARGS)
  # No temporary folders are left behind.
  assert sorted(os.listdir(tmp_path)) == ['demo', 'junk']


def test_ensure_from_concurrent_callers(tmp_path):
  out = str(tmp_path / 'shared')
  results, errors = [], []

  def call():
    try:
      results.append(demo_data.ensure_demo_dataset(
          out, seed=5, num_train=4, num_val=4, num_shards=1,
          world_config=TINY, write_ava=False))
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=call) for _ in range(3)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors
  assert len(results) == 3 and all(r == results[0] for r in results)
  assert os.listdir(tmp_path) == ['shared']
  assert len(_decode_all(results[0]['train'])) == 4


def test_ava_csv_and_label_map(tiny_dataset):
  rows = [line.split(',') for line in
          open(tiny_dataset['ava_val_csv']).read().splitlines()]
  videos = dict(demo_data.iter_demo_videos(3, 'val', 4, TINY))
  # 8 frames at 10 fps: one keyframe (t = 0 s) per video and object.
  assert len(rows) == sum(v.num_objects for v in videos.values())
  for vid, ts, x1, y1, x2, y2, action, person in rows:
    video = videos[vid]
    assert ts == '0'
    k = int(person)
    np.testing.assert_allclose([float(y1), float(x1), float(y2), float(x2)],
                               video.boxes[0, k], atol=5e-4)
    assert int(action) == video.actions[0, k] + 1
  label_map = open(tiny_dataset['ava_label_map']).read()
  assert 'name: "still"\n  id: 1' in label_map
  assert label_map.count('item {') == len(demo_world.ACTIONS)


def test_ava_keyframes_every_second(tmp_path):
  cfg = demo_world.DemoWorldConfig(num_frames=25, height=16, width=16,
                                   max_objects=1, frame_rate=10)
  videos = list(demo_data.iter_demo_videos(0, 'k', 1, cfg))
  path = str(tmp_path / 'ava.csv')
  assert demo_writers.write_ava_csv(videos, path) == 3
  rows = [line.split(',') for line in open(path).read().splitlines()]
  assert [r[1] for r in rows] == ['0', '1', '2']  # Frames 0, 10, 20.
  video = videos[0][1]
  assert float(rows[2][2]) == pytest.approx(video.boxes[20, 0, 1], abs=5e-4)


def test_tracking_sequences_otb_and_got10k(tmp_path):
  cfg = demo_world.DemoWorldConfig(num_frames=5, height=40, width=32)
  videos = list(demo_data.iter_demo_videos(0, 'trk', 2, cfg))
  names = demo_writers.write_tracking_sequences(videos, str(tmp_path / 'otb'))
  assert names == ['demo-trk-00000', 'demo-trk-00001']
  for name, (_, video) in zip(names, videos):
    seq = tmp_path / 'otb' / name
    assert sorted(os.listdir(seq / 'img')) == [f'{i:04d}.jpg'
                                              for i in range(1, 6)]
    gt = np.loadtxt(seq / 'groundtruth_rect.txt', delimiter=',')
    px = video.boxes_pixels[:, 0]
    # OTB: x, y, w, h with 1-based pixel coordinates.
    np.testing.assert_allclose(gt, np.stack(
        [px[:, 1] + 1, px[:, 0] + 1, px[:, 3] - px[:, 1],
         px[:, 2] - px[:, 0]], -1), atol=1e-3)
    image = tf.io.decode_jpeg(open(seq / 'img' / '0003.jpg', 'rb').read())
    assert image.shape == (40, 32, 3)

  names = demo_writers.write_tracking_sequences(
      videos, str(tmp_path / 'got'), layout='got10k', objects='all')
  assert len(names) == sum(v.num_objects for _, v in videos)
  assert open(tmp_path / 'got' / 'list.txt').read().split() == names
  seq = tmp_path / 'got' / names[0]
  assert len(glob.glob(str(seq / '*.jpg'))) == 5
  gt = np.loadtxt(seq / 'groundtruth.txt', delimiter=',')
  px = videos[0][1].boxes_pixels[:, 0]
  np.testing.assert_allclose(gt[:, :2], px[:, [1, 0]], atol=1e-3)
  cover = np.loadtxt(seq / 'cover.label')
  np.testing.assert_array_equal(
      cover, np.round(videos[0][1].visibility[:, 0] * 8))
  absence = np.loadtxt(seq / 'absence.label')
  np.testing.assert_array_equal(absence, videos[0][1].visibility[:, 0] <= 0)


def test_cli(tmp_path, capsys):
  paths = demo_data_cli.cli(['--output_dir', str(tmp_path / 'c'), '--seed', '1',
                         '--num_train', '4', '--num_val', '4',
                         '--num_shards', '1', '--num_frames', '4',
                         '--image_size', '32', '--write_tracking'])
  assert len(paths['train']) == 1 and os.path.isdir(paths['otb_val'])
  assert len(os.listdir(paths['otb_val'])) == 4
  assert len(open(os.path.join(paths['got10k_train'], 'list.txt')
                  ).read().split()) == 4
  assert json.loads(capsys.readouterr().out)['train'] == paths['train']


def test_demo_paths_constants_match_the_world():
  # configs/demo_paths.py holds plain constants; they must describe the world.
  assert demo_paths.NUM_CLASSES == demo_world.DemoWorldConfig().num_classes
  assert demo_paths.NUM_ACTIONS == len(demo_world.ACTIONS)
  assert demo_data.DEMO_DATA_VERSION == demo_paths.DEMO_DATA_VERSION
  assert demo_data.default_demo_dir(3).endswith(
      f'v{demo_paths.DEMO_DATA_VERSION}-seed3')


def test_prepare_for_makes_what_each_demo_experiment_reads(monkeypatch):
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  made = []
  for name in ('ensure_demo_dataset', 'ensure_demo_ava_records',
               'ensure_demo_tracking'):
    monkeypatch.setattr(demo_data, name,
                        lambda d, n=name: made.append((n, d)))
  demo_dir = demo_paths.default_demo_dir()
  expected = {
      'const_cl_pretrain_demo': 'ensure_demo_dataset',
      'const_cl_linear_eval_demo': 'ensure_demo_dataset',
      'const_cl_action_localization_demo': 'ensure_demo_ava_records',
      'const_cl_tracking_demo': 'ensure_demo_tracking',
  }
  for experiment, ensure in expected.items():
    made.clear()
    demo_data.prepare_for(exp_factory.get_exp_config(experiment))
    assert made == [(ensure, demo_dir)] * 2, experiment
  made.clear()
  demo_data.prepare_for(exp_factory.get_exp_config('const_cl_pretrain_k400'))
  assert not made
