"""Renders the region head's attention over the context frames (Fig. 4).

  python -m official_projects_const_cl.tools.visualize_attention \
    --experiment=const_cl_pretrain_demo --checkpoint=/tmp/const_cl_demo \
    --record_index=0 --output_dir=/tmp/attention

Reads record --record_index of --input_path (default: the experiment's
validation records; for the demo experiments the demo world, generated on
first use) as the evaluation clip, and queries the head with a box on the
clip's center feature slice: --box=ymin,xmin,ymax,xmax (normalized in the
center-cropped clip) or stored box --box_index of the record (in the demo:
the object with that track). Writes `attention_layer<i>_head<j>.png` (query
frame with its box, then one heat-map overlay per context frame;
`tasks/attention_maps.py`, `evaluation/attention_plots.py`) and
`attention.json` (frames, box, the maps). Without --checkpoint the model is
randomly initialized. Exit status: 0, or 2 with one `ERROR:` line for a bad
flag, config, checkpoint or record (`errors.py`).
"""

import json
import os
from typing import Any, Dict, List, Optional

from absl import flags
from absl import logging

from official_projects_const_cl import errors
from official_projects_const_cl import registry_imports  # pylint: disable=unused-import
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.evaluation import attention_plots
from official_projects_const_cl.tasks import attention_maps
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import pretrained_model
from official_projects_const_cl.tools import model_flags

SUMMARY_FILE = 'attention.json'


def define_flags(fv: flags.FlagValues) -> None:
  """Render the region head's attention over the context frames as PNGs."""
  model_flags.define_pretrained_model_flags(
      fv, checkpoint_default='',
      checkpoint_help='Pretraining model_dir or checkpoint prefix; empty = '
      'random initialization.',
      experiment_help='a transformer region head')
  flags.DEFINE_string('input_path', '', 'Clip TFRecords (file or glob); '
                      "default: the experiment's validation records.",
                      flag_values=fv)
  flags.DEFINE_integer('record_index', 0, 'Which record (counted across the '
                       'sorted files).', lower_bound=0, flag_values=fv)
  flags.DEFINE_list('box', None, 'Query box ymin,xmin,ymax,xmax, normalized '
                    'in the center-cropped clip; default: stored box '
                    '--box_index.', flag_values=fv)
  flags.DEFINE_integer('box_index', 0, 'Stored box of the record on the '
                       'query frame (demo: the object of this track).',
                       lower_bound=0, flag_values=fv)
  flags.DEFINE_integer('zoom', 4, 'Enlargement of each frame.',
                       lower_bound=1, flag_values=fv)
  flags.DEFINE_string('output_dir', None, 'Where to write the PNGs.',
                      required=True, flag_values=fv)


def visualize(experiment: str, checkpoint: str, output_dir: str,
              input_path: str = '', record_index: int = 0,
              box: Optional[List[float]] = None, box_index: int = 0,
              zoom: int = 4, params_override: str = '',
              config_files: List[str] = ()) -> Dict[str, Any]:
  """Computes and writes the attention pictures; returns the summary."""
  params = experiment_runner.experiment_config(
      experiment, params_override, mode='eval', config_files=config_files)
  if not input_path:
    demo_data.prepare_data(params.task.validation_data)
    input_path = params.task.validation_data.input_path
  model, report = pretrained_model.build_pretrained_model(
      params, checkpoint, with_heads=True)
  if report is None:
    logging.warning('No --checkpoint: the model is randomly initialized.')
  clip = attention_maps.read_clip(params, input_path, record_index,
                                  stored_boxes=box is None)
  result = attention_maps.attention_maps(model, clip, box, box_index)
  paths = attention_plots.write_attention_pngs(
      clip.images, result.query_frame, result.context_frames, result.box,
      result.maps, output_dir, zoom)
  summary = {
      'experiment': experiment,
      'checkpoint': report.checkpoint if report else None,
      'record': clip.source,
      'video_frames': [int(f) for f in clip.frame_index],
      'query_frame': result.query_frame,
      'query_slice': result.query_slice,
      'box': [float(v) for v in result.box],
      'context_frames': [int(f) for f in result.context_frames],
      'context_slices': [int(s) for s in result.context_slices],
      'maps_shape': list(result.maps.shape),
      'maps': result.maps.round(6).tolist(),
      'pngs': [os.path.basename(p) for p in paths],
  }
  with open(os.path.join(output_dir, SUMMARY_FILE), 'w') as f:
    json.dump(summary, f, indent=1)
  return summary


def _box(values: Optional[List[str]]) -> Optional[List[float]]:
  if values is None:
    return None
  try:
    box = [float(v) for v in values]
  except ValueError:
    box = []
  if len(box) != 4:
    errors.usage_error(f'--box must be four numbers ymin,xmin,ymax,xmax, got '
                       f'{",".join(values)!r}.')
  return box


def cli(argv: Optional[List[str]] = None) -> int:
  args = errors.parse_flags(define_flags, argv or [], 'visualize_attention')
  summary = visualize(args.experiment, args.checkpoint, args.output_dir,
                      input_path=args.input_path,
                      record_index=args.record_index, box=_box(args.box),
                      box_index=args.box_index, zoom=args.zoom,
                      params_override=args.params_override,
                      config_files=args.config_file)
  layers, heads = summary['maps_shape'][:2]
  print(f'{summary["record"]}: query box {summary["box"]} on clip frame '
        f'{summary["query_frame"]}, context frames '
        f'{summary["context_frames"]}; wrote {layers * heads} PNGs '
        f'({layers} layers x {heads} heads) and {SUMMARY_FILE} to '
        f'{args.output_dir}.', flush=True)
  return errors.EXIT_OK


def main(argv: Optional[List[str]] = None) -> None:
  """Console-script entry point (exit status 0 / 1 / 2)."""
  errors.run_main(cli, argv)


if __name__ == '__main__':
  main()
