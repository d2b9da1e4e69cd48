"""The flags of the tools that load a pretraining experiment's checkpoint."""

from absl import flags


def define_pretrained_model_flags(
    fv: flags.FlagValues, checkpoint_default=None,
    checkpoint_help: str = 'Pretraining model_dir (its latest checkpoint) or '
    'checkpoint prefix.', experiment_help: str = '') -> None:
  """--experiment, --config_file, --params_override and --checkpoint.

  Args:
    fv: the tool's flag values.
    checkpoint_default: None makes --checkpoint required.
    checkpoint_help: what --checkpoint means for the tool.
    experiment_help: appended to --experiment's help.
  """
  flags.DEFINE_string('experiment', 'const_cl_pretrain_demo',
                      'The registered pretraining experiment of the '
                      'checkpoint' + (f' ({experiment_help})'
                                      if experiment_help else '') + '.',
                      flag_values=fv)
  flags.DEFINE_multi_string('config_file', [], 'Yaml overrides of the '
                            'experiment, in order (as train.py).',
                            flag_values=fv)
  flags.DEFINE_string('params_override', '', 'Model Garden params override '
                      '(yaml or a.b=c), applied last.', flag_values=fv)
  flags.DEFINE_string('checkpoint', checkpoint_default, checkpoint_help,
                      required=checkpoint_default is None, flag_values=fv)
