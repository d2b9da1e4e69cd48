"""ConST-CL training driver (TensorFlow Model Garden flags).

  python train.py --experiment=const_cl_pretrain_demo --mode=train_and_eval \
      --model_dir=/tmp/const_cl_demo

Flags: --experiment --mode (train | eval | train_and_eval | continuous_eval)
--model_dir --config_file (yaml, repeatable) --params_override (yaml string or
'a.b=c,...') --allow_config_change --debug. Runs resume from the latest
checkpoint in --model_dir; a checkpoint of a different model is refused
unless --allow_config_change.

Exit status: 0 success; 2 a user error (flag, path, config, record), with
one `ERROR: ...` line naming it (`--debug` or CONST_CL_DEBUG=1 adds the
traceback); 1 any other failure.
"""

# First: sets the CPU kernel defaults before TensorFlow loads (package doc).
import official_projects_const_cl  # pylint: disable=unused-import,g-bad-import-order
from absl import flags
from absl import logging
import gin

from official.common import flags as tfm_flags
from official.core import train_utils
from official_projects_const_cl import errors
from official_projects_const_cl import registry_imports  # pylint: disable=unused-import
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.tasks import experiment_runner

FLAGS = flags.FLAGS


def main(_):
  """Runs --mode; returns the last evaluation logs (for tests)."""
  experiment_runner.check_experiment_name(FLAGS.experiment)
  if not FLAGS.model_dir:
    raise errors.UserError(
        '--model_dir is required (checkpoints, summaries, params.yaml).')
  if not FLAGS.mode:
    raise errors.UserError('--mode is required: train | eval | '
                           'train_and_eval | continuous_eval.')
  if not gin.config_is_locked():  # main() may run twice in one process.
    gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_params)
  with errors.reraise_as_user_error(
      experiment_runner.CONFIG_ERRORS,
      'invalid --config_file / --params_override: '):
    params = train_utils.parse_configuration(FLAGS, print_return=False)
  experiment_runner.check_config(params, FLAGS.mode)  # Before any output.
  experiment_runner.check_mixed_precision_kernels(params.runtime)
  demo_data.prepare_for(params)  # The `*_demo` experiments' data, once.
  model_dir = FLAGS.model_dir
  logging.info('Experiment %s', FLAGS.experiment)
  eval_logs = experiment_runner.run(
      params, FLAGS.mode, model_dir,
      allow_config_change=FLAGS.allow_config_change)
  train_utils.save_gin_config(FLAGS.mode, model_dir)
  return eval_logs


def define_flags():
  tfm_flags.define_flags()
  flags.DEFINE_bool(
      'allow_config_change', False,
      'Resume a --model_dir checkpoint even if its params.yaml differs from '
      'this run in keys that change the model or the data shape.')


if __name__ == '__main__':
  define_flags()
  errors.run_app(main)
