"""Command line: generate the demo world's dataset (records, AVA CSVs, tracking).

  python -m official_projects_const_cl.tools.demo_data --output_dir=...

The generator is `dataloaders/demo_data.py`.
"""

import argparse
import json
from typing import Dict, List, Optional

from absl import logging

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.dataloaders import demo_world


def cli(argv: Optional[List[str]] = None) -> Dict[str, object]:
  """Command line: generate the demo dataset."""
  parser = argparse.ArgumentParser(
      description='Generate the ConST-CL demo video dataset (TFRecords).')
  parser.add_argument('--output_dir', required=True)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--num_train', type=int, default=demo_data.DEFAULT_NUM_TRAIN)
  parser.add_argument('--num_val', type=int, default=demo_data.DEFAULT_NUM_VAL)
  parser.add_argument('--num_shards', type=int, default=demo_data.DEFAULT_NUM_SHARDS)
  parser.add_argument('--num_classes', type=int, default=None)
  parser.add_argument('--num_frames', type=int, default=None)
  parser.add_argument('--image_size', type=int, default=None,
                      help='Frame height and width in pixels.')
  parser.add_argument('--max_objects', type=int, default=None)
  parser.add_argument('--no_ava', action='store_true',
                      help='Do not write the AVA-style CSVs.')
  parser.add_argument('--write_tracking', action='store_true',
                      help='Also write GOT-10k / OTB-style tracking folders.')
  parser.add_argument('--overwrite', action='store_true')
  args = parser.parse_args(argv)
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
