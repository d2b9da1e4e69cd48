"""End to end: train.py's main trains two steps, evaluates, resumes."""

import os
import subprocess
import sys

from absl import flags
import numpy as np
import pytest

import train
from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import demo_data

FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def tiny_demo(tmp_path_factory):
  out = tmp_path_factory.mktemp('demo')
  return demo_data.generate_demo_dataset(
      str(out), num_train=8, num_val=4, num_shards=2, write_ava=False)


def _overrides(data, extra=''):
  return ','.join([
      f"task.train_data.input_path={data['train_pattern']}",
      f"task.validation_data.input_path={data['val_pattern']}",
      f"task.validation_data.knn_bank_input_path={data['train_pattern']}",
      'task.train_data.demo_data_dir=',
      'task.validation_data.demo_data_dir=',
      'task.train_data.global_batch_size=4',
      'task.validation_data.global_batch_size=4',
      'task.train_data.num_examples=8',
      'task.knn.num_neighbors=3',
      'trainer.validation_interval=2',
      'trainer.steps_per_loop=1',
      'trainer.summary_interval=1',
      'trainer.checkpoint_interval=1',
  ] + ([extra] if extra else []))


def _run(experiment, mode, model_dir, data, extra='', flags_=()):
  if not FLAGS.is_parsed() and 'experiment' not in FLAGS:
    train.define_flags()
  FLAGS.unparse_flags()
  FLAGS(['train.py', f'--experiment={experiment}', f'--mode={mode}',
         f'--model_dir={model_dir}',
         f'--params_override={_overrides(data, extra)}', *flags_])
  return train.main(None)


@pytest.mark.parametrize('experiment', ['const_cl_pretrain_demo',
                                        'cvrl_pretrain_demo'])
def test_train_two_steps_then_evaluate_then_resume(experiment, tiny_demo,
                                                   tmp_path):
  model_dir = str(tmp_path / 'run')
  _run(experiment, 'train', model_dir, tiny_demo, 'trainer.train_steps=2')
  assert os.path.exists(os.path.join(model_dir, 'params.yaml'))
  assert os.path.exists(os.path.join(model_dir, 'ckpt-2.index'))

  logs = _run(experiment, 'eval', model_dir, tiny_demo,
              'trainer.train_steps=2')
  assert logs['knn_num_queries'] == 4 and logs['knn_num_bank'] == 8
  assert 0.0 <= logs['knn_top1'] <= 1.0
  assert np.isfinite(logs['global_loss']) and logs['global_loss'] > 0
  if experiment.startswith('const_cl'):
    assert np.isfinite(logs['region_loss']) and logs['region_loss'] > 0
  else:
    assert logs['region_loss'] == 0

  # A changed model is refused before anything is written.
  with pytest.raises(errors.UserError,
                     match=r'task.model.context_length: 3 \(params.yaml\) -> '
                     r'1 \(this run\)'):
    _run(experiment, 'train', model_dir, tiny_demo,
         'trainer.train_steps=3,task.model.context_length=1')
  # Resuming: the same command with more steps continues from ckpt-2.
  _run(experiment, 'train', model_dir, tiny_demo, 'trainer.train_steps=3')
  assert os.path.exists(os.path.join(model_dir, 'ckpt-3.index'))
  if experiment.startswith('const_cl'):
    # --allow_config_change resumes anyway (here a weight-free change).
    _run(experiment, 'train', model_dir, tiny_demo,
         'trainer.train_steps=4,task.model.roi_sampling_ratio=1',
         flags_=['--allow_config_change'])
    assert os.path.exists(os.path.join(model_dir, 'ckpt-4.index'))


def test_eval_of_a_fresh_dir_is_random_init(tiny_demo, tmp_path):
  logs = _run('const_cl_pretrain_demo', 'eval', str(tmp_path / 'fresh'),
              tiny_demo, 'trainer.train_steps=2')
  assert 'knn_top1' in logs


def _driver(*args):
  return subprocess.run([sys.executable, os.path.join(REPO, 'train.py'),
                         *args], capture_output=True, text=True, cwd=REPO,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'),
                        check=False)


def test_unknown_and_missing_experiment_list_registered_names(tmp_path):
  for args in (['--experiment=const_cl_pretrain_dmeo'], []):
    proc = _driver(*args, '--mode=train', f'--model_dir={tmp_path}')
    assert proc.returncode == 2
    assert 'const_cl_pretrain_demo' in proc.stderr
    assert 'cvrl_pretrain_k400' in proc.stderr
    assert 'LookupError' not in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_driver_exit_status_success_and_user_errors(tiny_demo, tmp_path):
  model_dir = str(tmp_path / 'run')
  ok = _driver('--experiment=cvrl_pretrain_demo', '--mode=train',
               f'--model_dir={model_dir}', '--params_override=' + _overrides(
                   tiny_demo, 'trainer.train_steps=1,task.knn.enabled=false'))
  assert ok.returncode == 0, ok.stderr[-3000:]
  assert os.path.exists(os.path.join(model_dir, 'ckpt-1.index'))
  assert ok.stdout.strip() != '{}' and 'ERROR' not in ok.stderr
  with open(os.path.join(model_dir, 'params.yaml')) as f:
    params_yaml = f.read()
  # A config error: one message naming the key, nothing written.
  bad = _driver('--experiment=cvrl_pretrain_demo', '--mode=train',
                f'--model_dir={model_dir}', '--params_override=' + _overrides(
                    tiny_demo, 'trainer.train_steps=abc'))
  assert bad.returncode == 2
  assert 'Traceback' not in bad.stderr
  assert bad.stderr.startswith(
      'ERROR: invalid experiment config:\n  trainer.train_steps: expected '
      "int, got 'abc' (str)\n"), bad.stderr[-3000:]
  with open(os.path.join(model_dir, 'params.yaml')) as f:
    assert f.read() == params_yaml
  # A bad flag value.
  flag = _driver('--experiment=cvrl_pretrain_demo', '--mode=trian',
                 f'--model_dir={model_dir}')
  assert flag.returncode == 2 and 'Traceback' not in flag.stderr
  assert flag.stderr.startswith('ERROR: flag --mode=trian: value should be')


def test_input_path_matching_nothing_names_the_pattern(tiny_demo, tmp_path):
  missing = str(tmp_path / 'nowhere' / 'train-*.tfrecord')
  with pytest.raises(FileNotFoundError, match='nowhere'):
    _run('cvrl_pretrain_demo', 'train', str(tmp_path / 'run'), tiny_demo,
         f'trainer.train_steps=1,task.train_data.input_path={missing}')


def test_run_demo_reports_random_and_pretrained_knn(tiny_demo, tmp_path):
  from official_projects_const_cl.tools import run_demo  # pylint: disable=g-import-not-at-top
  override = ','.join([
      f"task.train_data.input_path={tiny_demo['train_pattern']}",
      f"task.validation_data.input_path={tiny_demo['val_pattern']}",
      f"task.validation_data.knn_bank_input_path={tiny_demo['train_pattern']}",
      'task.train_data.demo_data_dir=', 'task.validation_data.demo_data_dir=',
      'task.train_data.global_batch_size=4',
      'task.validation_data.global_batch_size=4',
      'task.knn.num_neighbors=3', 'trainer.train_steps=2',
      'trainer.validation_interval=2', 'trainer.steps_per_loop=1'])
  results = run_demo.run_demo('const_cl_pretrain_demo', str(tmp_path),
                              override)
  for key in ('knn_top1_random_init', 'knn_top1_pretrained'):
    assert 0.0 <= results[key] <= 1.0
  assert os.path.exists(tmp_path / 'demo_results.json')
  assert os.path.exists(tmp_path / 'pretrain' / 'ckpt-2.index')
  text = run_demo.format_results(results)
  assert 'randomly initialized network' in text and '%' in text
