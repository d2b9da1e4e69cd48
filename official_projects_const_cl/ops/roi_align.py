"""ROIAlign on one feature-map time slice (paper §3.1, eq. 3; §3.2, eq. 5).

Coordinate convention (continuous, as in Mask R-CNN's "aligned" ROIAlign):
a normalized box coordinate y maps to `y * H` on the feature map, and feature
cell i covers [i, i + 1) with its center at i + 0.5. Each of the
`crop_size x crop_size` output bins averages `sampling_ratio^2` bilinear
samples taken at the centers of its sub-cells; a sample at continuous
coordinate c reads the grid at `c - 0.5`, clamped to [0, H - 1].

The public reference scales boxes by H, W but samples an integer grid clamped
at H - 1, which shifts every region by half a cell (docs/choices.md); here a
feature map whose values are their own cell-center coordinates pools to the box
center exactly.

Only gathers, elementwise math and reductions are used (XLA/TPU friendly);
the interpolation is separable, so rows are gathered and averaged before
columns, which keeps the intermediate at `[B, N, crop, W, C]`.
"""

from typing import Tuple

import tensorflow as tf


def _axis_interpolation(lo: tf.Tensor, hi: tf.Tensor, size: tf.Tensor,
                        crop_size: int,
                        sampling_ratio: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """Sample indices and weights along one axis.

  Args:
    lo: `[B, N]` normalized box start along the axis.
    hi: `[B, N]` normalized box end along the axis.
    size: Scalar float32 feature-map size along the axis.
    crop_size: Output bins along the axis.
    sampling_ratio: Samples per bin along the axis.

  Returns:
    indices: int32 `[B, N, crop_size * sampling_ratio * 2]`, the lower and
      upper grid neighbours of each sample (interleaved per sample).
    weights: float32, same shape, the bilinear weights of those neighbours
      divided by `sampling_ratio` (so that summing over a bin's samples
      averages them).
  """
  num_samples = crop_size * sampling_ratio
  # Sub-cell centers in units of the box extent: (k + 0.5) / num_samples.
  offsets = (tf.range(num_samples, dtype=tf.float32) + 0.5) / num_samples
  start = lo * size
  extent = (hi - lo) * size
  coords = start[..., None] + extent[..., None] * offsets  # [B, N, S]
  grid = tf.clip_by_value(coords - 0.5, 0.0, size - 1.0)
  low = tf.floor(grid)
  frac = grid - low
  low_index = tf.cast(low, tf.int32)
  high_index = tf.minimum(low_index + 1, tf.cast(size, tf.int32) - 1)
  indices = tf.stack([low_index, high_index], axis=-1)
  weights = tf.stack([1.0 - frac, frac], axis=-1) / float(sampling_ratio)
  batch, boxes = tf.shape(lo)[0], tf.shape(lo)[1]
  return (tf.reshape(indices, [batch, boxes, num_samples * 2]),
          tf.reshape(weights, [batch, boxes, num_samples * 2]))


def roi_align(features: tf.Tensor,
              boxes: tf.Tensor,
              crop_size: int = 4,
              sampling_ratio: int = 2) -> tf.Tensor:
  """Crops and bilinearly resamples boxes from a 2D feature map.

  Args:
    features: `[B, H, W, C]` feature map (any float dtype; math is float32).
    boxes: `[B, N, 4]` normalized `[ymin, xmin, ymax, xmax]` in [0, 1] of the
      frame the feature map covers.
    crop_size: Output bins per side.
    sampling_ratio: Bilinear samples per bin per side.

  Returns:
    `[B, N, crop_size, crop_size, C]` float32 region features.
  """
  if crop_size < 1 or sampling_ratio < 1:
    raise ValueError('crop_size and sampling_ratio must be >= 1, '
                     f'got {crop_size} and {sampling_ratio}.')
  features = tf.convert_to_tensor(features)
  if features.shape.rank != 4:
    raise ValueError('features must be [B, H, W, C], got shape '
                     f'{features.shape}.')
  features = tf.cast(features, tf.float32)
  boxes = tf.cast(boxes, tf.float32)
  shape = tf.shape(features)
  height = tf.cast(shape[1], tf.float32)
  width = tf.cast(shape[2], tf.float32)
  batch, num_boxes = tf.shape(boxes)[0], tf.shape(boxes)[1]
  channels = features.shape[-1] if features.shape[-1] is not None else shape[3]

  y_index, y_weight = _axis_interpolation(boxes[..., 0], boxes[..., 2], height,
                                          crop_size, sampling_ratio)
  x_index, x_weight = _axis_interpolation(boxes[..., 1], boxes[..., 3], width,
                                          crop_size, sampling_ratio)

  # Rows: [B, N * S * 2, W, C] -> weighted sum per bin -> [B, N, crop, W, C].
  rows = tf.gather(features, tf.reshape(y_index, [batch, -1]), axis=1,
                   batch_dims=1)
  rows = tf.reshape(rows, [batch, num_boxes, crop_size,
                           sampling_ratio * 2, shape[2], channels])
  y_weight = tf.reshape(y_weight,
                        [batch, num_boxes, crop_size, sampling_ratio * 2, 1, 1])
  rows = tf.reduce_sum(rows * y_weight, axis=3)

  # Columns: [B, N, crop, S * 2, C] -> weighted sum per bin.
  cols = tf.gather(rows, x_index, axis=3, batch_dims=2)
  cols = tf.reshape(cols, [batch, num_boxes, crop_size, crop_size,
                           sampling_ratio * 2, channels])
  x_weight = tf.reshape(x_weight,
                        [batch, num_boxes, 1, crop_size, sampling_ratio * 2, 1])
  return tf.reduce_sum(cols * x_weight, axis=4)


def _axis_mean_weights(lo: tf.Tensor, hi: tf.Tensor, size: int,
                       crop_size: int, sampling_ratio: int) -> tf.Tensor:
  """Weight of every grid line in the average of a box's samples.

  Args:
    lo: `[B, N]` normalized box start along the axis.
    hi: `[B, N]` normalized box end along the axis.
    size: Feature-map size along the axis (static).
    crop_size: Output bins along the axis.
    sampling_ratio: Samples per bin along the axis.

  Returns:
    float32 `[B, N, size]`, summing to 1 over the last axis.
  """
  index, weight = _axis_interpolation(lo, hi, tf.constant(size, tf.float32),
                                      crop_size, sampling_ratio)
  # The samples' bilinear weights were divided by `sampling_ratio`; the mean
  # over the crop also divides by `crop_size`.
  weight = weight / float(crop_size)
  return tf.reduce_sum(tf.one_hot(index, size) * weight[..., None], axis=2)


def roi_pool_mean(features: tf.Tensor,
                  boxes: tf.Tensor,
                  crop_size: int = 4,
                  sampling_ratio: int = 2) -> tf.Tensor:
  """ROIAlign followed by the average over the crop (region feature h).

  Equals `mean(roi_align(...), axis=[2, 3])`, computed without the crop: the
  average of separable bilinear samples is a weighted sum of feature cells
  with weights `w_y[i] * w_x[j]`, i.e. one `[N, H * W] x [H * W, C]` matmul
  per image (its gradient is a matmul too, where the gathers of `roi_align`
  have scatter-adds). Needs a static H and W.

  Args:
    features: `[B, H, W, C]` feature map.
    boxes: `[B, N, 4]` normalized `[ymin, xmin, ymax, xmax]`.
    crop_size: Output bins per side of the ROIAlign.
    sampling_ratio: Bilinear samples per bin per side.

  Returns:
    `[B, N, C]` float32 pooled region features.
  """
  if crop_size < 1 or sampling_ratio < 1:
    raise ValueError('ROIAlign crop_size and sampling_ratio must be >= 1, '
                     f'got {crop_size} and {sampling_ratio}.')
  features = tf.convert_to_tensor(features)
  height, width = features.shape[1], features.shape[2]
  if features.shape.rank != 4 or height is None or width is None:
    # Dynamic spatial size: pool the explicit crop.
    crops = roi_align(features, boxes, crop_size, sampling_ratio)
    return tf.reduce_mean(crops, axis=[2, 3])
  features = tf.cast(features, tf.float32)
  boxes = tf.cast(boxes, tf.float32)
  w_y = _axis_mean_weights(boxes[..., 0], boxes[..., 2], height, crop_size,
                           sampling_ratio)
  w_x = _axis_mean_weights(boxes[..., 1], boxes[..., 3], width, crop_size,
                           sampling_ratio)
  weights = w_y[..., :, None] * w_x[..., None, :]  # [B, N, H, W]
  batch, num_boxes = tf.shape(boxes)[0], tf.shape(boxes)[1]
  weights = tf.reshape(weights, [batch, num_boxes, height * width])
  cells = tf.reshape(features, [batch, height * width, features.shape[-1]])
  return tf.matmul(weights, cells)
