"""Attention maps of the region head on a demo video (paper Fig. 4)."""

import json
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.evaluation import attention_plots
from official_projects_const_cl.tasks import attention_maps
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import pretrained_model
from official_projects_const_cl.tools import visualize_attention

EXPERIMENT = 'const_cl_pretrain_demo'
# The demo videos' own 64^2 size: T' = 4, res5_r 2x2; context 3 slices.
OVERRIDE = 'task.train_data.feature_shape=[8,64,64,3]'
T, S, L, GRID = 8, 64, 3, 2


@pytest.fixture(scope='module')
def record(tmp_path_factory):
  """One demo video as a clip record, and the video."""
  path = str(tmp_path_factory.mktemp('records') / 'demo.tfrecord')
  vid, video = next(demo_data.iter_demo_videos(0, 'val', 1))
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(demo_data.video_to_sequence_example(
        vid, video, 'class').SerializeToString())
  return path, video


@pytest.fixture(scope='module')
def model():
  params = experiment_runner.experiment_config(EXPERIMENT, OVERRIDE)
  return params, pretrained_model.build_pretrained_model(params, None)[0]


def test_maps_are_distributions_over_the_context_tokens(record, model):
  path, video = record
  params, net = model
  clip = attention_maps.read_clip(params, path, 0)
  assert clip.images.shape == (T, S, S, 3)
  result = attention_maps.attention_maps(net, clip)
  assert result.maps.shape == (1, 2, L, GRID, GRID)  # layers, heads.
  np.testing.assert_allclose(result.maps.sum(axis=(2, 3, 4)), 1.0, atol=1e-5)
  assert (result.maps > 0).all()
  # Query: slice T'/2 = 2 -> clip frame floor(2.5 * 8 / 4) = 5; context
  # slices floor((k + 0.5) * 4 / 3) = 0, 2, 3 -> frames 1, 5, 7.
  assert result.query_frame == 5 and result.query_slice == 2
  assert result.context_slices.tolist() == [0, 2, 3]
  assert result.context_frames.tolist() == [1, 5, 7]
  # The default query is stored box 0 (the demo's object of track 0) on the
  # query frame: at 64^2 (no crop) the video's own normalized box.
  np.testing.assert_allclose(
      result.box, video.boxes[int(clip.frame_index[5])][0], atol=1e-6)
  # Another box gives other maps, still distributions.
  other = attention_maps.attention_maps(net, clip, box=[0.0, 0.0, 0.5, 0.5])
  np.testing.assert_allclose(other.maps.sum(axis=(2, 3, 4)), 1.0, atol=1e-5)
  assert np.abs(other.maps - result.maps).max() > 1e-6


def test_overlay_and_box_pixels():
  gray = np.full([2, 2, 3], 0.5, np.float32)
  # jet(1.0) = (0.5, 0, 0): half gray + half dark red.
  out = attention_plots.overlay(gray, np.ones([1, 1]), scale=1.0)
  assert out.shape == (2, 2, 3)
  assert (out == np.array([128, 64, 64], np.uint8)).all()
  image = attention_plots.draw_box(np.zeros([8, 8, 3], np.uint8),
                                   np.array([0.25, 0.25, 0.75, 0.75]))
  green = (image == attention_plots.BOX_COLOR).all(-1)
  expected = np.zeros([8, 8], bool)
  expected[2, 2:6] = expected[5, 2:6] = True
  expected[2:6, 2] = expected[2:6, 5] = True
  assert (green == expected).all()


def test_cli_writes_one_png_per_layer_and_head(record, tmp_path, capsys):
  path, _ = record
  out = tmp_path / 'attention'
  with pytest.raises(SystemExit) as e:
    visualize_attention.main(
        ['visualize_attention', f'--input_path={path}', f'--output_dir={out}',
         f'--params_override={OVERRIDE}', '--zoom=2'])
  assert e.value.code == 0
  assert 'wrote 2 PNGs (1 layers x 2 heads)' in capsys.readouterr().out
  for head in range(2):
    with Image.open(out / f'attention_layer0_head{head}.png') as image:
      # Query frame + 3 context frames, each 64 px x zoom 2.
      assert image.size == ((L + 1) * S * 2, S * 2)
      assert image.mode == 'RGB'
  summary = json.loads((out / 'attention.json').read_text())
  maps = np.array(summary['maps'])
  np.testing.assert_allclose(maps.sum(axis=(2, 3, 4)), 1.0, atol=1e-4)
  assert summary['context_frames'] == [1, 5, 7]


def test_bad_box_and_missing_box_are_one_user_error(record, tmp_path, capsys):
  path, _ = record
  base = ['visualize_attention', f'--input_path={path}',
          f'--output_dir={tmp_path}', f'--params_override={OVERRIDE}']
  for extra, message in ((['--box_index=7'], 'has no stored box 7 on frame'),
                         (['--box=0.5,0.5,0.2,0.9'], '--box must be'),
                         (['--box=1,2'], '--box must be four numbers'),
                         (['--record_index=5'], 'holds fewer records')):
    with pytest.raises(SystemExit) as e:
      visualize_attention.main(base + extra)
    assert e.value.code == errors.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err
  assert not os.path.exists(tmp_path / 'attention_layer0_head0.png')


def test_whole_model_restore_is_checked(tmp_path):
  params = experiment_runner.experiment_config(EXPERIMENT, OVERRIDE)
  source, _ = pretrained_model.build_pretrained_model(params, None)
  rng = np.random.default_rng(0)
  for var in source.weights:
    var.assign(rng.uniform(0.5, 1.5, var.shape).astype(np.float32))
  tf.train.Checkpoint(model=source, **source.checkpoint_items).save(
      str(tmp_path / 'ckpt'))
  restored, report = pretrained_model.build_pretrained_model(
      params, str(tmp_path), with_heads=True)
  assert report.restored == 'model'
  assert report.summary().startswith(
      f'Restored {len(source.weights)} model variables')
  for a, b in zip(source.weights, restored.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  other = experiment_runner.experiment_config(
      EXPERIMENT, OVERRIDE + ',task.model.region_head.num_heads=3')
  with pytest.raises(errors.UserError, match='does not fit the pretraining '
                     'model') as e:
    pretrained_model.build_pretrained_model(other, str(tmp_path),
                                            with_heads=True)
  assert 'shape mismatches' in str(e.value)
  assert 'cross_attention_0' in str(e.value)
