"""Files of demo videos: JPEG frames, AVA-style CSVs, tracking folders.

The demo world's keyframe labels as AVA CSVs and label map (paper §4.3 /
supp. §3.2) and its objects as GOT-10k / OTB sequence folders (supp. §3.3).
"""

import os
from typing import Iterable, List, Tuple

import numpy as np

from official_projects_const_cl.dataloaders import demo_world
from official_projects_const_cl.dataloaders.conversion import tfrecord_writer


VideoStream = Iterable[Tuple[str, demo_world.DemoVideo]]


def encode_frames(video: demo_world.DemoVideo, quality: int) -> List[bytes]:
  # Full-resolution chroma: the demo frames are small and their object
  # textures are coloured; 4:2:0 would blur them (mean error 6.9 vs 4.4 / 255).
  return [tfrecord_writer.encode_jpeg(f, quality, chroma_downsampling=False)
          for f in video.frames]


def write_ava_label_map(path: str) -> str:
  """Writes the AVA-style action label map (pbtxt, ids start at 1)."""
  with open(path, 'w') as f:
    for i, name in enumerate(demo_world.ACTIONS):
      f.write(f'item {{\n  name: "{name}"\n  id: {i + 1}\n}}\n')
  return path


def write_ava_csv(videos: VideoStream, path: str,
                  keyframe_every_s: float = 1.0,
                  min_visibility: float = 0.0) -> int:
  """Writes AVA-style keyframe labels of the objects of `videos`.

  One row per object and keyframe, as in AVA v2.2:
  `video_id,timestamp,x1,y1,x2,y2,action_id,person_id` with normalized box
  corners, 1-based action ids (`write_ava_label_map`) and person_id = object
  track id. Keyframes are at t = 0, keyframe_every_s, 2 * keyframe_every_s,
  ... seconds; frame index = round(t * frame_rate), matching the
  `image/timestamp` of the records.

  Args:
    videos: (media_id, DemoVideo) pairs.
    path: output CSV path.
    keyframe_every_s: seconds between keyframes (AVA: 1).
    min_visibility: objects less visible than this at a keyframe are skipped.

  Returns:
    The number of rows written.
  """
  rows = 0
  with open(path, 'w') as f:
    for vid, video in videos:
      num_frames = video.frames.shape[0]
      step = keyframe_every_s * video.frame_rate
      for k in range(int(np.floor((num_frames - 1) / step)) + 1):
        t = int(round(k * step))
        timestamp = f'{t / video.frame_rate:g}'
        for obj in range(video.num_objects):
          if video.visibility[t, obj] < min_visibility:
            continue
          ymin, xmin, ymax, xmax = video.boxes[t, obj]
          f.write(f'{vid},{timestamp},{xmin:.3f},{ymin:.3f},{xmax:.3f},'
                  f'{ymax:.3f},{int(video.actions[t, obj]) + 1},'
                  f'{int(video.track_ids[obj])}\n')
          rows += 1
  return rows


def write_tracking_sequences(videos: VideoStream, root: str,
                             layout: str = 'otb', objects: str = 'main',
                             jpeg_quality: int = 90) -> List[str]:
  """Writes single-object tracking sequences of `videos`.

  Layouts (the ones the GOT-10k toolkit and OTB users know):
    'otb':    root/<seq>/img/0001.jpg ..., root/<seq>/groundtruth_rect.txt
              with one `x,y,w,h` per frame, 1-based pixels (OTB convention).
    'got10k': root/<seq>/00000001.jpg ..., root/<seq>/groundtruth.txt with
              `x,y,w,h` in 0-based pixels, absence.label (1 = invisible),
              cover.label (visible fraction in eighths, 0-8), and
              root/list.txt naming the sequences; `root` is a subset folder
              such as `GOT-10k/train`.

  Args:
    videos: (media_id, DemoVideo) pairs.
    root: output folder.
    layout: 'otb' or 'got10k'.
    objects: 'main' (one sequence per video, the class object) or 'all' (one
      per object; sequence names get an `_obj<k>` suffix).
    jpeg_quality: JPEG quality of the frames.

  Returns:
    The sequence names, in writing order.
  """
  if layout not in ('otb', 'got10k'):
    raise ValueError(f"layout must be 'otb' or 'got10k', got {layout!r}.")
  if objects not in ('main', 'all'):
    raise ValueError(f"objects must be 'main' or 'all', got {objects!r}.")
  os.makedirs(root, exist_ok=True)
  names = []
  for vid, video in videos:
    num_frames, height, width = video.frames.shape[:3]
    jpegs = encode_frames(video, jpeg_quality)
    ks = [0] if objects == 'main' else range(video.num_objects)
    for k in ks:
      name = vid if objects == 'main' else f'{vid}_obj{k}'
      seq_dir = os.path.join(root, name)
      img_dir = os.path.join(seq_dir, 'img') if layout == 'otb' else seq_dir
      os.makedirs(img_dir, exist_ok=True)
      for t, jpeg in enumerate(jpegs):
        fname = f'{t + 1:04d}.jpg' if layout == 'otb' else f'{t + 1:08d}.jpg'
        with open(os.path.join(img_dir, fname), 'wb') as f:
          f.write(jpeg)
      px = video.boxes[:, k] * np.array([height, width, height, width])
      offset = 1 if layout == 'otb' else 0
      lines = [f'{x0 + offset:g},{y0 + offset:g},{x1 - x0:g},{y1 - y0:g}'
               for y0, x0, y1, x1 in px.tolist()]
      gt_name = 'groundtruth_rect.txt' if layout == 'otb' else (
          'groundtruth.txt')
      with open(os.path.join(seq_dir, gt_name), 'w') as f:
        f.write('\n'.join(lines) + '\n')
      if layout == 'got10k':
        vis = video.visibility[:, k]
        with open(os.path.join(seq_dir, 'absence.label'), 'w') as f:
          f.write('\n'.join(str(int(v <= 0)) for v in vis) + '\n')
        with open(os.path.join(seq_dir, 'cover.label'), 'w') as f:
          f.write('\n'.join(str(int(round(v * 8))) for v in vis) + '\n')
      names.append(name)
  if layout == 'got10k':
    with open(os.path.join(root, 'list.txt'), 'w') as f:
      f.write('\n'.join(names) + '\n')
  return names
