"""Heat-map overlays of the region head's attention (paper Fig. 4).

One picture per layer and head: the query frame with the query box (green),
then each context frame with that head's attention over its H' x W' voxels,
upsampled bilinearly to the frame and blended as a 'jet' heat map. The maps
of one picture share one color scale (0 to the largest probability over its
context frames), so the panels compare across frames. Pure NumPy / PIL /
matplotlib colormaps; no TensorFlow.
"""

import os
from typing import List

import numpy as np

BOX_COLOR = (0, 255, 0)
HEAT_ALPHA = 0.5


def _to_uint8(image: np.ndarray) -> np.ndarray:
  return np.clip(np.round(np.asarray(image, np.float32) * 255), 0,
                 255).astype(np.uint8)


def upsample(heat: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear [h, w] -> [height, width] (float32)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = Image.fromarray(np.asarray(heat, np.float32), mode='F')
  return np.asarray(image.resize((width, height), Image.BILINEAR), np.float32)


def overlay(frame: np.ndarray, heat: np.ndarray, scale: float) -> np.ndarray:
  """A frame [H, W, 3] in [0, 1] blended with `heat` [h, w] / `scale`.

  Returns:
    uint8 [H, W, 3].
  """
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  height, width = frame.shape[:2]
  level = np.clip(upsample(heat, height, width) / max(scale, 1e-12), 0, 1)
  colors = colormaps['jet'](level)[..., :3]
  blended = (1 - HEAT_ALPHA) * np.asarray(frame, np.float32) + (
      HEAT_ALPHA * colors)
  return _to_uint8(blended)


def draw_box(image: np.ndarray, box: np.ndarray, width: int = 1
             ) -> np.ndarray:
  """uint8 [H, W, 3] with the normalized (ymin, xmin, ymax, xmax) outlined."""
  out = np.array(image)
  height, frame_width = out.shape[:2]
  y0, x0, y1, x1 = (int(round(v * s)) for v, s in zip(
      box, (height, frame_width, height, frame_width)))
  y0, y1 = np.clip([y0, y1 - 1], 0, height - 1)
  x0, x1 = np.clip([x0, x1 - 1], 0, frame_width - 1)
  out[y0:y0 + width, x0:x1 + 1] = BOX_COLOR
  out[max(y1 - width + 1, 0):y1 + 1, x0:x1 + 1] = BOX_COLOR
  out[y0:y1 + 1, x0:x0 + width] = BOX_COLOR
  out[y0:y1 + 1, max(x1 - width + 1, 0):x1 + 1] = BOX_COLOR
  return out


def attention_panel(frames: np.ndarray, query_frame: int,
                    context_frames: np.ndarray, box: np.ndarray,
                    maps: np.ndarray, zoom: int = 4) -> np.ndarray:
  """One picture: the query frame with its box, then the context overlays.

  Args:
    frames: float32 [T, H, W, 3] in [0, 1], the clip.
    query_frame: clip frame of the query box.
    context_frames: int [L], the clip frame shown for each context slice.
    box: the query box, normalized (ymin, xmin, ymax, xmax).
    maps: [L, h, w] attention probabilities of one head.
    zoom: integer enlargement of each frame (nearest neighbour).

  Returns:
    uint8 [H * zoom, (L + 1) * W * zoom, 3].
  """
  zoom_frame = lambda f: np.repeat(np.repeat(f, zoom, axis=0), zoom, axis=1)
  scale = float(np.max(maps))
  panels = [draw_box(zoom_frame(_to_uint8(frames[query_frame])), box,
                     width=max(1, zoom // 2))]
  for frame, heat in zip(context_frames, maps):
    panels.append(overlay(zoom_frame(frames[int(frame)]), heat, scale))
  return np.concatenate(panels, axis=1)


def write_attention_pngs(frames: np.ndarray, query_frame: int,
                         context_frames: np.ndarray, box: np.ndarray,
                         maps: np.ndarray, out_dir: str,
                         zoom: int = 4) -> List[str]:
  """Writes `attention_layer<i>_head<j>.png` for every layer and head.

  Args:
    frames, query_frame, context_frames, box, zoom: see `attention_panel`.
    maps: [layers, heads, L, h, w].
    out_dir: output folder (created).

  Returns:
    The paths, layer-major.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  for layer in range(maps.shape[0]):
    for head in range(maps.shape[1]):
      picture = attention_panel(frames, query_frame, context_frames, box,
                                maps[layer, head], zoom)
      path = os.path.join(out_dir,
                          f'attention_layer{layer}_head{head}.png')
      Image.fromarray(picture).save(path)
      paths.append(path)
  return paths
