"""`run_demo --local`: the plan of runs, the statistics, the table, end to end."""

import functools
import json
import os

import pytest

from official_projects_const_cl.tasks import representation_diagnosis
from official_projects_const_cl.tools import local_demo


class _FakeRuns:
  """Records every run and returns scripted metrics."""

  def __init__(self, metric_of):
    self.calls = []
    self._metric_of = metric_of

  def __call__(self, experiment, model_dir, mode, override='',
               count_flops=None):
    self.calls.append((experiment, model_dir, mode, override))
    return self._metric_of(experiment, model_dir, override)


def _scripted(experiment, model_dir, override):
  """ConST-CL 0.5, CVRL 0.3, random 0.1, +0.01 per seed; fine-tuned +0.2."""
  del experiment
  seed = int(model_dir.split('seed')[1][0])
  name = os.path.basename(model_dir)
  base = (0.5 if 'const_cl_ctx' in name else 0.3 if name.endswith('cvrl')
          else 0.1)
  if 'const_cl_ctx0' in name:
    base = 0.4
  value = base + 0.01 * seed + (0.0 if 'freeze_backbone' in override
                                else 0.2)
  return {'frame_mAP': value, 'success_score': value / 2}


def test_plan_overrides_values_and_checks(tmp_path):
  runs = _FakeRuns(_scripted)
  lines = []
  results = local_demo.run_local(
      str(tmp_path), runs, seeds=2, context_lengths=(3, 0),
      params_override='trainer.train_steps=7',
      localization_params_override='task.x=1',
      tracking_params_override='task.y=2', log=lines.append)
  # Per seed: 2 ConST-CL + 1 CVRL pretrainings, then 4 runs from each of
  # ctx3 / CVRL / random and 2 (frozen only) from ctx0.
  assert len(runs.calls) == 2 * (3 + 4 + 2 + 4 + 4)
  pretrain = [c for c in runs.calls if c[2] == 'train']
  assert [(c[0], os.path.relpath(c[1], tmp_path), c[3])
          for c in pretrain[:3]] == [
              ('const_cl_pretrain_demo', 'seed0/const_cl_ctx3',
               'trainer.train_steps=7,task.model.context_length=3'),
              ('const_cl_pretrain_demo', 'seed0/const_cl_ctx0',
               'trainer.train_steps=7,task.model.context_length=0'),
              ('cvrl_pretrain_demo', 'seed0/cvrl', 'trainer.train_steps=7')]
  downstream = {os.path.relpath(c[1], tmp_path): c for c in runs.calls
                if c[2] == 'train_and_eval'}
  seed1 = os.path.join(str(tmp_path), 'seed1')
  assert downstream['seed1/tracking_frozen_cvrl'][3] == (
      f'task.y=2,task.init_checkpoint={seed1}/cvrl,'
      'task.model.backbone.resnet_3d_y.branch_res5=false,'
      'task.model.freeze_backbone=true')
  assert downstream['seed0/localization_finetuned_random_init'][3] == (
      'task.x=1')
  assert downstream['seed0/localization_finetuned_random_init'][0] == (
      local_demo.LOCALIZATION)
  assert 'seed0/localization_finetuned_const_cl_ctx0' not in downstream
  # Values per seed, in order.
  values = results['values']
  assert values['const_cl_ctx3']['localization_frozen'] == pytest.approx(
      [0.5, 0.51])
  assert values['random_init']['tracking_finetuned'] == pytest.approx(
      [0.15, 0.155])
  assert 'localization_finetuned' not in values['const_cl_ctx0']
  assert all(results['checks'].values())
  assert len(lines) == len(runs.calls)
  assert lines[-1].startswith(f'[local] run {len(runs.calls)}/'
                              f'{len(runs.calls)}:') and 'ETA' in lines[-1]
  saved = json.loads((tmp_path / 'local_results.json').read_text())
  assert saved['values'] == values


def test_mean_spread_and_the_ordering_rule():
  mean, spread = local_demo.mean_spread([0.2, 0.4, 0.6])
  assert mean == pytest.approx(0.4) and spread == pytest.approx(0.2)
  assert local_demo.mean_spread([0.3]) == (0.3, 0.0)
  # A gap of 0.15 beats spreads of 0.1 but not of 0.2.
  assert local_demo._ordered([0.5, 0.6, 0.7], [0.35, 0.45, 0.55])
  assert not local_demo._ordered([0.4, 0.6, 0.8], [0.35, 0.45, 0.55])


def test_checks_fail_when_the_order_breaks():
  values = {'const_cl_ctx3': {}, 'cvrl': {}, 'random_init': {}}
  for task in ('localization', 'tracking'):
    values['const_cl_ctx3'][f'{task}_frozen'] = [0.30, 0.32]
    values['cvrl'][f'{task}_frozen'] = [0.25, 0.27]
    values['random_init'][f'{task}_frozen'] = [0.26, 0.28]  # Above CVRL.
    values['const_cl_ctx3'][f'{task}_finetuned'] = [0.5]
    values['random_init'][f'{task}_finetuned'] = [0.6]
  checks = local_demo.claim_checks(
      {'values': values, 'context_lengths': [3]})
  assert not any(checks.values())


def test_table_lists_every_init_and_cell():
  values = {'const_cl_ctx3': {'localization_frozen': [0.2, 0.4]},
            'cvrl': {}, 'random_init': {}}
  text = local_demo.format_local({
      'values': values, 'inits': ['const_cl_ctx3', 'cvrl', 'random_init'],
      'seeds': 2, 'checks': {'a claim': False}, 'seconds_total': 90.0})
  assert 'over 2 seed(s)' in text
  row = [line for line in text.splitlines() if 'const_cl_ctx3' in line][0]
  assert '30.0 ± 14.1' in row and row.count('–') == 3
  assert '[no ] a claim' in text and 'wall time: 1.5 min' in text


def test_run_demo_local_end_to_end(tmp_path):
  """One seed, one step per run, on tiny demo data: the real runs."""
  from official_projects_const_cl.dataloaders import demo_data  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl.tools import run_demo  # pylint: disable=g-import-not-at-top
  data = demo_data.generate_demo_dataset(
      str(tmp_path / 'pre'), num_train=4, num_val=2, num_shards=1,
      write_ava=False)
  ava = demo_data.ensure_demo_ava_records(
      str(tmp_path / 'ava'), num_train=2, num_val=1, num_shards=1)
  track = demo_data.ensure_demo_tracking(
      str(tmp_path / 'track'), num_train=2, num_val=1, num_shards=1,
      write_ava=False)
  one_step = ('trainer.train_steps=1,trainer.validation_interval=1,'
              'trainer.steps_per_loop=1,trainer.summary_interval=1,'
              'trainer.checkpoint_interval=1')
  pretrain = ','.join([
      f"task.train_data.input_path={data['train_pattern']}",
      f"task.validation_data.input_path={data['val_pattern']}",
      f"task.validation_data.knn_bank_input_path={data['train_pattern']}",
      'task.train_data.demo_data_dir=', 'task.validation_data.demo_data_dir=',
      'task.train_data.global_batch_size=2',
      'task.validation_data.global_batch_size=2', one_step])
  localization = ','.join([
      f"task.train_data.input_path={ava['ava_train_records']}",
      f"task.validation_data.input_path={ava['ava_val_records']}",
      f"task.evaluation.label_map_path={ava['ava_label_map']}",
      'task.train_data.demo_data_dir=', 'task.validation_data.demo_data_dir=',
      'task.train_data.global_batch_size=2',
      'task.validation_data.global_batch_size=2', one_step])
  tracking = ','.join([
      f"task.train_data.input_path={track['tracking_train']}",
      f"task.validation_data.input_path={track['tracking_val']}",
      'task.train_data.demo_data_dir=', 'task.validation_data.demo_data_dir=',
      'task.train_data.global_batch_size=2',
      'task.validation_data.max_sequences=1',
      'task.model.siamfc.exemplar_size=31',
      'task.model.siamfc.instance_size=63',
      'task.model.siamfc.train_instance_size=55',
      'task.model.siamfc.response_size=5',
      'task.model.siamfc.response_up=4', one_step])
  # Both pretrainings and one run per task, protocol and pretrained init are
  # real; the other downstream runs (the same code paths again, or random
  # init: no checkpoint override) are recorded only, to keep the test short.
  real = ('localization_finetuned_const_cl', 'tracking_frozen_cvrl')
  skipped = []

  def run_mode(experiment, model_dir, mode, override='', count_flops=None):
    name = os.path.basename(model_dir)
    if mode == 'train' or name.startswith(real):
      return run_demo.run_mode(experiment, model_dir, mode, override,
                               count_flops=count_flops)
    skipped.append(name)
    return {'frame_mAP': 0.5, 'success_score': 0.5}

  results = local_demo.run_local(
      str(tmp_path / 'runs'), run_mode, seeds=1,
      context_lengths=(1,), params_override=pretrain,
      localization_params_override=localization,
      tracking_params_override=tracking, log=lambda _: None,
      diagnose=functools.partial(
          representation_diagnosis.diagnose_experiment, num_probe_videos=6))
  assert len(skipped) == 10
  for init in ('const_cl_ctx1', 'cvrl', 'random_init'):
    for key in ('localization_frozen', 'localization_finetuned',
                'tracking_frozen', 'tracking_finetuned'):
      (value,) = results['values'][init][key]
      assert 0.0 <= value <= 1.0
  runs = tmp_path / 'runs' / 'seed0'
  for name in ('const_cl_ctx1', 'cvrl', *real):
    (run,) = runs.glob(name + '*')
    assert (run / 'ckpt-1.index').exists(), name
  text = local_demo.format_local(results)
  assert text.count(' ± ') == 1 + 12  # The header, then 3 rows x 4 cells.
  diagnosis = results['diagnosis']
  assert set(diagnosis['const_cl_ctx1'][0]['weight_change']) >= {
      'res5_g', 'res5_r', 'region_head'}
  assert 'res5' in diagnosis['cvrl'][0]['weight_change']
  assert 'weight_change' not in diagnosis['random_init'][0]
  table = local_demo.format_diagnosis(results)
  assert all(any(l.strip().startswith(init) for l in table.splitlines())
             for init in ('const_cl_ctx1', 'cvrl', 'random_init'))


def _fake_measurement(init_value):
  return {'weight_change': {'res4': init_value, 'res5_r': 2 * init_value},
          'features': {'rms': 1.5, 'zero_fraction': 0.25,
                       'dead_channel_fraction': 0.0},
          'probes': {'shape': init_value, 'shape_chance': 0.2,
                     'texture': 0.5, 'texture_chance': 0.2,
                     'action': 0.3, 'action_chance': 0.25, 'position': 0.1}}


def test_diagnosis_plan_resume_and_table(tmp_path):
  calls = []

  def diagnose(experiment, override, checkpoint, seed):
    calls.append((experiment, override, checkpoint, seed))
    return _fake_measurement(0.1 * (seed + 1))

  run = lambda: local_demo.run_local(  # pylint: disable=g-long-lambda
      str(tmp_path), _FakeRuns(_scripted), seeds=2, context_lengths=(3,),
      params_override='trainer.train_steps=7', log=lambda _: None,
      diagnose=diagnose)
  results = run()
  seed0 = os.path.join(str(tmp_path), 'seed0')
  assert calls[:3] == [
      ('const_cl_pretrain_demo',
       'trainer.train_steps=7,task.model.context_length=3',
       f'{seed0}/const_cl_ctx3', 0),
      ('cvrl_pretrain_demo', 'trainer.train_steps=7', f'{seed0}/cvrl', 0),
      ('const_cl_pretrain_demo',
       'trainer.train_steps=7,task.model.context_length=3', None, 0)]
  assert len(calls) == 6
  assert [m['probes']['shape'] for m in results['diagnosis']['cvrl']] == (
      pytest.approx([0.1, 0.2]))
  # A repeated command reads the measurements back instead of measuring.
  again = run()
  assert len(calls) == 6
  assert again['diagnosis'] == results['diagnosis']
  text = local_demo.format_diagnosis(results)
  row = [l for l in text.splitlines() if l.strip().startswith('cvrl')][0]
  # Mean over the seeds: dW res4 15.0%, local (res5_r) 30.0%, shape 15.0%.
  cells = row.split()
  assert cells[1] == '15.0' and cells[2] == '–' and cells[3] == '30.0'
  assert cells[5] == '1.500' and cells[8] == '15.0'
  assert 'shape 20.0%' in text
  assert local_demo.format_diagnosis({'inits': []}) == ''
