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
              log: Callable[[str], Any] = print) -> Dict[str, Any]:
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

  Returns:
    {'values': {init: {'<task>_<protocol>': [one value per seed]}},
     'inits': the rows in order, 'seconds_total', 'seeds',
     'context_lengths', 'checks': {claim: bool}}.
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
      run_mode('const_cl_pretrain_demo', pretrain_dirs[name], 'train',
               _join(params_override, f'task.model.context_length={c}'))
      done += 1
    pretrain_dirs[CVRL] = os.path.join(seed_dir, CVRL)
    progress(f'seed {seed}: pretrain CVRL')
    tf.keras.utils.set_random_seed(seed)
    run_mode('cvrl_pretrain_demo', pretrain_dirs[CVRL], 'train',
             params_override)
    done += 1
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
