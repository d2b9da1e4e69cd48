"""Temporal index helpers: region time slices and frame-stack neighbours.

Region time slice of each view (`region_time_indices`, paper §4.4 /
Table 4): "center" takes the center slice of both views; "nearest" the
temporally closest pair of slices of the two views (the overlap when the
clips overlap, else their closest ends); "random" draws a slice per view.
Slice s of a T'-slice feature map computed from T input frames covers input
frames [s T/T', (s+1) T/T'); its representative input frame is
floor((s + 0.5) T / T'), which is also the frame whose boxes are used.

`neighbor_indices`: the 2n + 1 frames a tracked frame enters the backbone
with (supp. §3.3).
"""

import numpy as np
import tensorflow as tf

from official_projects_const_cl.configs import const_cl as const_cl_cfg


def slice_frame(num_frames: int, num_feature_frames: int, s):
  """Input frame index representing feature slice `s` (int or tensor)."""
  return (2 * s + 1) * num_frames // (2 * num_feature_frames)


def region_time_indices(frame_index: tf.Tensor, num_feature_frames: int,
                        strategy: str) -> tf.Tensor:
  """Chooses the region time slice of each view.

  Args:
    frame_index: [B, 2, T] int raw frame indices of each view's frames.
    num_feature_frames: T', the time size of the local feature map.
    strategy: one of 'center', 'nearest', 'random'.

  Returns:
    [2B] int32 slice indices, view-major (rows 0..B-1 view a, then view b).
  """
  if strategy not in const_cl_cfg.TEMPORAL_SAMPLINGS:
    raise ValueError(f'temporal_sampling must be one of '
                     f'{const_cl_cfg.TEMPORAL_SAMPLINGS}, got {strategy!r}.')
  batch = tf.shape(frame_index)[0]
  num_frames = frame_index.shape[-1]
  tp = num_feature_frames
  if strategy == 'center':
    return tf.fill([2 * batch], tf.constant(tp // 2, tf.int32))
  if strategy == 'random':
    return tf.random.uniform([2 * batch], 0, tp, dtype=tf.int32)
  # Nearest: times of every slice of both views, then the closest pair.
  rep = tf.constant([slice_frame(num_frames, tp, s) for s in range(tp)],
                    tf.int32)
  times = tf.gather(tf.cast(frame_index, tf.int32), rep, axis=2)  # [B,2,T']
  diff = tf.abs(times[:, 0, :, None] - times[:, 1, None, :])  # [B,T',T']
  # Ties go to the pair closest to the clip centers.
  center = tf.abs(tf.range(tp) - tp // 2)
  tie = center[:, None] + center[None, :]
  cost = diff * (4 * tp) + tie[None]
  flat = tf.argmin(tf.reshape(cost, [batch, tp * tp]), axis=1,
                   output_type=tf.int32)
  return tf.concat([flat // tp, flat % tp], axis=0)


def neighbor_indices(index: int, num_frames: int,
                     num_neighbors: int = 2) -> np.ndarray:
  """Frames `index - n .. index + n`, clamped to the sequence.

  Args:
    index: the tracked frame (0-based).
    num_frames: frames in the sequence.
    num_neighbors: n.

  Returns:
    int [2n + 1] (edge frames repeated at the sequence ends).
  """
  if not 0 <= index < num_frames:
    raise ValueError(f'Frame {index} is outside a sequence of {num_frames}.')
  offsets = np.arange(-num_neighbors, num_neighbors + 1)
  return np.clip(index + offsets, 0, num_frames - 1)
