"""Which feature-map time slice of each view the contrasted regions come from.

Paper §4.4 / Table 4: "center" takes the center slice of both views;
"nearest" takes the temporally closest pair of slices of the two views (the
overlap when the clips overlap, else their closest ends); "random" draws a
slice per view. Slice s of a T'-slice feature map computed from T input
frames covers input frames [s T/T', (s+1) T/T'); its representative input
frame is floor((s + 0.5) T / T'), which is also the frame whose boxes are used.
"""

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
