"""Fixed spatio-temporal sinusoidal positional encodings (paper §4.1).

"We add spatio-temporal positional encodings to the query, key and value
tokens before inputting into the transformer head in order to preserve
location information." The encodings are parameter-free, so they add nothing
to the parameter counts of paper Table 6.

A position is a normalized `(t, y, x)` in [0, 1]: feature voxel i of an axis
of size S sits at `(i + 0.5) / S`, a box at its center, a time slice s of T'
at `(s + 0.5) / T'`. The `dim` channels are split as `d_t = 2 * (dim // 8)`
for t (about a quarter), then `d_y = 2 * ((dim - d_t) // 4)` for y and the rest
`d_x` for x (2048 -> 512 / 768 / 768). An axis with `d` channels uses
`n = d / 2` frequencies `f_k = max_frequency ** (k / (n - 1))` cycles per unit
length (geometric from 1 to `max_frequency`) and encodes coordinate c as
`[sin(2 pi f_0 c), ..., sin(2 pi f_{n-1} c), cos(2 pi f_0 c), ...]`.
"""

import math
from typing import Optional, Sequence, Tuple

import tensorflow as tf

DEFAULT_MAX_FREQUENCY = 32.0


def split_dims(dim: int) -> Tuple[int, int, int]:
  """Channels given to (t, y, x); each even, summing to `dim`."""
  if dim < 8 or dim % 2:
    raise ValueError('the encoding dimension must be '
                     f'even and >= 8, got {dim}.')
  d_t = 2 * (dim // 8)
  d_y = 2 * ((dim - d_t) // 4)
  return d_t, d_y, dim - d_t - d_y


def _frequencies(num: int, max_frequency: float) -> tf.Tensor:
  if num == 1:
    return tf.ones([1], tf.float32)
  exponents = tf.range(num, dtype=tf.float32) / float(num - 1)
  return tf.pow(tf.constant(max_frequency, tf.float32), exponents)


def _axis_encoding(coord: tf.Tensor, dim: int,
                   max_frequency: float) -> tf.Tensor:
  """`[...]` coordinates -> `[..., dim]` sin/cos features."""
  angles = (2.0 * math.pi) * coord[..., None] * _frequencies(
      dim // 2, max_frequency)
  return tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)


def st_positional_encoding(
    coords: tf.Tensor,
    dim: int,
    max_frequency: float = DEFAULT_MAX_FREQUENCY) -> tf.Tensor:
  """Encodes normalized (t, y, x) positions.

  Args:
    coords: `[..., 3]` normalized `(t, y, x)` coordinates.
    dim: Output channels (even, >= 8).
    max_frequency: Highest frequency, in cycles per unit length.

  Returns:
    `[..., dim]` float32 encoding: t channels, then y, then x.
  """
  d_t, d_y, d_x = split_dims(dim)
  coords = tf.cast(coords, tf.float32)
  return tf.concat([
      _axis_encoding(coords[..., 0], d_t, max_frequency),
      _axis_encoding(coords[..., 1], d_y, max_frequency),
      _axis_encoding(coords[..., 2], d_x, max_frequency),
  ], axis=-1)


def grid_coordinates(
    num_frames: int,
    height: int,
    width: int,
    frame_indices: Optional[Sequence[int]] = None) -> tf.Tensor:
  """Normalized voxel-center coordinates of a feature-map grid.

  Args:
    num_frames: T' of the feature map.
    height: H' of the feature map (int or scalar int tensor).
    width: W' of the feature map (int or scalar int tensor).
    frame_indices: The time slices to keep (default: all T').

  Returns:
    `[L, H', W', 3]` float32 `(t, y, x)` with `t = (i + 0.5) / T'`, etc.,
    where L = len(frame_indices) (or T').
  """
  if frame_indices is None:
    frame_indices = range(num_frames)
  t = (tf.cast(tf.constant(list(frame_indices)), tf.float32) + 0.5) / float(
      num_frames)
  # Sizes may be tensors (dynamic feature-map shapes).
  y = (tf.range(height, dtype=tf.float32) + 0.5) / tf.cast(height, tf.float32)
  x = (tf.range(width, dtype=tf.float32) + 0.5) / tf.cast(width, tf.float32)
  tt, yy, xx = tf.meshgrid(t, y, x, indexing='ij')
  return tf.stack([tt, yy, xx], axis=-1)


def grid_positional_encoding(
    num_frames: int,
    height: int,
    width: int,
    dim: int,
    frame_indices: Optional[Sequence[int]] = None,
    max_frequency: float = DEFAULT_MAX_FREQUENCY) -> tf.Tensor:
  """Encoding of every voxel of (selected frames of) a feature map.

  Returns:
    `[L, H', W', dim]` float32, see `grid_coordinates`.
  """
  return st_positional_encoding(
      grid_coordinates(num_frames, height, width, frame_indices), dim,
      max_frequency)


def box_coordinates(boxes: tf.Tensor, time_index: tf.Tensor,
                    num_frames: int) -> tf.Tensor:
  """Normalized `(t, y, x)` of box centers on time slice `time_index`.

  Args:
    boxes: `[B, N, 4]` normalized `[ymin, xmin, ymax, xmax]`.
    time_index: `[B]` integer feature-map time slice of each row.
    num_frames: T' of the feature map.

  Returns:
    `[B, N, 3]` float32 with `t = (time_index + 0.5) / T'`.
  """
  boxes = tf.cast(boxes, tf.float32)
  t = (tf.cast(time_index, tf.float32) + 0.5) / float(num_frames)
  t = tf.broadcast_to(t[:, None], tf.shape(boxes)[:2])
  y = 0.5 * (boxes[..., 0] + boxes[..., 2])
  x = 0.5 * (boxes[..., 1] + boxes[..., 3])
  return tf.stack([t, y, x], axis=-1)


def box_positional_encoding(
    boxes: tf.Tensor,
    time_index: tf.Tensor,
    num_frames: int,
    dim: int,
    max_frequency: float = DEFAULT_MAX_FREQUENCY) -> tf.Tensor:
  """Encoding of box centers at a time slice: `[B, N, dim]` float32."""
  return st_positional_encoding(
      box_coordinates(boxes, time_index, num_frames), dim, max_frequency)
