"""`run_demo --local`: does the local branch help local tasks (issue 11)?

For every seed, pretrains ConST-CL (once per context length) and CVRL on the
demo world, then trains and evaluates, from each of those checkpoints and
from random initialization,

* action localization (`const_cl_action_localization_demo`, frame-mAP with
  ground-truth boxes), with the backbone frozen and fine-tuned;
* SiamFC tracking (`const_cl_tracking_demo`, OTB success AUC), with the
  backbone frozen and fine-tuned.

Frozen means `task.model.freeze_backbone=true`: the backbone's weights and
batch-norm statistics stay those of the checkpoint (for tracking only the
SiamFC head's bias is trained). Context lengths other than the first are
evaluated frozen only (paper Table 6 reports the trend of a fixed
representation).

`tf.keras.utils.set_random_seed(seed)` runs before every training run, so
seed s draws the same initial weights; the parallel input pipelines still
make runs differ slightly, so the spread over seeds is the spread of the
recipe. Runs resume from their checkpoints when the command is repeated
with the same --model_dir.
"""

import json
import os
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import tensorflow as tf

LOCALIZATION = 'const_cl_action_localization_demo'
TRACKING = 'const_cl_tracking_demo'
PROTOCOLS = ('frozen', 'finetuned')
# (task key, experiment, metric key, what the metric is)
TASKS = (('localization', LOCALIZATION, 'frame_mAP', 'frame-mAP@0.5'),
         ('tracking', TRACKING, 'success_score', 'success AUC'))
CVRL = 'cvrl'
RANDOM = 'random_init'

RunMode = Callable[..., Dict[str, Any]]
# (experiment, params override, checkpoint or None, seed) -> measurements.
Diagnose = Callable[[str, str, Optional[str], int], Dict[str, Any]]


def _join(*overrides: str) -> str:
  return ','.join(o for o in overrides if o)


def const_cl_name(context_length: int) -> str:
  return f'const_cl_ctx{context_length}'


def init_overrides(init: str, pretrain_dirs: Dict[str, str]) -> str:
  """How a downstream run reads the checkpoint of `init`."""
  if init == RANDOM:
    return ''
  override = f'task.init_checkpoint={pretrain_dirs[init]}'
  if init == CVRL:  # A single res5: read it into both branches' places.
    override += ',task.model.backbone.resnet_3d_y.branch_res5=false'
  return override


def run_local(model_dir: str, run_mode: RunMode,
              seeds: int = 3,
              context_lengths: Sequence[int] = (3,),
              params_override: str = '',
              localization_params_override: str = '',
              tracking_params_override: str = '',
              log: Callable[[str], Any] = print,
              diagnose: Optional[Diagnose] = None) -> Dict[str, Any]:
  """Pretrains, transfers and evaluates; returns every value and the table.

  Args:
    model_dir: runs go to `<model_dir>/seed<s>/<run>`.
    run_mode: `run_demo.run_mode` (experiment, model_dir, mode, override,
      count_flops=...) -> final eval logs.
    seeds: pretraining seeds 0 .. seeds-1.
    context_lengths: ConST-CL context lengths to pretrain (0: MLP head; odd
      values up to the demo's 4 feature-map frames); the first is the one
      fine-tuned.
    params_override: applied to both pretraining experiments.
    localization_params_override: applied to every localization run.
    tracking_params_override: applied to every tracking run.
    log: where progress lines go.
    diagnose: measures each pretrained network and the random init
      (`representation_diagnosis.diagnose_experiment`; None: not measured).

  Returns:
    {'values': {init: {'<task>_<protocol>': [one value per seed]}},
     'inits': the rows in order, 'seconds_total', 'seeds',
     'context_lengths', 'checks': {claim: bool}, and with `diagnose`
     'diagnosis': {init: [one measurement dict per seed]}}.
  """
  if seeds < 1:
    raise ValueError(f'--seeds must be >= 1, got {seeds}.')
  if not context_lengths:
    raise ValueError('--context_lengths needs at least one value.')
  start = time.time()
  inits = [const_cl_name(c) for c in context_lengths] + [CVRL, RANDOM]
  values: Dict[str, Dict[str, List[float]]] = {
      init: {} for init in inits}
  task_overrides = {'localization': localization_params_override,
                    'tracking': tracking_params_override}
  plan = []  # (init, task, protocol)
  for init in inits:
    for task, _, _, _ in TASKS:
      for protocol in PROTOCOLS:
        if protocol == 'finetuned' and init.startswith('const_cl_ctx') and (
            init != const_cl_name(context_lengths[0])):
          continue
        plan.append((init, task, protocol))
  total_runs = seeds * (len(context_lengths) + 1 + len(plan))
  done = 0
  diagnosis: Dict[str, List[Dict[str, Any]]] = {init: [] for init in inits}

  def measure(init, experiment, override, checkpoint, seed):
    if diagnose is None:
      return
    path = os.path.join(model_dir, f'seed{seed}', f'diagnosis_{init}.json')
    if tf.io.gfile.exists(path):  # A resumed command: measured already.
      with tf.io.gfile.GFile(path) as f:
        diagnosis[init].append(json.load(f))
      return
    log(f'[local] seed {seed}: diagnosis of {init}')
    value = diagnose(experiment, override, checkpoint, seed)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, 'w') as f:
      json.dump(value, f, indent=2)
    diagnosis[init].append(value)

  def progress(what):
    elapsed = time.time() - start
    eta = (elapsed / done * (total_runs - done)) if done else None
    log(f'[local] run {done + 1}/{total_runs}: {what} | elapsed '
        f'{elapsed / 60:.1f} min' +
        (f' | ETA {eta / 60:.1f} min' if eta is not None else ''))

  for seed in range(seeds):
    seed_dir = os.path.join(model_dir, f'seed{seed}')
    pretrain_dirs = {}
    for c in context_lengths:
      name = const_cl_name(c)
      pretrain_dirs[name] = os.path.join(seed_dir, name)
      progress(f'seed {seed}: pretrain ConST-CL, context length {c}')
      tf.keras.utils.set_random_seed(seed)
      override = _join(params_override, f'task.model.context_length={c}')
      run_mode('const_cl_pretrain_demo', pretrain_dirs[name], 'train',
               override)
      done += 1
      measure(name, 'const_cl_pretrain_demo', override, pretrain_dirs[name],
              seed)
    pretrain_dirs[CVRL] = os.path.join(seed_dir, CVRL)
    progress(f'seed {seed}: pretrain CVRL')
    tf.keras.utils.set_random_seed(seed)
    run_mode('cvrl_pretrain_demo', pretrain_dirs[CVRL], 'train',
             params_override)
    done += 1
    measure(CVRL, 'cvrl_pretrain_demo', params_override, pretrain_dirs[CVRL],
            seed)
    measure(RANDOM, 'const_cl_pretrain_demo',
            _join(params_override,
                  f'task.model.context_length={context_lengths[0]}'),
            None, seed)
    for init, task, protocol in plan:
      experiment, metric = {t[0]: (t[1], t[2]) for t in TASKS}[task]
      progress(f'seed {seed}: {task} {protocol} from {init}')
      tf.keras.utils.set_random_seed(seed)
      logs = run_mode(
          experiment, os.path.join(seed_dir, f'{task}_{protocol}_{init}'),
          'train_and_eval',
          _join(task_overrides[task], init_overrides(init, pretrain_dirs),
                'task.model.freeze_backbone=true' if protocol == 'frozen'
                else ''), count_flops=False)
      values[init].setdefault(f'{task}_{protocol}', []).append(
          float(logs[metric]))
      done += 1
  results = {'values': values, 'inits': inits, 'seeds': seeds,
             'context_lengths': list(context_lengths),
             'seconds_total': round(time.time() - start, 1)}
  results['checks'] = claim_checks(results)
  if diagnose is not None:
    results['diagnosis'] = diagnosis
  tf.io.gfile.makedirs(model_dir)
  with tf.io.gfile.GFile(os.path.join(model_dir, 'local_results.json'),
                         'w') as f:
    json.dump(results, f, indent=2)
  return results


def mean_spread(values: Sequence[float]) -> Optional[tuple]:
  """(mean, spread): spread is the sample standard deviation (0 for one)."""
  if not values:
    return None
  mean = statistics.fmean(values)
  spread = statistics.stdev(values) if len(values) > 1 else 0.0
  return mean, spread


def _ordered(a: Sequence[float], b: Sequence[float]) -> bool:
  """mean(a) > mean(b) by more than the spread of either side."""
  (ma, sa), (mb, sb) = mean_spread(a), mean_spread(b)
  return ma - mb > max(sa, sb)


def claim_checks(results: Dict[str, Any]) -> Dict[str, bool]:
  """The claims of issue 11, item 3, checked on the measured values."""
  values = results['values']
  const_cl = const_cl_name(results['context_lengths'][0])
  checks = {}
  for task, _, _, _ in TASKS:
    key = f'{task}_frozen'
    checks[f'{key}: ConST-CL > CVRL > random, gaps beyond the spread'] = (
        _ordered(values[const_cl][key], values[CVRL][key]) and
        _ordered(values[CVRL][key], values[RANDOM][key]))
    key = f'{task}_finetuned'
    checks[f'{key}: ConST-CL >= random'] = (
        mean_spread(values[const_cl][key])[0] >=
        mean_spread(values[RANDOM][key])[0])
  return checks


def format_local(results: Dict[str, Any]) -> str:
  """The table: one row per init, mean ± spread over seeds per cell."""
  def cell(vals):
    stats = mean_spread(vals or [])
    if stats is None:
      return '–'
    return f'{100 * stats[0]:.1f} ± {100 * stats[1]:.1f}'

  columns = [(f'{task}_{protocol}', f'{what} {protocol}')
             for task, _, _, what in TASKS for protocol in PROTOCOLS]
  width = max(len(label) for _, label in columns) + 2
  lines = [f'== Local tasks on the demo world: mean ± standard deviation '
           f'over {results["seeds"]} seed(s), in % ==',
           f'  {"init":16s}' + ''.join(f'{label:>{width}s}'
                                       for _, label in columns)]
  for init in results['inits']:
    row = results['values'][init]
    lines.append(f'  {init:16s}' + ''.join(
        f'{cell(row.get(key)):>{width}s}' for key, _ in columns))
  lines.append('== Checks (issue 11) ==')
  for claim, ok in results['checks'].items():
    lines.append(f'  [{"yes" if ok else "no "}] {claim}')
  lines.append(f'  wall time: {results["seconds_total"] / 60:.1f} min')
  return '\n'.join(lines)


# Columns of the diagnosis table: (label, path into one measurement, scale).
DIAGNOSIS_COLUMNS = (
    ('dW res4', ('weight_change', 'res4'), 100),
    ('dW res5_g', ('weight_change', 'res5_g'), 100),
    ('dW local', None, 100),  # res5_r, or CVRL's res5.
    ('dW region head', ('weight_change', 'region_head'), 100),
    ('feat rms', ('features', 'rms'), 1),
    ('zeros', ('features', 'zero_fraction'), 100),
    ('dead ch', ('features', 'dead_channel_fraction'), 100),
    ('shape', ('probes', 'shape'), 100),
    ('texture', ('probes', 'texture'), 100),
    ('action', ('probes', 'action'), 100),
    ('position R2', ('probes', 'position'), 100),
)


def _diagnosis_value(measurement: Dict[str, Any], path) -> Optional[float]:
  if path is None:
    change = measurement.get('weight_change', {})
    return change.get('res5_r', change.get('res5'))
  value = measurement
  for key in path:
    if not isinstance(value, dict) or key not in value:
      return None
    value = value[key]
  return value


def format_diagnosis(results: Dict[str, Any]) -> str:
  """The diagnosis table: mean over seeds per cell ('–': not measured).

  dW: relative weight change ||W - W0|| / ||W0|| in % over pretraining;
  feat: ROI-pooled local features of held-out objects (rms, % exact zeros,
  % channels zero on every object); probes: ridge read-out accuracy in %
  (position: R^2 in %) of the object's shape, texture, action, box center.
  """
  diagnosis = results.get('diagnosis')
  if not diagnosis:
    return ''
  chance = {}
  for init in results['inits']:
    for measurement in diagnosis.get(init, []):
      for name in ('shape', 'texture', 'action'):
        chance.setdefault(name, measurement['probes'][f'{name}_chance'])
  lines = ['== Diagnosis (issue 11): weights moved in pretraining, local '
           'features, linear read-out; mean over seeds ==',
           '  chance (majority class): ' + ', '.join(
               f'{k} {100 * v:.1f}%' for k, v in chance.items())]
  header = f'  {"init":16s}' + ''.join(f'{label:>15s}'
                                       for label, _, _ in DIAGNOSIS_COLUMNS)
  lines.append(header)
  for init in results['inits']:
    cells = []
    for _, path, scale in DIAGNOSIS_COLUMNS:
      values = [_diagnosis_value(m, path) for m in diagnosis.get(init, [])]
      values = [v for v in values if v is not None]
      cells.append(f'{scale * statistics.fmean(values):.{1 if scale == 100 else 3}f}'
                   if values else '–')
    lines.append(f'  {init:16s}' + ''.join(f'{c:>15s}' for c in cells))
  return '\n'.join(lines)
