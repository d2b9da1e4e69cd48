"""The README's main job: demo pretraining + kNN evaluation, learned vs random.

  python -m official_projects_const_cl.tools.run_demo --model_dir=runs/demo

1. generates the demo world on first use (tools/demo_data.py);
2. evaluates the randomly initialized network (kNN top-1 of global features,
   validation videos against training videos);
3. pretrains `--experiment` (default const_cl_pretrain_demo) with
   `--mode=train_and_eval`, exactly as `train.py` would;
4. prints both kNN top-1 numbers side by side and writes them to
   `<model_dir>/demo_results.json`.

Re-running with the same --model_dir resumes training from its checkpoint.
"""

import json
import os
import time
from typing import Any, Dict, Optional

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from official.core import exp_factory
from official.modeling import hyperparams
from official_projects_const_cl import registry_imports  # pylint: disable=unused-import
from official_projects_const_cl.tasks import experiment_runner

FLAGS = flags.FLAGS


def run_mode(experiment: str, model_dir: str, mode: str,
             params_override: str = '') -> Dict[str, Any]:
  """Runs one Model Garden mode and returns its final eval logs."""
  params = exp_factory.get_exp_config(experiment)
  if params_override:
    params = hyperparams.override_params_dict(params, params_override,
                                              is_strict=True)
  params.validate()
  params.lock()
  eval_logs = experiment_runner.run(params, mode, model_dir)
  return {k: float(v) for k, v in (eval_logs or {}).items()
          if tf.rank(v) == 0}


def run_demo(experiment: str, model_dir: str,
             params_override: str = '') -> Dict[str, Any]:
  """Random-init evaluation, then pretraining with evaluation."""
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
      'seconds_total': round(time.time() - start, 1),
  }
  tf.io.gfile.makedirs(model_dir)
  with tf.io.gfile.GFile(os.path.join(model_dir, 'demo_results.json'),
                         'w') as f:
    json.dump(results, f, indent=2)
  return results


def format_results(results: Dict[str, Any]) -> str:
  def pct(x: Optional[float]) -> str:
    return 'n/a' if x is None else f'{100 * x:.1f}%'
  return '\n'.join([
      f'== {results["experiment"]}: kNN top-1 of global features '
      '(validation videos vs. training videos) ==',
      f'  randomly initialized network : '
      f'{pct(results["knn_top1_random_init"])}',
      f'  pretrained network           : '
      f'{pct(results["knn_top1_pretrained"])}',
      f'  wall time: {results["seconds_total"]:.0f} s',
  ])


def define_flags():
  """Flags of the demo command (defined only when run as a program)."""
  flags.DEFINE_string('experiment', 'const_cl_pretrain_demo',
                      'Registered demo experiment.')
  flags.DEFINE_string('model_dir', os.path.join('runs', 'const_cl_demo'),
                      'Where checkpoints, summaries and demo_results.json go.')
  flags.DEFINE_string('params_override', '',
                      'Model Garden params override (yaml or a.b=c).')


def main(_):
  results = run_demo(FLAGS.experiment, FLAGS.model_dir, FLAGS.params_override)
  logging.info('Demo results: %s', results)
  print(format_results(results), flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
