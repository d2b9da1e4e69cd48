"""Exports a pretrained backbone as a SavedModel with a serving signature.

  python -m official_projects_const_cl.tools.export_saved_model \
    --experiment=const_cl_pretrain_demo --checkpoint=/tmp/const_cl_demo \
    --export_dir=/tmp/const_cl_demo/saved_model --input_type=uint8

The backbone of the pretraining experiment is restored from --checkpoint (a
model_dir or checkpoint prefix, checked variable by variable) and written
with Model Garden's export library (`modeling/export_module.py`). The
`serving_default` signature takes `clips` `[B, T, H, W, 3]` at the
experiment's clip shape (`task.train_data.feature_shape`) of --input_type,
uint8 0..255 or float32 0..1 (`serving_uint8` / `serving_float32`: uint8 /
float32 clips), and returns `pooled_res5_g`, `pooled_res5_r` `[B, C]` and the
endpoint maps `res2` ... `res5_r` `[B, T', H', W', C]`. Exit status: 0, or
2 with one `ERROR:` line for a bad flag, config or checkpoint (`errors.py`).
"""

from typing import List, Optional, Tuple

from absl import flags
from absl import logging
import tensorflow as tf

from official_projects_const_cl import errors
from official_projects_const_cl import registry_imports  # pylint: disable=unused-import
from official_projects_const_cl.modeling import export_module
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import pretrained_model
from official_projects_const_cl.tools import model_flags


def define_flags(fv: flags.FlagValues) -> None:
  """Export a pretrained backbone as a SavedModel (clips -> features)."""
  model_flags.define_pretrained_model_flags(fv)
  flags.DEFINE_string('export_dir', None, 'Where to write the SavedModel.',
                      required=True, flag_values=fv)
  flags.DEFINE_enum('input_type', 'uint8', list(export_module.INPUT_TYPES),
                    'Clip dtype of the signature: uint8 (0..255) or float32 '
                    '(0..1, as the input pipeline feeds the model).',
                    flag_values=fv)
  flags.DEFINE_integer('batch_size', None, 'Fixed batch size of the '
                       'signature; unset = any batch size.', lower_bound=1,
                       flag_values=fv)


def export_saved_model(experiment: str, checkpoint: str, export_dir: str,
                       input_type: str = 'uint8',
                       batch_size: Optional[int] = None,
                       params_override: str = '',
                       config_files: List[str] = ()
                       ) -> Tuple[str, tf.TensorSpec]:
  """Restores the experiment's backbone and exports it.

  Returns:
    (the SavedModel directory, the signature's input spec).
  """
  params = experiment_runner.experiment_config(
      experiment, params_override, mode='eval', config_files=config_files)
  model, report = pretrained_model.build_pretrained_model(params, checkpoint)
  module = export_module.BackboneExportModule(
      params, model.backbone, pretrained_model.clip_shape(params),
      input_type=input_type, batch_size=batch_size)
  path = export_module.export(module, export_dir)
  logging.info('Exported %s (%s) to %s', experiment, report.summary(), path)
  return path, module.input_signature


def cli(argv: Optional[List[str]] = None) -> int:
  args = errors.parse_flags(define_flags, argv or [], 'export_saved_model')
  path, spec = export_saved_model(args.experiment, args.checkpoint, args.export_dir,
                            input_type=args.input_type,
                            batch_size=args.batch_size,
                            params_override=args.params_override,
                            config_files=args.config_file)
  shape = ', '.join('B' if s is None else str(s) for s in spec.shape)
  print(f'Wrote a SavedModel to {path}: signature serving_default takes '
        f'clips [{shape}] {spec.dtype.name} (serving_uint8 / '
        'serving_float32: uint8 / float32 clips) and returns the pooled res5 '
        'features and the endpoint maps.', flush=True)
  return errors.EXIT_OK


def main(argv: Optional[List[str]] = None) -> None:
  """Console-script entry point (exit status 0 / 1 / 2)."""
  errors.run_main(cli, argv)


if __name__ == '__main__':
  main()
