"""ConST-CL training driver (TensorFlow Model Garden flags).

  python train.py --experiment=const_cl_pretrain_demo --mode=train_and_eval \
      --model_dir=/tmp/const_cl_demo

Flags: --experiment --mode (train | eval | train_and_eval | continuous_eval)
--model_dir --config_file (yaml, repeatable) --params_override (yaml string or
'a.b=c,...'). Runs resume from the latest checkpoint in --model_dir.
"""

import sys

# First: sets the CPU kernel defaults before TensorFlow loads (package doc).
import official_projects_const_cl  # pylint: disable=unused-import,g-bad-import-order
from absl import app
from absl import flags
from absl import logging
import gin

from official.common import flags as tfm_flags
from official.core import exp_factory
from official.core import train_utils
from official_projects_const_cl import registry_imports
from official_projects_const_cl.tasks import experiment_runner

FLAGS = flags.FLAGS


def _check_experiment(name):
  """Exits with the list of registered experiments on a bad --experiment."""
  # pylint: disable=protected-access
  known = sorted(exp_factory._REGISTERED_CONFIGS)
  if name in known:
    return
  ours = registry_imports.registered_experiments()
  what = 'missing' if not name else f'unknown: {name!r}'
  sys.exit(f'--experiment is {what}. Registered ConST-CL experiments:\n  ' +
           '\n  '.join(ours) +
           f'\n({len(known) - len(ours)} Model Garden experiments are also '
           'registered.)')


def main(_):
  _check_experiment(FLAGS.experiment)
  if not FLAGS.model_dir:
    sys.exit('--model_dir is required (checkpoints, summaries, params.yaml).')
  if not FLAGS.mode:
    sys.exit('--mode is required: train | eval | train_and_eval | '
             'continuous_eval.')
  if not gin.config_is_locked():  # main() may run twice in one process.
    gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_params)
  params = train_utils.parse_configuration(FLAGS)
  model_dir = FLAGS.model_dir
  logging.info('Experiment %s', FLAGS.experiment)
  eval_logs = experiment_runner.run(params, FLAGS.mode, model_dir)
  train_utils.save_gin_config(FLAGS.mode, model_dir)
  return eval_logs


def define_flags():
  tfm_flags.define_flags()


if __name__ == '__main__':
  define_flags()
  app.run(main)
