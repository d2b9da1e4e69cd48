"""Resume safety of the shared runner: checks before anything is written."""

import os

from absl import logging
import pytest
import tensorflow as tf

from official.core import exp_factory
from official.modeling import hyperparams
from official_projects_const_cl import errors
from official_projects_const_cl.tasks import experiment_runner as runner


def _params(override=''):
  params = exp_factory.get_exp_config('const_cl_pretrain_demo')
  if override:
    params = hyperparams.override_params_dict(params, override,
                                              is_strict=True)
  return params


def _save_checkpoint(model_dir, step=1):
  ckpt = tf.train.Checkpoint(step=tf.Variable(step))
  tf.train.CheckpointManager(ckpt, model_dir, max_to_keep=3).save(step)


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


@pytest.fixture
def trained_dir(tmp_path):
  """A model_dir as a context-3 training run leaves it."""
  model_dir = str(tmp_path / 'run')
  runner.prepare_model_dir(_params(), 'train', model_dir)
  _save_checkpoint(model_dir)
  return model_dir


def test_a_changed_model_is_refused_with_the_keys(trained_dir):
  params_yaml = os.path.join(trained_dir, 'params.yaml')
  before = _read(params_yaml)
  changed = _params('task.model.context_length=1,'
                    'task.train_data.feature_shape=[8,32,32,3],'
                    'trainer.train_steps=3000')
  for mode in ('train', 'train_and_eval', 'eval'):
    with pytest.raises(errors.UserError) as info:
      runner.prepare_model_dir(changed, mode, trained_dir)
    assert str(info.value) == (
        f'{trained_dir} holds a checkpoint of a different model or data '
        f'shape; {params_yaml} differs from this run in:\n'
        '  task.model.context_length: 3 (params.yaml) -> 1 (this run)\n'
        '  task.train_data.feature_shape: [8, 56, 56, 3] (params.yaml) -> '
        '[8, 32, 32, 3] (this run)\n'
        'Use a new --model_dir, or pass --allow_config_change to resume '
        'anyway.')
    assert _read(params_yaml) == before  # Nothing was written.


def test_allow_config_change_and_harmless_changes_resume(trained_dir,
                                                         monkeypatch):
  logged = []
  monkeypatch.setattr(logging, 'info',
                      lambda msg, *args: logged.append(msg % args))
  # Schedule and data paths are not the model: resumed, and logged.
  runner.prepare_model_dir(
      _params('trainer.train_steps=3000,task.train_data.input_path=/x/*'),
      'train', trained_dir)
  assert any('trainer.train_steps: 1000 -> 3000' in m for m in logged)
  runner.prepare_model_dir(_params('task.model.context_length=1'), 'train',
                           trained_dir, allow_config_change=True)
  saved = hyperparams.read_yaml_to_params_dict(
      os.path.join(trained_dir, 'params.yaml'))
  assert saved.task.model.context_length == 1


def test_no_checkpoint_no_refusal(tmp_path):
  model_dir = str(tmp_path / 'run')
  runner.prepare_model_dir(_params(), 'train', model_dir)
  # params.yaml without a checkpoint (a run stopped before its first one).
  runner.prepare_model_dir(_params('task.model.context_length=1'), 'train',
                           model_dir)


def test_an_invalid_config_writes_nothing(tmp_path, trained_dir):
  fresh = str(tmp_path / 'fresh')
  with pytest.raises(errors.UserError, match='context_length: 5 exceeds'):
    runner.prepare_model_dir(_params('task.model.context_length=5'), 'train',
                             fresh)
  assert not os.path.exists(fresh)
  before = _read(os.path.join(trained_dir, 'params.yaml'))
  with pytest.raises(errors.UserError, match='context_length: 5 exceeds'):
    runner.prepare_model_dir(_params('task.model.context_length=5'), 'train',
                             trained_dir)
  assert _read(os.path.join(trained_dir, 'params.yaml')) == before


def test_leftover_temporary_checkpoints_are_removed(trained_dir):
  leftovers = [os.path.join(trained_dir, 'ckpt-2_temp'),
               os.path.join(trained_dir, 'best_ckpt', 'best_ckpt-2_temp')]
  for folder in leftovers:
    os.makedirs(folder)
    with open(os.path.join(folder, 'part-00000-of-00001.index'), 'wb') as f:
      f.write(b'partial')
  keep = os.path.join(trained_dir, 'not_temp')
  os.makedirs(keep)
  runner.prepare_model_dir(_params(), 'eval', trained_dir)  # Eval: no.
  assert all(os.path.isdir(f) for f in leftovers)
  assert sorted(runner.remove_temporary_checkpoints(trained_dir)) == sorted(
      leftovers)
  for folder in leftovers:
    os.makedirs(folder)
  runner.prepare_model_dir(_params(), 'train', trained_dir)
  assert not any(os.path.exists(f) for f in leftovers)
  assert os.path.isdir(keep)
  assert tf.train.latest_checkpoint(trained_dir).endswith('ckpt-1')


def test_config_differences_flatten_nested_lists():
  old = {'task': {'model': {'specs': [{'filters': 16}, {'filters': 32}]}},
         'trainer': {'train_steps': 2}}
  new = {'task': {'model': {'specs': [{'filters': 16}, {'filters': 64}]}},
         'trainer': {'train_steps': 2, 'extra': 1}}
  assert runner.config_differences(old, new) == [
      ('task.model.specs[1].filters', 32, 64),
      ('trainer.extra', '(absent)', 1)]
  assert runner.is_model_key('task.model.specs[1].filters')
  assert runner.is_model_key('task.train_data.num_classes')
  assert not runner.is_model_key('task.validation_data.feature_shape')
  assert not runner.is_model_key('task.train_data.input_path')
  assert not runner.is_model_key('trainer.train_steps')
