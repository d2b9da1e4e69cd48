r"""SiamFC crop geometry (Bertinetto et al., ECCVW 2016, sec. 2.4).

Exemplar / search crop sides and sub-pixel exact square crops, in TF (for
tf.data) and numpy (for the tracker). Boxes and centers follow `box_ops`.

A square crop of side `size` (frame pixels, need not be an integer) centered
at `c` covers [c - size / 2, c + size / 2); output pixel k is the bilinear
sample at `c - size / 2 + (k + 0.5) * size / out_size` (half-pixel mapping,
as `tf.image.resize`). Outside the image the frame is extended by
`pad_value` (default: the per-channel mean), as padding first and then
sampling. No antialiasing when shrinking (neither SiamFC reference filters).
"""

from typing import Optional, Sequence, Union

import numpy as np
import tensorflow as tf

ArrayLike = Union[np.ndarray, tf.Tensor, Sequence[float]]


def exemplar_crop_size(box_wh: ArrayLike, context_amount: float = 0.5):
  """Side s_z of the exemplar crop in frame pixels.

  p = context_amount * (w + h); s_z = sqrt((w + p) * (h + p)) ([E] sec. 2.4:
  a square of area (w + 2p')(h + 2p') with p' = (w + h) / 4). Works on numpy
  values and on TF tensors (last axis `(w, h)`).

  Args:
    box_wh: `[..., 2]` target width and height.
    context_amount: Context as a fraction of w + h (SiamFC: 0.5).

  Returns:
    `[...]` crop side(s).
  """
  if not isinstance(box_wh, tf.Tensor):
    box_wh = np.asarray(box_wh, np.float64)
  w, h = box_wh[..., 0], box_wh[..., 1]
  p = context_amount * (w + h)
  return ((w + p) * (h + p)) ** 0.5


def search_crop_size(s_z, exemplar_size: int = 127, instance_size: int = 255):
  """s_x = s_z * instance_size / exemplar_size (same scale as the exemplar)."""
  return s_z * (instance_size / exemplar_size)


def _sample_coords(center, size, out_size: int):
  """Half-pixel sample coordinates `c - size/2 + (k + 0.5) * size / out`."""
  k = tf.range(out_size, dtype=tf.float32)
  return (center - size / 2.0)[..., None] + (k + 0.5) * (size[..., None] /
                                                          out_size)


def _interp_axis(values, coords, axis_len, pad, batched):
  """Linear interpolation along one axis; out-of-range grid points read `pad`.

  Rows (`batched=False`): `values` is the image `[H, W, C]`, `coords`
  `[S, out]` -> `[S, out, W, C]`. Columns (`batched=True`): `values` is
  `[S, out, W, C]` -> `[S, out, out, C]`.
  """
  lo = tf.floor(coords)
  frac = coords - lo
  lo = tf.cast(lo, tf.int32)
  out = 0.0
  for offset, weight in ((0, 1.0 - frac), (1, frac)):
    index = lo + offset
    valid = (index >= 0) & (index < axis_len)
    index = tf.clip_by_value(index, 0, axis_len - 1)
    if batched:
      gathered = tf.gather(values, index, axis=2, batch_dims=1)
      valid, weight = valid[:, None, :, None], weight[:, None, :, None]
    else:
      gathered = tf.gather(values, index, axis=0)
      valid, weight = valid[:, :, None, None], weight[:, :, None, None]
    out += weight * tf.where(valid, gathered, pad)
  return out


def crop_and_resize(image: ArrayLike,
                    center_yx: ArrayLike,
                    size: ArrayLike,
                    out_size: int,
                    pad_value: Optional[ArrayLike] = None) -> tf.Tensor:
  """Square crop(s) of `image` centered on `center_yx`, resized (TF).

  Graph-safe (dynamic image sizes; usable in tf.data). See the module
  docstring for the exact sampling convention.

  Args:
    image: `[H, W, C]` frame (any numeric dtype; computed in float32).
    center_yx: `[2]` crop center `(cy, cx)` in pixel coordinates.
    size: Scalar crop side in frame pixels, or `[S]` sides (a scale pyramid
      sharing the center).
    out_size: Output side in pixels.
    pad_value: `[C]` (or scalar) value of the frame outside the image;
      default the image's per-channel mean.

  Returns:
    float32 `[out_size, out_size, C]`, or `[S, out_size, out_size, C]` when
    `size` is a vector.
  """
  image = tf.convert_to_tensor(image)
  image = tf.cast(image, tf.float32)
  center = tf.cast(tf.convert_to_tensor(center_yx), tf.float32)
  size = tf.cast(tf.convert_to_tensor(size), tf.float32)
  scalar = size.shape.rank == 0
  sizes = tf.reshape(size, [-1])
  if pad_value is None:
    pad = tf.reduce_mean(image, axis=[0, 1])
  else:
    pad = tf.cast(tf.convert_to_tensor(pad_value), tf.float32)
  pad = tf.broadcast_to(pad, tf.shape(image)[-1:])
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  num = tf.shape(sizes)[0]
  ys = _sample_coords(tf.fill([num], center[0]), sizes, out_size)  # [S, out]
  xs = _sample_coords(tf.fill([num], center[1]), sizes, out_size)
  rows = _interp_axis(image, ys, height, pad, batched=False)  # [S, out, W, C]
  crops = _interp_axis(rows, xs, width, pad, batched=True)  # [S, out, out, C]
  return crops[0] if scalar else crops


def crop_and_resize_np(image: np.ndarray,
                       center_yx: ArrayLike,
                       size: Union[float, ArrayLike],
                       out_size: int,
                       pad_value: Optional[ArrayLike] = None) -> np.ndarray:
  """Numpy twin of `crop_and_resize` (same convention, float32 output).

  Used by the tracker (no TF op dispatch per crop). Shapes as
  `crop_and_resize`.
  """
  image = np.asarray(image, np.float32)
  if image.ndim == 2:
    image = image[..., None]
  pad = (image.mean(axis=(0, 1)) if pad_value is None else
         np.broadcast_to(np.asarray(pad_value, np.float32), image.shape[-1:]))
  pad = pad.astype(np.float32)
  cy, cx = np.asarray(center_yx, np.float64)
  sizes = np.atleast_1d(np.asarray(size, np.float64))
  k = np.arange(out_size, dtype=np.float64) + 0.5

  def weights(center, side, length):
    coords = center - side / 2 + k * side / out_size
    lo = np.floor(coords)
    frac = (coords - lo).astype(np.float32)
    lo = lo.astype(np.int64)
    out = []
    for index, weight in ((lo, 1.0 - frac), (lo + 1, frac)):
      valid = (index >= 0) & (index < length)
      out.append((np.clip(index, 0, length - 1), valid, weight))
    return out

  crops = []
  for side in sizes:
    rows = 0.0
    for index, valid, weight in weights(cy, side, image.shape[0]):
      rows = rows + weight[:, None, None] * np.where(
          valid[:, None, None], image[index], pad)
    crop = 0.0
    for index, valid, weight in weights(cx, side, image.shape[1]):
      crop = crop + weight[None, :, None] * np.where(
          valid[None, :, None], rows[:, index], pad)
    crops.append(crop.astype(np.float32))
  crops = np.stack(crops)
  return crops[0] if np.ndim(size) == 0 else crops
