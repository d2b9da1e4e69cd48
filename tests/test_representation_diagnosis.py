"""The issue-11 diagnosis: ridge probes, feature statistics, weight change,
probe clips, and the seeded initial weights it compares against."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.dataloaders import demo_probe
from official_projects_const_cl.dataloaders import demo_world
from official_projects_const_cl.evaluation import decodability
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import pretrained_model
from official_projects_const_cl.tasks import representation_diagnosis as rd


def test_ridge_fit_worked_examples():
  x = np.array([[0.0], [1.0], [2.0]])
  y = np.array([1.0, 3.0, 5.0])
  w, b = decodability.ridge_fit(x, y, 0.0)
  assert w[0, 0] == pytest.approx(2.0) and b[0] == pytest.approx(1.0)
  # l2 = 1: centered x (-1, 0, 1), y (-2, 0, 2): w = 4 / (2 + 1), and the
  # unpenalized bias b = mean(y) - mean(x) w = 3 - 4/3.
  w, b = decodability.ridge_fit(x, y, 1.0)
  assert w[0, 0] == pytest.approx(4 / 3) and b[0] == pytest.approx(5 / 3)
  with pytest.raises(ValueError, match='l2'):
    decodability.ridge_fit(x, y, -1.0)


def test_ridge_fit_dual_equals_primal():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(5, 9)), rng.normal(size=(5, 2))  # D > N: dual.
  w, b = decodability.ridge_fit(x, y, 0.5)
  xc, yc = x - x.mean(0), y - y.mean(0)
  w_primal = np.linalg.solve(xc.T @ xc + 0.5 * np.eye(9), xc.T @ yc)
  np.testing.assert_allclose(w, w_primal, atol=1e-10)
  np.testing.assert_allclose(b, y.mean(0) - x.mean(0) @ w_primal, atol=1e-10)


def test_classification_accuracy_and_chance():
  # Class = sign of the first feature; the second is noise.
  x_train = np.array([[-2, 0.1], [-1, -0.3], [1, 0.2], [2, -0.1]])
  y_train = np.array([0, 0, 1, 1])
  x_test = np.array([[-1.5, 0.1], [0.5, -0.2], [3.0, 0.0]])
  y_test = np.array([0, 1, 1])
  assert decodability.ridge_classification_accuracy(
      x_train, y_train, x_test, y_test, 2, l2=0.01) == 1.0
  # Flipped test labels: every answer wrong.
  assert decodability.ridge_classification_accuracy(
      x_train, y_train, x_test, 1 - y_test, 2, l2=0.01) == 0.0
  assert decodability.majority_accuracy(np.array([2, 2, 1]),
                                        np.array([2, 1, 1, 2])) == 0.5
  with pytest.raises(ValueError, match=r'labels must be in \[0, 2\)'):
    decodability.ridge_classification_accuracy(
        x_train, y_train, x_test, np.array([0, 2, 1]), 2)
  with pytest.raises(ValueError, match='3 feature rows but 2 targets'):
    decodability.ridge_classification_accuracy(
        x_train, y_train, x_test, y_test[:2], 2)


def test_standardize_floors_near_constant_channels():
  train = np.array([[0.0, 1.0, 5.0], [2.0, 1.0 + 1e-9, 5.0]])
  test = np.array([[1.0, 2.0, 6.0]])
  a, b = decodability.standardize(train, test)
  np.testing.assert_allclose(a[:, 0], [-1.0, 1.0])
  # Channel stds 1, 5e-10, 0: floored at 1% of their mean (1/3).
  floor = 0.01 / 3
  np.testing.assert_allclose(b[0], [0.0, (2.0 - 1.0) / floor,
                                    (6.0 - 5.0) / floor], rtol=1e-6)


def test_regression_r2_worked_examples():
  x_train = np.array([[0.0], [1.0], [2.0], [3.0]])
  y_train = 2 * x_train[:, 0] + 1
  x_test = np.array([[4.0], [5.0]])
  assert decodability.ridge_regression_r2(
      x_train, y_train, x_test, 2 * x_test[:, 0] + 1, l2=0.0) == (
          pytest.approx(1.0))
  # An enormous l2 predicts the training mean 4 for both test points:
  # R^2 = 1 - ((4-9)^2 + (4-11)^2) / ((9-10)^2 + (11-10)^2) = 1 - 74/2.
  r2 = decodability.ridge_regression_r2(
      x_train, y_train, x_test, 2 * x_test[:, 0] + 1, l2=1e12)
  assert r2 == pytest.approx(1 - 74 / 2, rel=1e-6)


def test_feature_statistics_worked_example():
  stats = decodability.feature_statistics(np.array([[0.0, 1.0], [0.0, 3.0]]))
  assert stats['mean'] == 1.0
  assert stats['rms'] == pytest.approx(math.sqrt(10 / 4))
  assert stats['zero_fraction'] == 0.5
  assert stats['dead_channel_fraction'] == 0.5
  assert stats['mean_channel_std'] == pytest.approx(0.5)  # (0 + 1) / 2.
  with pytest.raises(ValueError, match='non-empty'):
    decodability.feature_statistics(np.zeros((0, 3)))


@pytest.mark.parametrize('name,group', [
    ('stem_conv/kernel:0', 'stem'), ('stem_bn/gamma:0', 'stem'),
    ('res2_block_0/conv_a/kernel:0', 'res2'),
    ('res4_block_1/bn/beta:0', 'res4'),
    ('res5_block_0/conv/kernel:0', 'res5'),
    ('res5_g_block_0/conv/kernel:0', 'res5_g'),
    ('res5_r_block_0/conv/kernel:0', 'res5_r'),
    ('const_cl_model/global_head/dense_0/kernel:0', 'global_head'),
    ('const_cl_model/region_head/ffn_norm_0/beta:0', 'region_head'),
    ('something_else/kernel:0', None)])
def test_variable_groups(name, group):
  assert rd.variable_group(name) == group


def _tiny(names, seed):
  tf_keras.utils.set_random_seed(seed)
  inputs = tf_keras.Input((3,))
  x = inputs
  for name in names:
    x = tf_keras.layers.Dense(3, name=name)(x)
  return tf_keras.Model(inputs, x)


def test_relative_weight_change_values():
  initial = _tiny(['res4_block_0', 'res5_r_block_0'], 0)
  model = _tiny(['res4_block_0', 'res5_r_block_0'], 0)
  assert rd.relative_weight_change(model, initial) == {'res4': 0.0,
                                                       'res5_r': 0.0}
  kernel = model.get_layer('res5_r_block_0').kernel
  kernel.assign(kernel * 1.5)  # +50% of the kernel, bias 0 unchanged.
  change = rd.relative_weight_change(model, initial)
  k = initial.get_layer('res5_r_block_0').kernel.numpy()
  assert change['res5_r'] == pytest.approx(0.5 * np.linalg.norm(k) /
                                           np.linalg.norm(k), rel=1e-6)
  assert change['res4'] == 0.0
  with pytest.raises(ValueError, match='differ in their trainable'):
    rd.relative_weight_change(_tiny(['res4_block_0'], 0), initial)


def test_probe_clips_are_the_rendered_videos():
  probe = demo_probe.probe_clips(3, num_frames=4, stride=3, seed=5)
  cfg = demo_world.DemoWorldConfig()
  start = (cfg.num_frames - 10) // 2
  np.testing.assert_array_equal(probe['frame_index'],
                                start + 3 * np.arange(4))
  classes = demo_world.class_schedule(5, 'probe', 3, cfg.num_classes)
  for v in range(3):
    video = demo_world.render_video(demo_world.video_rng(5, 'probe', v),
                                    int(classes[v]), cfg)
    n = video.num_objects
    idx = probe['frame_index']
    np.testing.assert_array_equal(probe['frames'][v], video.frames[idx])
    np.testing.assert_array_equal(probe['boxes'][v, :, :n], video.boxes[idx])
    np.testing.assert_array_equal(probe['actions'][v, :, :n],
                                  video.actions[idx])
    assert [demo_world.SHAPES[i] for i in probe['shapes'][v, :n]] == list(
        video.shapes)
    assert [demo_world.TEXTURES[i] for i in probe['textures'][v, :n]] == list(
        video.textures)
    assert probe['valid'][v].tolist() == [True] * n + [False] * (
        cfg.max_objects - n)
    assert probe['is_main'][v].tolist() == [True] + [False] * (
        cfg.max_objects - 1)
  with pytest.raises(ValueError, match='spans 37 frames'):
    demo_probe.probe_clips(1, num_frames=5, stride=9)


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
  out = tmp_path_factory.mktemp('demo')
  return demo_data.generate_demo_dataset(
      str(out), num_train=4, num_val=2, num_shards=1, write_ava=False)


def _override(data, steps):
  return ','.join([
      f"task.train_data.input_path={data['train_pattern']}",
      f"task.validation_data.input_path={data['val_pattern']}",
      'task.train_data.demo_data_dir=', 'task.validation_data.demo_data_dir=',
      'task.train_data.cache=false', 'task.knn.enabled=false',
      'task.train_data.global_batch_size=2',
      'task.train_data.feature_shape=[8,32,32,3]',
      'task.validation_data.feature_shape=[8,32,32,3]',
      f'trainer.train_steps={steps}', 'trainer.steps_per_loop=1',
      f'trainer.checkpoint_interval={steps}'])


def test_seeded_rebuild_is_the_runs_initial_weights(tiny_data, tmp_path):
  """The first step runs at warm-up learning rate 0: after it the trainable
  weights are the initial ones, and must equal the seeded rebuild; a second
  step moves them."""
  from official_projects_const_cl.tools import run_demo  # pylint: disable=g-import-not-at-top
  for steps in (1, 2):
    override = _override(tiny_data, steps)
    model_dir = str(tmp_path / f'steps{steps}')
    tf_keras.utils.set_random_seed(7)  # As run_demo --local does.
    run_demo.run_mode('const_cl_pretrain_demo', model_dir, 'train', override,
                      count_flops=False)
    measured = rd.diagnose_experiment('const_cl_pretrain_demo', override,
                                      model_dir, 7, num_probe_videos=6)
    change = measured['weight_change']
    assert set(change) == {'stem', 'res2', 'res3', 'res4', 'res5_g',
                           'res5_r', 'global_head', 'region_head'}
    if steps == 1:
      assert max(change.values()) < 1e-6, change
    else:
      assert min(change[g] for g in ('stem', 'res5_g', 'global_head')) > 1e-4
  # Another seed's rebuild is not the run's init.
  params = experiment_runner.experiment_config('const_cl_pretrain_demo',
                                               override, 'train')
  tf_keras.utils.set_random_seed(8)
  other, _ = pretrained_model.build_pretrained_model(params, None)
  restored, _ = pretrained_model.build_pretrained_model(
      params, str(tmp_path / 'steps1'), with_heads=True)
  assert rd.relative_weight_change(restored, other)['res4'] > 0.5


def test_diagnosis_of_a_random_init(tiny_data):
  measured = rd.diagnose_experiment('const_cl_pretrain_demo',
                                    _override(tiny_data, 1), None, 0,
                                    num_probe_videos=9)
  assert 'weight_change' not in measured
  assert measured['num_objects'] + measured['skipped_invisible'] >= 9
  stats = measured['features']
  assert stats['rms'] > 0 and 0 <= stats['zero_fraction'] < 1
  probes = measured['probes']
  for name in ('shape', 'texture', 'action'):
    assert 0 <= probes[name] <= 1 and 0 <= probes[f'{name}_chance'] <= 1
  assert probes['position'] <= 1
  # A random network's batch norms still hold their initial statistics.
  assert measured['batch_norm']['bn_moving_variance'] == pytest.approx(1.0)
