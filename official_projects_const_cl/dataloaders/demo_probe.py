"""Held-out demo clips with every object's identity, motion and box.

The data of the decodability diagnosis (issue 11,
`tasks/representation_diagnosis.py`): videos of their own split ('probe',
never in the training or validation records) rendered by the demo world,
one clip per video from its middle, and for each object of the clip its
per-frame boxes, actions and visibility and its shape and texture. Pure
numpy; deterministic given the seed.
"""

from typing import Dict, Optional

import numpy as np

from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.dataloaders import demo_world

SPLIT = 'probe'


def probe_clips(num_videos: int, num_frames: int, stride: int,
                seed: int = 0,
                world_config: Optional[demo_world.DemoWorldConfig] = None
                ) -> Dict[str, np.ndarray]:
  """One clip from the middle of each of `num_videos` probe videos.

  Args:
    num_videos: how many videos (classes balanced to within one).
    num_frames: frames per clip.
    stride: temporal stride of the clip.
    seed: dataset seed (the demo's is 0).
    world_config: the world; default `DemoWorldConfig()` (the demo's).

  Returns:
    {'frames': uint8 [V, T, H, W, 3], 'boxes': float32 [V, T, K, 4]
     normalized [ymin, xmin, ymax, xmax], 'actions': int32 [V, T, K]
     (`demo_world.ACTIONS`), 'visibility': float32 [V, T, K], 'shapes' and
     'textures': int32 [V, K] (indices into `demo_world.SHAPES` /
     `TEXTURES`), 'is_main': bool [V, K], 'valid': bool [V, K] (K is the
     world's `max_objects`; videos with fewer objects are padded),
     'class_id': int32 [V], 'frame_index': int32 [T], the clip's frames in
     the video}.

  Raises:
    ValueError: the clip does not fit in the world's videos.
  """
  cfg = world_config or demo_world.DemoWorldConfig()
  span = (num_frames - 1) * stride + 1
  if num_videos < 1 or num_frames < 1 or stride < 1:
    raise ValueError('num_videos, num_frames and stride must be >= 1, got '
                     f'{num_videos}, {num_frames}, {stride}.')
  if span > cfg.num_frames:
    raise ValueError(f'A clip of {num_frames} frames at stride {stride} spans '
                     f'{span} frames; the demo videos have {cfg.num_frames}.')
  start = (cfg.num_frames - span) // 2
  index = start + stride * np.arange(num_frames)
  k = cfg.max_objects
  out = {
      'frames': np.zeros((num_videos, num_frames, cfg.height, cfg.width, 3),
                         np.uint8),
      'boxes': np.zeros((num_videos, num_frames, k, 4), np.float32),
      'actions': np.zeros((num_videos, num_frames, k), np.int32),
      'visibility': np.zeros((num_videos, num_frames, k), np.float32),
      'shapes': np.zeros((num_videos, k), np.int32),
      'textures': np.zeros((num_videos, k), np.int32),
      'is_main': np.zeros((num_videos, k), bool),
      'valid': np.zeros((num_videos, k), bool),
      'class_id': np.zeros((num_videos,), np.int32),
      'frame_index': index.astype(np.int32),
  }
  videos = demo_data.iter_demo_videos(seed, SPLIT, num_videos, cfg)
  for v, (_, video) in enumerate(videos):
    n = video.num_objects
    out['frames'][v] = video.frames[index]
    out['boxes'][v, :, :n] = video.boxes[index]
    out['actions'][v, :, :n] = video.actions[index]
    out['visibility'][v, :, :n] = video.visibility[index]
    out['shapes'][v, :n] = [demo_world.SHAPES.index(s) for s in video.shapes]
    out['textures'][v, :n] = [demo_world.TEXTURES.index(t)
                              for t in video.textures]
    out['is_main'][v, 0] = True
    out['valid'][v, :n] = True
    out['class_id'][v] = video.class_id
  return out
