"""The README's main job: demo pretraining + evaluation, learned vs random.

  python -m official_projects_const_cl.tools.run_demo --model_dir=runs/demo

1. generates the demo world on first use (`demo_data.prepare_for`);
2. evaluates the randomly initialized network (kNN top-1 of global features,
   validation videos against training videos);
3. pretrains `--experiment` (default const_cl_pretrain_demo) with
   `--mode=train_and_eval`, exactly as `train.py` would;
4. with `--downstream` (default): action recognition on the demo world's
   classes from the pretrained checkpoint and from random initialization --
   linear probe (`const_cl_linear_eval_demo`), fine-tuning
   (`const_cl_finetune_demo`), both scored per video over 10 clips x 3 crops,
   and nearest-neighbour retrieval R@1/5/10/20 (`tools/retrieval.py`);
5. with `--localization` / `--tracking` (off by default: they add a CVRL
   pretraining run; about 11 / 21 minutes): pretrains `cvrl_pretrain_demo`
   too and trains `const_cl_action_localization_demo` (frame-mAP with
   ground-truth boxes) / `const_cl_tracking_demo` (OTB precision and
   success) from the ConST-CL checkpoint, the CVRL checkpoint and random
   initialization;
6. prints the numbers side by side and writes them to
   `<model_dir>/demo_results.json`.

With `--local`, runs the local-task study instead (`tools/local_demo.py`):
ConST-CL, CVRL and random init on `--seeds` pretraining seeds, each by
frozen and fine-tuned localization and tracking, one table with the mean
and spread per cell, `<model_dir>/local_results.json`:

  python -m official_projects_const_cl.tools.run_demo --local \
      --model_dir=runs/local --seeds=3 --context_lengths=0,1,3

Re-running with the same --model_dir resumes every run from its checkpoint.
Exit status: 0, or 2 with one `ERROR:` line for a bad flag, config or
record, 1 for any other failure (`errors.py`).
"""

import json
import os
import time
from typing import Any, Dict, Optional

from absl import flags
from absl import logging
import tensorflow as tf

from official.core import exp_factory
from official_projects_const_cl import errors
from official_projects_const_cl import registry_imports  # pylint: disable=unused-import
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import representation_diagnosis
from official_projects_const_cl.tools import local_demo
from official_projects_const_cl.tools import retrieval

FLAGS = flags.FLAGS


def run_mode(experiment: str, model_dir: str, mode: str,
             params_override: str = '',
             allow_config_change: bool = False,
             count_flops: Optional[bool] = None) -> Dict[str, Any]:
  """Runs one Model Garden mode and returns its final eval logs.

  The config is checked and the model_dir prepared as by `train.py`
  (`experiment_runner.run`). Downstream runs pass `count_flops=False`: the
  count (a few seconds) was logged by the pretraining run.
  """
  params = experiment_runner.experiment_config(experiment, params_override,
                                               mode)
  demo_data.prepare_for(params)
  eval_logs = experiment_runner.run(params, mode, model_dir,
                                    allow_config_change=allow_config_change,
                                    count_flops=count_flops)
  return {k: float(v) for k, v in (eval_logs or {}).items()
          if tf.rank(v) == 0}


RECOGNITION_EXPERIMENTS = ('const_cl_linear_eval_demo', 'const_cl_finetune_demo')
INITS = ('pretrained', 'random_init')


def _join(*overrides: str) -> str:
  return ','.join(o for o in overrides if o)


def run_downstream(pretrain_experiment: str, pretrain_dir: str,
                   model_dir: str, params_override: str = ''
                   ) -> Dict[str, Any]:
  """Recognition and retrieval from `pretrain_dir` and from random init.

  Args:
    pretrain_experiment: the pretraining experiment (its backbone layout
      decides how the checkpoint is read: CVRL has a single res5).
    pretrain_dir: the pretraining model_dir.
    model_dir: runs go to `<model_dir>/<experiment>_<init>`.
    params_override: applied to every recognition experiment.

  Returns:
    {'<experiment>': {'pretrained': logs, 'random_init': logs},
     'retrieval': {'pretrained': R@k, 'random_init': R@k}}.
  """
  pretrain = exp_factory.get_exp_config(pretrain_experiment)
  branched = pretrain.task.model.backbone.resnet_3d_y.branch_res5
  layout = ('' if branched else
            'task.model.backbone.resnet_3d_y.branch_res5=false')
  results = {}
  for experiment in RECOGNITION_EXPERIMENTS:
    results[experiment] = {}
    for init in INITS:
      init_override = (f'task.init_checkpoint={pretrain_dir}'
                       if init == 'pretrained' else '')
      results[experiment][init] = run_mode(
          experiment, os.path.join(model_dir, f'{experiment}_{init}'),
          'train_and_eval', _join(params_override, layout, init_override),
          count_flops=False)
  params = experiment_runner.experiment_config(
      RECOGNITION_EXPERIMENTS[0], _join(params_override, layout), 'eval')
  results['retrieval'] = {
      init: retrieval.run_retrieval(
          params, pretrain_dir if init == 'pretrained' else None)
      for init in INITS}
  return results


LOCALIZATION_EXPERIMENT = 'const_cl_action_localization_demo'
TRACKING_EXPERIMENT = 'const_cl_tracking_demo'
THREE_INITS = ('const_cl', 'cvrl', 'random_init')
LOCALIZATION_INITS = THREE_INITS


def run_from_three_inits(experiment: str, const_cl_dir: str, cvrl_dir: str,
                         model_dir: str, params_override: str = ''
                         ) -> Dict[str, Any]:
  """A downstream experiment from ConST-CL, CVRL and random initialization.

  Args:
    experiment: e.g. `const_cl_action_localization_demo`.
    const_cl_dir: a `const_cl_pretrain_demo` model_dir.
    cvrl_dir: a `cvrl_pretrain_demo` model_dir.
    model_dir: runs go to `<model_dir>/<experiment>_<init>`.
    params_override: applied to every run.

  Returns:
    {init: final eval logs}.
  """
  overrides = {
      'const_cl': f'task.init_checkpoint={const_cl_dir}',
      'cvrl': (f'task.init_checkpoint={cvrl_dir},'
               'task.model.backbone.resnet_3d_y.branch_res5=false'),
      'random_init': '',
  }
  return {init: run_mode(
      experiment, os.path.join(model_dir, f'{experiment}_{init}'),
      'train_and_eval', _join(params_override, overrides[init]),
      count_flops=False) for init in THREE_INITS}


def run_localization(const_cl_dir: str, cvrl_dir: str, model_dir: str,
                     params_override: str = '') -> Dict[str, Any]:
  """Action localization (frame-mAP, ground-truth boxes) from three inits."""
  return run_from_three_inits(LOCALIZATION_EXPERIMENT, const_cl_dir,
                              cvrl_dir, model_dir, params_override)


def run_tracking(const_cl_dir: str, cvrl_dir: str, model_dir: str,
                 params_override: str = '') -> Dict[str, Any]:
  """SiamFC tracking (OTB precision / success) from three inits."""
  return run_from_three_inits(TRACKING_EXPERIMENT, const_cl_dir, cvrl_dir,
                              model_dir, params_override)


def run_demo(experiment: str, model_dir: str,
             params_override: str = '', downstream: bool = False,
             downstream_params_override: str = '',
             localization: bool = False,
             tracking: bool = False) -> Dict[str, Any]:
  """Random-init evaluation, pretraining with evaluation, downstream."""
  start = time.time()
  random_logs = run_mode(experiment, os.path.join(model_dir, 'random_init'),
                         'eval', params_override)
  t_random = time.time() - start
  learned_logs = run_mode(experiment, os.path.join(model_dir, 'pretrain'),
                          'train_and_eval', params_override)
  results = {
      'experiment': experiment,
      'knn_top1_random_init': random_logs.get('knn_top1'),
      'knn_top1_pretrained': learned_logs.get('knn_top1'),
      'random_init_eval': random_logs,
      'pretrained_eval': learned_logs,
      'seconds_random_init_eval': round(t_random, 1),
  }
  if downstream:
    t_downstream = time.time()
    results['downstream'] = run_downstream(
        experiment, os.path.join(model_dir, 'pretrain'), model_dir,
        downstream_params_override)
    results['seconds_downstream'] = round(time.time() - t_downstream, 1)
  if localization or tracking:
    cvrl_dir = os.path.join(model_dir, 'cvrl_pretrain')
    run_mode('cvrl_pretrain_demo', cvrl_dir, 'train')
    for flag, key, fn in ((localization, 'localization', run_localization),
                          (tracking, 'tracking', run_tracking)):
      if flag:
        t_start = time.time()
        results[key] = fn(os.path.join(model_dir, 'pretrain'), cvrl_dir,
                          model_dir)
        results[f'seconds_{key}'] = round(time.time() - t_start, 1)
  results['seconds_total'] = round(time.time() - start, 1)
  tf.io.gfile.makedirs(model_dir)
  with tf.io.gfile.GFile(os.path.join(model_dir, 'demo_results.json'),
                         'w') as f:
    json.dump(results, f, indent=2)
  return results


def format_results(results: Dict[str, Any]) -> str:
  def pct(x: Optional[float]) -> str:
    return 'n/a' if x is None else f'{100 * x:.1f}%'
  lines = [
      f'== {results["experiment"]}: kNN top-1 of global features '
      '(validation videos vs. training videos) ==',
      f'  randomly initialized network : '
      f'{pct(results["knn_top1_random_init"])}',
      f'  pretrained network           : '
      f'{pct(results["knn_top1_pretrained"])}',
  ]
  downstream = results.get('downstream')
  if downstream:
    lines.append('== Downstream recognition on the demo classes (per video, '
                 '10 clips x 3 crops) and retrieval ==')
    lines.append(f'  {"":34s} {"pretrained":>11s} {"random init":>12s}')
    for experiment in RECOGNITION_EXPERIMENTS:
      for key, label in (('top_1_accuracy', 'top-1'),
                         ('top_5_accuracy', 'top-5')):
        row = [downstream[experiment][i].get(key) for i in INITS]
        lines.append(f'  {experiment + " " + label:34s} {pct(row[0]):>11s} '
                     f'{pct(row[1]):>12s}')
    for k in (1, 5, 10, 20):
      row = [downstream['retrieval'][i].get(f'R@{k}') for i in INITS]
      lines.append(f'  {"retrieval R@" + str(k):34s} {pct(row[0]):>11s} '
                   f'{pct(row[1]):>12s}')
  localization = results.get('localization')
  if localization:
    lines.append(f'== {LOCALIZATION_EXPERIMENT}: frame-mAP@0.5, ground-truth '
                 'boxes ==')
    for init in LOCALIZATION_INITS:
      lines.append(f'  {init:34s} {pct(localization[init].get("frame_mAP"))}')
  tracking = results.get('tracking')
  if tracking:
    lines.append(f'== {TRACKING_EXPERIMENT}: OTB-style one-pass evaluation ==')
    for init in THREE_INITS:
      logs = tracking[init]
      lines.append(f'  {init:34s} precision@20px '
                   f'{pct(logs.get("precision_score"))}  success AUC '
                   f'{pct(logs.get("success_score"))}')
  lines.append(f'  wall time: {results["seconds_total"]:.0f} s')
  return '\n'.join(lines)


def define_flags():
  """Flags of the demo command (defined only when run as a program)."""
  flags.DEFINE_string('experiment', 'const_cl_pretrain_demo',
                      'Registered demo experiment.')
  flags.DEFINE_string('model_dir', os.path.join('runs', 'const_cl_demo'),
                      'Where checkpoints, summaries and demo_results.json go.')
  flags.DEFINE_string('params_override', '',
                      'Model Garden params override of the pretraining '
                      'experiment (yaml or a.b=c).')
  flags.DEFINE_bool('downstream', True,
                    'Also run linear probe, fine-tuning and retrieval from '
                    'the pretrained and from a random network.')
  flags.DEFINE_string('downstream_params_override', '',
                      'Params override of the recognition experiments.')
  flags.DEFINE_bool('localization', False,
                    'Also pretrain CVRL and compare action localization from '
                    'ConST-CL, CVRL and random initialization.')
  flags.DEFINE_bool('tracking', False,
                    'Also pretrain CVRL and compare SiamFC tracking from '
                    'ConST-CL, CVRL and random initialization.')
  flags.DEFINE_bool('local', False,
                    'Run the local-task study instead (tools/local_demo.py): '
                    'frozen and fine-tuned localization and tracking from '
                    'ConST-CL, CVRL and random init, over --seeds seeds.')
  flags.DEFINE_integer('seeds', 3, 'With --local: pretraining seeds.',
                       lower_bound=1)
  flags.DEFINE_list('context_lengths', ['3'],
                    'With --local: ConST-CL context lengths to pretrain '
                    '(0 = MLP head; odd, at most 4 on the demo); the first '
                    'is also fine-tuned, the others only evaluated frozen.')
  flags.register_validator(
      'context_lengths',
      lambda values: all(v.strip().isdigit() for v in values),
      message='--context_lengths must be non-negative integers, e.g. 0,1,3.')
  flags.DEFINE_string('localization_params_override', '',
                      'With --local: params override of every localization '
                      'run.')
  flags.DEFINE_string('tracking_params_override', '',
                      'With --local: params override of every tracking run.')


def main(_):
  if FLAGS.local:
    results = local_demo.run_local(
        FLAGS.model_dir, run_mode, FLAGS.seeds,
        [int(c) for c in FLAGS.context_lengths], FLAGS.params_override,
        FLAGS.localization_params_override, FLAGS.tracking_params_override,
        diagnose=representation_diagnosis.diagnose_experiment)
    logging.info('Local results: %s', results)
    print(local_demo.format_local(results), flush=True)
    print(local_demo.format_diagnosis(results), flush=True)
    return
  results = run_demo(FLAGS.experiment, FLAGS.model_dir, FLAGS.params_override,
                     FLAGS.downstream, FLAGS.downstream_params_override,
                     FLAGS.localization, FLAGS.tracking)
  logging.info('Demo results: %s', results)
  print(format_results(results), flush=True)


if __name__ == '__main__':
  define_flags()
  errors.run_app(main)
