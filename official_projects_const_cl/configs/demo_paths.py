"""Where the demo world's dataset lives and its sizes: plain constants.

The configs of the `*_demo` experiments point their data at these paths;
the generator (`dataloaders/demo_data.py`) writes there, and the entry points
make the dataset on first use (`demo_data.prepare_for`). Imports nothing of
the package.
"""

import os

# Bump whenever rendering or the record layout changes, so cached demo
# datasets of an older version are regenerated instead of silently reused.
DEMO_DATA_VERSION = 2
DEFAULT_NUM_TRAIN = 384
DEFAULT_NUM_VAL = 96
DEFAULT_NUM_SHARDS = 4
# The demo world's default classes and per-frame actions
# (`demo_world.DemoWorldConfig().num_classes`, `len(demo_world.ACTIONS)`).
NUM_CLASSES = 8
NUM_ACTIONS = 6
# Sub-folders of the demo dataset.
AVA_RECORDS_DIR = 'ava_records'
TRACKING_DIR = 'tracking'


def default_demo_dir(seed: int = 0) -> str:
  """Where demo experiments keep the demo dataset by default.

  `$CONST_CL_DEMO_DATA_DIR` if set, else `~/.cache/const_cl_demo`, plus a
  `v<version>-seed<seed>` folder, so a new format version never meets an old
  cache.
  """
  root = os.environ.get('CONST_CL_DEMO_DATA_DIR') or os.path.join(
      os.path.expanduser('~'), '.cache', 'const_cl_demo')
  return os.path.join(root, f'v{DEMO_DATA_VERSION}-seed{seed}')
