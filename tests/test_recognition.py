"""Recognition from a real pretraining run: init, freezing, train/eval, retrieval."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.modeling import hyperparams
from official_projects_const_cl.modeling import checkpoint_loading
from official_projects_const_cl.modeling import variable_paths
from official_projects_const_cl.modeling.backbones import resnet_3d_y
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import recognition
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.tools import retrieval as retrieval_tool


def _params(experiment, overrides):
  params = exp_factory.get_exp_config(experiment)
  params = hyperparams.override_params_dict(params, ','.join(overrides),
                                            is_strict=True)
  params.validate()
  return params


@pytest.fixture(scope='module')
def tiny_demo(tmp_path_factory):
  out = tmp_path_factory.mktemp('demo')
  return demo_data.generate_demo_dataset(
      str(out), num_train=8, num_val=4, num_shards=2, write_ava=False)


@pytest.fixture(scope='module')
def pretrain_dir(tiny_demo, tmp_path_factory):
  """A real const_cl_pretrain_demo run of two steps."""
  model_dir = str(tmp_path_factory.mktemp('pretrain'))
  params = _params('const_cl_pretrain_demo', [
      f"task.train_data.input_path={tiny_demo['train_pattern']}",
      f"task.validation_data.input_path={tiny_demo['val_pattern']}",
      f"task.validation_data.knn_bank_input_path={tiny_demo['train_pattern']}",
      'task.train_data.demo_data_dir=', 'task.validation_data.demo_data_dir=',
      'task.train_data.global_batch_size=4',
      'task.validation_data.global_batch_size=4', 'task.knn.enabled=false',
      'trainer.train_steps=2', 'trainer.steps_per_loop=1',
      'trainer.checkpoint_interval=2'])
  experiment_runner.run(params, 'train', model_dir)
  assert tf.train.latest_checkpoint(model_dir).endswith('ckpt-2')
  return model_dir


def _recognition_overrides(data, init_checkpoint=None, steps=2):
  overrides = [
      f"task.train_data.input_path={data['train_pattern']}",
      f"task.validation_data.input_path={data['val_pattern']}",
      'task.train_data.demo_data_dir=', 'task.validation_data.demo_data_dir=',
      'task.train_data.global_batch_size=4', 'task.train_data.num_examples=8',
      'task.validation_data.global_batch_size=4',
      'task.validation_data.num_test_clips=2',
      'task.retrieval.num_test_clips=2',
      f'trainer.train_steps={steps}', f'trainer.validation_interval={steps}',
      'trainer.steps_per_loop=1', 'trainer.summary_interval=1',
      f'trainer.checkpoint_interval={steps}']
  if init_checkpoint:
    overrides.append(f'task.init_checkpoint={init_checkpoint}')
  return overrides


def _pretrained_backbone(pretrain_dir):
  """The pretraining backbone (two res5 branches), restored directly."""
  exp = exp_factory.get_exp_config('const_cl_pretrain_demo')
  cfg = exp.task.model.backbone.resnet_3d_y
  backbone = resnet_3d_y.ResNet3DY(
      block_specs=cfg.block_specs, stem_filters=cfg.stem_filters,
      stem_conv_temporal_kernel_size=cfg.stem_conv_temporal_kernel_size,
      stem_conv_spatial_kernel_size=cfg.stem_conv_spatial_kernel_size,
      branch_res5=True)
  tf.train.Checkpoint(backbone=backbone).read(
      tf.train.latest_checkpoint(pretrain_dir)).expect_partial()
  return backbone


def _layer_values(backbone, name):
  layer = backbone.get_layer(name)
  return {p: v.numpy() for p, v in variable_paths.variable_paths(layer).items()}


def _build(experiment, data, init_checkpoint=None, **model_overrides):
  params = _params(experiment, _recognition_overrides(data, init_checkpoint))
  task_cfg = params.task
  for key, value in model_overrides.items():
    task_cfg.model.backbone.resnet_3d_y.override({key: value})
  task = recognition.RecognitionTask(task_cfg)
  model = task.build_model()
  return task, model


def test_init_takes_res5_g_into_res5_and_reports(tiny_demo, pretrain_dir):
  task, model = _build('const_cl_finetune_demo', tiny_demo)
  assert 'res5_r' not in model.backbone.output_specs
  report = checkpoint_loading.restore_pretrained_backbone(
      model.backbone, pretrain_dir)
  assert report.checkpoint.endswith('ckpt-2') and report.step == 2
  assert report.res5_branch == 'res5_g'
  assert report.unused_layers == ('res5_r_block_0',)
  assert report.num_variables == len(_pretrained_backbone(
      pretrain_dir).weights)
  assert 'res5 <- pretrained res5_g' in report.summary()

  source = _pretrained_backbone(pretrain_dir)
  for target_name, source_name in (('stem_conv', 'stem_conv'),
                                   ('res4_block_0', 'res4_block_0'),
                                   ('res5_block_0', 'res5_g_block_0')):
    got = _layer_values(model.backbone, target_name)
    want = _layer_values(source, source_name)
    assert sorted(got) == sorted(want)
    for path in got:
      np.testing.assert_array_equal(got[path], want[path])
  # ... and not res5_r (the branches differ after two steps).
  r_values = _layer_values(source, 'res5_r_block_0')
  g_values = _layer_values(model.backbone, 'res5_block_0')
  assert any(not np.array_equal(g_values[p], r_values[p]) for p in g_values)
  # The task's initialize does the same through task.init_checkpoint.
  task2, model2 = _build('const_cl_finetune_demo', tiny_demo,
                         init_checkpoint=pretrain_dir)
  task2.initialize(model2)
  np.testing.assert_array_equal(
      model2.backbone.get_layer('res5_block_0').weights[0].numpy(),
      model.backbone.get_layer('res5_block_0').weights[0].numpy())


def test_frozen_target_receives_the_right_tensors(tiny_demo, pretrain_dir):
  """Frozen layers reorder `get_weights()`; transfer must not care."""
  _, model = _build('const_cl_linear_eval_demo', tiny_demo)
  assert not model.backbone.trainable
  checkpoint_loading.restore_pretrained_backbone(model.backbone, pretrain_dir)
  got = _layer_values(model.backbone, 'res2_block_0')
  want = _layer_values(_pretrained_backbone(pretrain_dir), 'res2_block_0')
  for path in got:
    np.testing.assert_array_equal(got[path], want[path])


def test_mismatched_checkpoints_fail_with_variable_lists(tiny_demo,
                                                         pretrain_dir,
                                                         tmp_path):
  # A CVRL (single res5) layout cannot take a two-branch checkpoint -- a
  # plain tf.train.Checkpoint restore would "succeed" positionally here.
  _, model = _build('const_cl_finetune_demo', tiny_demo, branch_res5=False)
  with pytest.raises(checkpoint_loading.CheckpointMismatchError) as e:
    checkpoint_loading.restore_pretrained_backbone(
        model.backbone, pretrain_dir, branch_res5=False)
  message = str(e.value)
  assert 'checkpoint variables the model does not have (20)' in message
  assert 'backbone/layer_with_weights-' in message
  assert 'branch_res5=true' in message  # The hint.

  _, wide = _build('const_cl_finetune_demo', tiny_demo, stem_filters=24)
  with pytest.raises(checkpoint_loading.CheckpointMismatchError,
                     match=r'shape mismatches[\s\S]*stem_conv/kernel'):
    checkpoint_loading.restore_pretrained_backbone(wide.backbone, pretrain_dir)

  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match='empty.*without a checkpoint'):
    checkpoint_loading.restore_pretrained_backbone(model.backbone, str(empty))
  with pytest.raises(FileNotFoundError, match='nope'):
    checkpoint_loading.restore_pretrained_backbone(model.backbone,
                                                   str(tmp_path / 'nope'))
  other = tf.train.Checkpoint(step=tf.Variable(1)).write(
      str(tmp_path / 'other' / 'ckpt'))
  with pytest.raises(checkpoint_loading.CheckpointMismatchError,
                     match='no backbone variables'):
    checkpoint_loading.restore_pretrained_backbone(model.backbone, other)


def _all_values(variables):
  return [v.numpy().copy() for v in variables]


@pytest.mark.parametrize('experiment', ['const_cl_linear_eval_demo',
                                        'const_cl_finetune_demo'])
def test_linear_probe_freezes_backbone_and_bn_statistics(experiment,
                                                         tiny_demo,
                                                         pretrain_dir):
  task, model = _build(experiment, tiny_demo, init_checkpoint=pretrain_dir)
  task.initialize(model)
  backbone_vars = model.backbone.weights
  moving = [v for v in backbone_vars if 'moving_' in v.name]
  kernels = [v for v in backbone_vars if 'kernel' in v.name]
  assert moving and kernels
  model(tf.zeros([1, 8, 32, 32, 3]))  # Builds the classifier layer.
  head = [v for v in model.trainable_variables if 'classifier' in v.name]
  assert len(head) == 2
  before = _all_values(backbone_vars)
  head_before = _all_values(head)
  optimizer = tf_keras.optimizers.SGD(learning_rate=0.5, momentum=0.9)
  rng = np.random.default_rng(0)
  metrics = task.build_metrics(training=True)
  for _ in range(3):
    inputs = {'image': tf.constant(rng.uniform(size=(4, 8, 32, 32, 3)),
                                   tf.float32),
              'label': tf.constant([0, 1, 2, 3])}
    task.train_step(inputs, model, optimizer, metrics)
  after = _all_values(backbone_vars)
  changed = [not np.array_equal(b, a) for b, a in zip(before, after)]
  moving_changed = [c for v, c in zip(backbone_vars, changed)
                    if 'moving_' in v.name]
  head_after = _all_values(head)
  assert any(not np.array_equal(b, a) for b, a in zip(head_before,
                                                      head_after))
  if experiment == 'const_cl_linear_eval_demo':
    assert len(model.trainable_variables) == 2  # Classifier kernel + bias.
    assert not any(changed)
  else:
    assert len(model.trainable_variables) > 2
    assert all(moving_changed)
    kernel_changed = [c for v, c in zip(backbone_vars, changed)
                      if 'kernel' in v.name]
    assert all(kernel_changed)


def test_train_and_eval_from_pretraining_then_resume(tiny_demo, pretrain_dir,
                                                     tmp_path):
  model_dir = str(tmp_path / 'linear')
  params = _params('const_cl_linear_eval_demo',
                   _recognition_overrides(tiny_demo, pretrain_dir))
  logs = experiment_runner.run(params, 'train_and_eval', model_dir)
  assert logs['num_videos'] == 4  # Per video, not per view (4 x 6 views).
  assert 0.0 <= logs['top_1_accuracy'] <= logs['top_5_accuracy'] <= 1.0
  assert np.isfinite(logs['validation_loss'])
  assert os.path.exists(os.path.join(model_dir, 'ckpt-2.index'))
  # Resuming restores the run's own checkpoint (init_checkpoint not re-read).
  params = _params('const_cl_linear_eval_demo', _recognition_overrides(
      tiny_demo, str(tmp_path / 'does_not_exist'), steps=3))
  experiment_runner.run(params, 'train', model_dir)
  assert os.path.exists(os.path.join(model_dir, 'ckpt-3.index'))


def _record_labels(pattern):
  labels = []
  for path in sorted(tf.io.gfile.glob(pattern)):
    for record in tf.data.TFRecordDataset(path):
      example = tf.train.SequenceExample.FromString(record.numpy())
      labels.append(example.context.feature[
          'clip/label/index'].int64_list.value[0])
  return labels


def test_retrieval_from_a_pretraining_checkpoint(tiny_demo, pretrain_dir):
  params = _params('const_cl_linear_eval_demo',
                   _recognition_overrides(tiny_demo))
  results = retrieval_tool.run_retrieval(params, pretrain_dir)
  assert results['num_queries'] == 4 and results['num_gallery'] == 8
  recalls = [results[f'R@{k}'] for k in (1, 5, 10, 20)]
  assert recalls == sorted(recalls)
  # With k >= the gallery size, a query is a hit iff its class is in the
  # gallery at all.
  gallery = _record_labels(tiny_demo['train_pattern'])
  queries = _record_labels(tiny_demo['val_pattern'])
  assert len(gallery) == 8 and len(queries) == 4
  expected = np.mean([q in set(gallery) for q in queries])
  assert results['R@10'] == pytest.approx(expected)
  assert results['R@20'] == pytest.approx(expected)


def test_demo_downstream_reports_both_inits(tiny_demo, pretrain_dir, tmp_path):
  from official_projects_const_cl.tools import run_demo  # pylint: disable=g-import-not-at-top
  results = run_demo.run_downstream(
      'const_cl_pretrain_demo', pretrain_dir, str(tmp_path),
      ','.join(_recognition_overrides(tiny_demo)))
  for experiment in run_demo.RECOGNITION_EXPERIMENTS:
    for init in run_demo.INITS:
      logs = results[experiment][init]
      assert logs['num_videos'] == 4
      assert os.path.exists(tmp_path / f'{experiment}_{init}' / 'ckpt-2.index')
  for init in run_demo.INITS:
    assert results['retrieval'][init]['num_queries'] == 4
  assert results['retrieval']['pretrained']['init_checkpoint'] == pretrain_dir
  assert results['retrieval']['random_init']['init_checkpoint'] is None
  text = run_demo.format_results({
      'experiment': 'const_cl_pretrain_demo', 'knn_top1_random_init': 0.5,
      'knn_top1_pretrained': 0.75, 'downstream': results,
      'seconds_total': 1.0})
  assert 'const_cl_finetune_demo top-1' in text and 'retrieval R@20' in text


def test_localization_takes_res5_r(pretrain_dir):
  from official_projects_const_cl.tasks import localization  # pylint: disable=g-import-not-at-top
  exp = exp_factory.get_exp_config('const_cl_action_localization_demo')
  exp.task.init_checkpoint = pretrain_dir
  task = localization.LocalizationTask(exp.task)
  model = task.build_model()
  task.initialize(model)
  got = _layer_values(model.backbone, 'res5_block_0')
  want = _layer_values(_pretrained_backbone(pretrain_dir), 'res5_r_block_0')
  for path in got:
    np.testing.assert_array_equal(got[path], want[path])


def test_tracking_backbone_loads_the_pretrained_res5_r(pretrain_dir):
  exp = exp_factory.get_exp_config('const_cl_pretrain_demo')
  cfg = exp.task.model.backbone.resnet_3d_y
  tracking = resnet_3d_y.ResNet3DY(
      block_specs=cfg.block_specs, stem_filters=cfg.stem_filters,
      stem_conv_temporal_kernel_size=cfg.stem_conv_temporal_kernel_size,
      stem_conv_spatial_kernel_size=cfg.stem_conv_spatial_kernel_size,
      branch_res5=False, tracking_dilation=True)
  report = checkpoint_loading.restore_pretrained_backbone(
      tracking, pretrain_dir, res5_branch='res5_r')
  assert report.res5_branch == 'res5_r'
  source = _pretrained_backbone(pretrain_dir)
  for target_name, source_name in (('res4_block_0', 'res4_block_0'),
                                   ('res5_block_0', 'res5_r_block_0')):
    got = _layer_values(tracking, target_name)
    want = _layer_values(source, source_name)
    for path in got:
      np.testing.assert_array_equal(got[path], want[path])
