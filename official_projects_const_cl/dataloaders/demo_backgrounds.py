"""Demo world backgrounds: scikit-image photographs under a moving camera.

Pure numpy. A video films a crop of one photograph (or a strip of several)
that pans and zooms smoothly (`camera_path`, `sample_background`).
"""

import functools
from typing import Any, List, Tuple

import numpy as np

# Photographs bundled with scikit-image (no download needed).
BACKGROUND_PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'camera',
                     'coins', 'hubble_deep_field', 'immunohistochemistry',
                     'moon', 'page', 'text', 'clock', 'brick', 'grass',
                     'gravel', 'retina', 'cell')


@functools.lru_cache(maxsize=None)
def _photo_full(name: str) -> np.ndarray:
  import skimage.data  # pylint: disable=g-import-not-at-top
  try:
    image = getattr(skimage.data, name)()
  except (AttributeError, ModuleNotFoundError, OSError) as e:
    raise ValueError(f'Background photo skimage.data.{name} is not available '
                     f'in this scikit-image install: {e}') from e
  image = np.asarray(image)
  if image.dtype == bool:
    image = image.astype(np.uint8) * 255
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=-1)
  return image[..., :3]


@functools.lru_cache(maxsize=None)
def load_background(name: str, short_side: int) -> np.ndarray:
  """A `skimage.data` photo as float32 RGB [h, w, 3] in [0, 1], cached.

  Args:
    name: function name in `skimage.data`, e.g. 'astronaut'.
    short_side: the photo is resized (anti-aliased) to this short side.
  """
  from skimage import transform  # pylint: disable=g-import-not-at-top
  image = _photo_full(name)
  h, w = image.shape[:2]
  scale = short_side / min(h, w)
  out_shape = (max(short_side, round(h * scale)),
               max(short_side, round(w * scale)))
  resized = transform.resize(image, out_shape, order=1, anti_aliasing=True,
                             preserve_range=True)
  resized = (resized / 255.0).astype(np.float32)
  resized.setflags(write=False)
  return resized


def background_strip(rng: np.random.Generator, names: List[str],
                      short_side: int) -> np.ndarray:
  """One photo, or square crops of several photos side by side [S, N*S, 3]."""
  if len(names) == 1:
    return load_background(names[0], short_side)
  tiles = []
  for name in names:
    photo = load_background(name, short_side)
    x0 = int(rng.integers(photo.shape[1] - short_side + 1))
    y0 = int(rng.integers(photo.shape[0] - short_side + 1))
    tiles.append(photo[y0:y0 + short_side, x0:x0 + short_side])
  return np.concatenate(tiles, axis=1)


def camera_path(rng: np.random.Generator, photo_hw: Tuple[int, int],
                 cfg: Any) -> np.ndarray:
  """Smooth crop windows [T, 4] (cy, cx, h, w) inside the photo.

  `cfg` is the `demo_world.DemoWorldConfig` (camera fields, frame size).
  """
  ph, pw = photo_hw
  aspect = cfg.width / cfg.height
  usable_h = min(ph, pw / aspect)
  t = np.linspace(-0.5, 0.5, cfg.num_frames) if cfg.num_frames > 1 else (
      np.zeros(1))
  zoom0 = rng.uniform(*cfg.camera_zoom)
  dzoom = rng.uniform(-cfg.camera_zoom_change, cfg.camera_zoom_change)
  win_h = np.minimum(usable_h * zoom0 * np.exp(dzoom * t), usable_h)
  win_w = win_h * aspect
  angle = rng.uniform(0, 2 * np.pi)
  if pw > 1.5 * ph:  # A strip of photos: pan along it (+-17 degrees).
    angle = rng.uniform(-0.3, 0.3) + np.pi * rng.integers(2)
  dist = rng.uniform(0.3, 1.0) * cfg.camera_pan * usable_h
  pan = dist * np.array([np.sin(angle), np.cos(angle)])
  dy, dx = pan[0] * t, pan[1] * t
  lo_y, hi_y = np.max(win_h / 2 - dy), np.min(ph - win_h / 2 - dy)
  lo_x, hi_x = np.max(win_w / 2 - dx), np.min(pw - win_w / 2 - dx)
  cy0 = rng.uniform(lo_y, hi_y) if lo_y <= hi_y else ph / 2
  cx0 = rng.uniform(lo_x, hi_x) if lo_x <= hi_x else pw / 2
  cy = np.clip(cy0 + dy, win_h / 2, ph - win_h / 2)
  cx = np.clip(cx0 + dx, win_w / 2, pw - win_w / 2)
  return np.stack([cy, cx, win_h, win_w], axis=-1).astype(np.float32)


def sample_background(photo: np.ndarray, camera: np.ndarray,
                       height: int, width: int) -> np.ndarray:
  """Bilinear crops of `photo` along the camera path: float32 [T, H, W, 3]."""
  ph, pw = photo.shape[:2]
  cy, cx, wh, ww = [camera[:, i, None] for i in range(4)]
  ys = cy - wh / 2 + (np.arange(height) + 0.5) * wh / height - 0.5  # [T, H]
  xs = cx - ww / 2 + (np.arange(width) + 0.5) * ww / width - 0.5    # [T, W]
  ys = np.clip(ys, 0, ph - 1)
  xs = np.clip(xs, 0, pw - 1)
  y0 = np.floor(ys).astype(np.int64)
  x0 = np.floor(xs).astype(np.int64)
  y1 = np.minimum(y0 + 1, ph - 1)
  x1 = np.minimum(x0 + 1, pw - 1)
  wy = (ys - y0)[:, :, None, None].astype(np.float32)
  wx = (xs - x0)[:, None, :, None].astype(np.float32)
  flat = photo.reshape(-1, 3)
  gather = lambda y, x: flat[(y * pw)[:, :, None] + x[:, None, :]]
  top = gather(y0, x0) * (1 - wx) + gather(y0, x1) * wx
  bottom = gather(y1, x0) * (1 - wx) + gather(y1, x1) * wx
  return top * (1 - wy) + bottom * wy
