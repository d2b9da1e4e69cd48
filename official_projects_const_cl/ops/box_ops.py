"""Box geometry: `(x, y, w, h)` pixel boxes <-> centers and sizes.

Boxes are `(x, y, w, h)` in pixels, 0-based. Pixel i covers [i - 0.5, i + 0.5),
so a box's center is `(y + (h - 1) / 2, x + (w - 1) / 2)` (OTB / the GOT-10k
toolkit's `center_error`). Centers are `(cy, cx)`, sizes `(h, w)`.
"""

from typing import Sequence, Tuple, Union

import numpy as np

ArrayLike = Union[np.ndarray, Sequence[float]]


def box_to_center_size(box: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
  """`(x, y, w, h)` -> center (y + (h-1) / 2, x + (w-1) / 2), size (h, w)."""
  x, y, w, h = [float(v) for v in np.asarray(box, np.float64).reshape(4)]
  return (np.array([y + (h - 1) / 2, x + (w - 1) / 2]), np.array([h, w]))


def center_size_to_box(center_yx: ArrayLike, size_hw: ArrayLike) -> np.ndarray:
  """Inverse of `box_to_center_size`: `(x, y, w, h)` as float64."""
  cy, cx = np.asarray(center_yx, np.float64)
  h, w = np.asarray(size_hw, np.float64)
  return np.array([cx - (w - 1) / 2, cy - (h - 1) / 2, w, h])
