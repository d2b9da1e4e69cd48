"""Command line: generate the demo dataset (records, AVA CSVs, tracking).

  python -m official_projects_const_cl.tools.demo_data --output_dir=...

The generator is `dataloaders/demo_data.py`.
"""

import json
from typing import Dict, List, Optional

from absl import flags
from absl import logging

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.dataloaders import demo_world


def define_flags(fv: flags.FlagValues) -> None:
  """Generate the ConST-CL demo video dataset (TFRecords)."""
  flags.DEFINE_string('output_dir', None, 'Where the dataset goes.',
                      required=True, flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'World seed.', flag_values=fv)
  flags.DEFINE_integer('num_train', demo_data.DEFAULT_NUM_TRAIN,
                       'Training videos.', flag_values=fv)
  flags.DEFINE_integer('num_val', demo_data.DEFAULT_NUM_VAL,
                       'Validation videos.', flag_values=fv)
  flags.DEFINE_integer('num_shards', demo_data.DEFAULT_NUM_SHARDS,
                       'Shards per split.', flag_values=fv)
  flags.DEFINE_integer('num_classes', None, 'Video classes.', flag_values=fv)
  flags.DEFINE_integer('num_frames', None, 'Frames per video.',
                       flag_values=fv)
  flags.DEFINE_integer('image_size', None, 'Frame height and width in '
                       'pixels.', flag_values=fv)
  flags.DEFINE_integer('max_objects', None, 'Objects per video at most.',
                       flag_values=fv)
  flags.DEFINE_bool('no_ava', False, 'Do not write the AVA-style CSVs.',
                    flag_values=fv)
  flags.DEFINE_bool('write_tracking', False, 'Also write GOT-10k / OTB-style '
                    'tracking folders.', flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'Replace an existing demo dataset.',
                    flag_values=fv)


def cli(argv: Optional[List[str]] = None) -> Dict[str, object]:
  """Command line: generate the demo dataset."""
  args = errors.parse_flags(define_flags, argv or [], 'demo_data')
  overrides = {}
  for name in ('num_classes', 'num_frames', 'max_objects'):
    if getattr(args, name) is not None:
      overrides[name] = getattr(args, name)
  if args.image_size is not None:
    overrides.update(height=args.image_size, width=args.image_size)
  logging.set_verbosity(logging.INFO)
  paths = demo_data.generate_demo_dataset(
      args.output_dir, seed=args.seed, num_train=args.num_train,
      num_val=args.num_val, num_shards=args.num_shards,
      world_config=demo_world.DemoWorldConfig(**overrides),
      write_ava=not args.no_ava, write_tracking=args.write_tracking,
      overwrite=args.overwrite)
  print(json.dumps(paths, indent=2))
  return paths


def main(argv: Optional[List[str]] = None) -> None:
  """Console-script entry point: `cli` with the exit statuses of errors.py.

  Bad sizes or an output folder that is not a demo dataset are user errors
  (exit status 2, one message).
  """
  errors.run_main(cli, argv, user_errors=(ValueError,))


if __name__ == '__main__':
  main()
