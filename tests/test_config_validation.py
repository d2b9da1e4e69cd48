"""Configs are checked (types, then ranges) before anything runs."""

import glob
import os

import pytest

from official.core import exp_factory
from official.modeling import hyperparams
from official_projects_const_cl import errors
from official_projects_const_cl import registry_imports
from official_projects_const_cl.configs import validation
from official_projects_const_cl.tasks import experiment_runner

YAML_DIR = os.path.join(os.path.dirname(__file__), '..',
                        'official_projects_const_cl', 'configs', 'yaml')


def _problems(experiment, override, mode='train'):
  params = exp_factory.get_exp_config(experiment)
  params = hyperparams.override_params_dict(params, override, is_strict=True)
  with pytest.raises(validation.ConfigError) as info:
    validation.validate_experiment(params, mode)
  return info.value.problems


@pytest.mark.parametrize('name', registry_imports.registered_experiments())
def test_every_registered_experiment_is_valid(name):
  validation.validate_experiment(exp_factory.get_exp_config(name), 'train')


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(YAML_DIR,
                                                               '*.yaml'))))
def test_every_paper_yaml_is_valid(path):
  name = os.path.splitext(os.path.basename(path))[0]
  params = hyperparams.override_params_dict(exp_factory.get_exp_config(name),
                                            path, is_strict=True)
  validation.validate_experiment(params, 'train')


@pytest.mark.parametrize('override,expected', [
    ('trainer.train_steps=abc',
     "trainer.train_steps: expected int, got 'abc' (str)"),
    ('trainer.train_steps=1.5',
     'trainer.train_steps: expected int, got 1.5 (float)'),
    ('task.losses.global_temperature=abc',
     "task.losses.global_temperature: expected float, got 'abc' (str)"),
    ('task.model.use_region_loss=3',
     'task.model.use_region_loss: expected bool, got 3 (int)'),
    ('task.train_data.feature_shape=abc',
     "task.train_data.feature_shape: expected a list of int, got 'abc' "
     '(str)'),
    ('task.model.backbone.resnet_3d_y.block_specs=3',
     'task.model.backbone.resnet_3d_y.block_specs: expected a list of '
     'ResNet3DYBlockSpec configs, got 3 (int)'),
    ('task.init_checkpoint=5',
     'task.init_checkpoint: expected str or None, got 5 (int)'),
])
def test_wrong_types_are_named(override, expected):
  assert _problems('const_cl_pretrain_demo', override) == [expected]


@pytest.mark.parametrize('override,expected', [
    ('trainer.train_steps=-5', 'trainer.train_steps: must be >= 1, got -5'),
    ('task.losses.global_temperature=0',
     'task.losses.global_temperature: must be > 0, got 0'),
    ('task.losses.region_temperature=-0.2',
     'task.losses.region_temperature: must be > 0, got -0.2'),
    ('task.knn.temperature=0.0', 'task.knn.temperature: must be > 0, got 0.0'),
    ('task.model.context_length=5',
     "task.model.context_length: 5 exceeds the 4 frames T' of the local "
     'feature map (train_data.feature_shape[0]=8 divided by the stem temporal '
     'strides 2 x 1); context frames must be distinct'),
    ('task.train_data.max_bad_video_fraction=2',
     'task.train_data.max_bad_video_fraction: must be in [0.0, 1.0], got 2'),
    ('task.train_data.max_bad_videos=-1',
     'task.train_data.max_bad_videos: must be >= 0, got -1'),
    ('task.train_data.region_source=detector',
     "task.train_data.region_source: must be one of ['random', 'slic', 'fh', "
     "'stored'], got 'detector'"),
    ('task.train_data.box_min_size=0.6',
     'task.train_data.box_min_size: must be <= box_max_size (0.5), got 0.6'),
    ('trainer.summary_interval=150',
     'trainer.summary_interval: must be a multiple of steps_per_loop (100), '
     'got 150'),
    ('task.train_data.feature_shape=[8,64,64]',
     'task.train_data.feature_shape: must be 4 positive integers, got '
     '[8, 64, 64]'),
    ('runtime.mixed_precision_dtype=mixed_bfloat16',
     "runtime.mixed_precision_dtype: must be one of ['float32', 'bfloat16', "
     "'float16'], got 'mixed_bfloat16' (Model Garden spells the Keras policy "
     "'mixed_bfloat16' as 'bfloat16')"),
    ('runtime.mixed_precision_dtype=half',
     "runtime.mixed_precision_dtype: must be one of ['float32', 'bfloat16', "
     "'float16'], got 'half'"),
    ('runtime.distribution_strategy=multi_worker_mirrored',
     'task.train_data.seed: must be set (any int, the same on every worker) '
     'with runtime.distribution_strategy=multi_worker_mirrored: without it '
     'each worker shuffles the training files with its own random seed and '
     'the workers read overlapping file shards'),
])
def test_out_of_range_values_are_named(override, expected):
  assert _problems('const_cl_pretrain_demo', override) == [expected]


def test_the_spellings_model_garden_runs_are_accepted():
  for override in ('runtime.mixed_precision_dtype=bfloat16',
                   'runtime.mixed_precision_dtype=float16',
                   'runtime.mixed_precision_dtype=',
                   'runtime.distribution_strategy=multi_worker_mirrored,'
                   'task.train_data.seed=7'):
    validation.validate_experiment(hyperparams.override_params_dict(
        exp_factory.get_exp_config('const_cl_pretrain_demo'), override,
        is_strict=True), 'train')


def test_every_problem_is_reported_at_once():
  problems = _problems('const_cl_pretrain_demo',
                       'trainer.train_steps=-1,task.losses.global_temperature'
                       '=0,task.model.context_length=9')
  assert [p.split(':')[0] for p in problems] == [
      'task.model.context_length', 'task.losses.global_temperature',
      'trainer.train_steps']


def test_downstream_rules():
  assert _problems('const_cl_linear_eval_demo',
                   'task.validation_data.num_classes=7,'
                   'task.validation_data.num_test_crops=2') == [
                       'task.validation_data.num_classes: must equal '
                       'train_data.num_classes (8), got 7',
                       'task.validation_data.num_test_crops: must be one of '
                       '[1, 3], got 2']
  assert _problems('const_cl_finetune_demo', 'task.model.dropout_rate=1.0') == [
      'task.model.dropout_rate: must be in [0.0, 1.0), got 1.0']
  # A downstream training cache would hold augmented clips (repeated every
  # epoch); pretraining caches decoded frames and is allowed.
  for name in ('const_cl_finetune_demo', 'const_cl_action_localization_demo'):
    assert _problems(name, 'task.train_data.cache=true') == [
        'task.train_data.cache: must be false for a training input other '
        'than pretraining: the cache would hold augmented clips and repeat '
        'them every epoch']
  for name, override in (('const_cl_pretrain_demo', 'task.train_data.cache='
                           'true'),
                          ('const_cl_finetune_demo', 'task.validation_data.'
                           'cache=true')):
    validation.validate_experiment(hyperparams.override_params_dict(
        exp_factory.get_exp_config(name), override, is_strict=True), 'train')
  assert _problems('const_cl_action_localization_demo',
                   'task.validation_data.eval_boxes=predicted') == [
                       "task.validation_data.eval_boxes: must be one of "
                       "['groundtruth', 'detected'], got 'predicted'"]


def test_ava_protocol_is_checked():
  name = 'const_cl_action_localization_demo'
  assert exp_factory.get_exp_config(name).task.evaluation.protocol == '2018'
  assert _problems(name, 'task.evaluation.protocol=latest') == [
      "task.evaluation.protocol: must be one of ['2018', 'current'], got "
      "'latest'"]
  # An unquoted 2018 is a YAML number: the message says so; quoted it works.
  assert _problems(name, 'task.evaluation.protocol=2018') == [
      'task.evaluation.protocol: expected str, got 2018 (int)']
  for value in ("'2018'", 'current'):
    validation.validate_experiment(hyperparams.override_params_dict(
        exp_factory.get_exp_config(name), f'task.evaluation.protocol={value}',
        is_strict=True), 'train')


def test_eval_needs_no_train_steps_and_empty_str_means_none():
  params = exp_factory.get_exp_config('const_cl_pretrain_demo')
  params = hyperparams.override_params_dict(
      params, 'trainer.train_steps=0,task.train_data.demo_data_dir=',
      is_strict=True)
  validation.validate_experiment(params, 'eval')
  with pytest.raises(validation.ConfigError, match='train_steps: must be >= 1'):
    validation.validate_experiment(params, 'train')


def test_runner_turns_them_into_one_user_error():
  with pytest.raises(errors.UserError) as info:
    experiment_runner.experiment_config('const_cl_pretrain_demo',
                                        'trainer.train_steps=abc', 'train')
  assert str(info.value) == ('invalid experiment config:\n  '
                             "trainer.train_steps: expected int, got 'abc' "
                             '(str)')
  with pytest.raises(errors.UserError, match="key 'no_such_key' does not "
                     'exist'):
    experiment_runner.experiment_config('const_cl_pretrain_demo',
                                        'task.no_such_key=1')
  with pytest.raises(errors.UserError, match='const_cl_pretrain_demo'):
    experiment_runner.experiment_config('const_cl_pretrain_dmeo')
