"""SiamFC's label map and class-balanced logistic loss (ECCVW 2016, eq. 3).

Sources: [E] the paper; [M] the authors' MATLAB release
`bertinetto/siamese-fc`; [P] `huanglianghua/siamfc-pytorch`.
"""

from typing import Sequence, Union

import numpy as np
import tensorflow as tf

ArrayLike = Union[np.ndarray, tf.Tensor, Sequence[float]]


def response_labels(response_size: Union[int, Sequence[int]],
                    total_stride: int = 8,
                    radius: float = 16.0) -> np.ndarray:
  """SiamFC's label map: 1 within `radius` search-crop pixels of the center.

  y[u] = 1 if total_stride * ||u - c|| <= radius else 0 ([E] eq. 3 with
  {+1, -1} written {1, 0}; Euclidean as [M] create_logisticloss_label), c
  the map center ((n - 1) / 2 per axis; for an even size the four middle
  cells are equidistant). Defaults: radius 16 px / stride 8 = 2 cells,
  13 positives.

  Returns:
    float32 `[rh, rw]`.
  """
  rh, rw = ((response_size, response_size) if np.ndim(response_size) == 0
            else tuple(response_size))
  dy = np.arange(rh, dtype=np.float64) - (rh - 1) / 2
  dx = np.arange(rw, dtype=np.float64) - (rw - 1) / 2
  dist = total_stride * np.sqrt(dy[:, None]**2 + dx[None, :]**2)
  # A tiny tolerance so that a radius equal to a cell distance (16 = 2 * 8)
  # is inclusive despite rounding.
  return (dist <= radius + 1e-9).astype(np.float32)


def balanced_weights(labels: tf.Tensor) -> tf.Tensor:
  """Per-map weights: 0.5 / #positives on 1s, 0.5 / #negatives on 0s.

  `labels`: `[..., h, w]` in {0, 1}; counts are taken per map (last two
  axes). A class absent from a map gets no weight (that map then sums to
  0.5, not 1). Cells with other values (e.g. 0.5 'neutral') get weight 0.
  """
  labels = tf.convert_to_tensor(labels, tf.float32)
  pos = tf.cast(tf.equal(labels, 1.0), tf.float32)
  neg = tf.cast(tf.equal(labels, 0.0), tf.float32)
  n_pos = tf.reduce_sum(pos, axis=[-2, -1], keepdims=True)
  n_neg = tf.reduce_sum(neg, axis=[-2, -1], keepdims=True)
  return (tf.math.divide_no_nan(0.5 * pos, n_pos) +
          tf.math.divide_no_nan(0.5 * neg, n_neg))


def balanced_logistic_loss(logits: tf.Tensor,
                           labels: ArrayLike,
                           reduction: str = 'mean') -> tf.Tensor:
  """SiamFC's class-balanced logistic loss.

  Per map: sum_u w[u] * log(1 + exp(-y[u] v[u])) with y in {+1, -1} (the
  sigmoid cross-entropy of labels in {1, 0}) and the 'balanced' weights of
  [M] create_labels (each class totals 1/2 of the map's weight), i.e. the
  mean of the positives' loss and the negatives' loss.

  Args:
    logits: `[B, h, w]` (or `[h, w]`) scores.
    labels: Broadcastable to `logits`, values in {0, 1}
      (e.g. `response_labels(...)` for every pair).
    reduction: 'mean' (over the batch; equal to [P]'s BalancedLoss when every
      pair has the same labels) or 'none' (`[B]`, one loss per map).

  Returns:
    Scalar, or `[B]` for reduction 'none'.
  """
  logits = tf.convert_to_tensor(logits)
  labels = tf.broadcast_to(tf.cast(labels, logits.dtype), tf.shape(logits))
  weights = tf.cast(balanced_weights(labels), logits.dtype)
  per_cell = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels,
                                                     logits=logits)
  per_map = tf.reduce_sum(weights * per_cell, axis=[-2, -1])
  if reduction == 'none':
    return per_map
  if reduction != 'mean':
    raise ValueError(f'Unknown reduction {reduction!r}.')
  return tf.reduce_mean(per_map)
