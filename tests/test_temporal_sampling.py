"""Temporal sampling of the contrasted frames (paper Table 4)."""

import numpy as np
import pytest
import tensorflow as tf

from official_projects_const_cl.ops import temporal as temporal_sampling


def test_slice_frame():
  # 16 input frames, 8 slices: slice s covers frames 2s, 2s+1 -> frame 2s+1.
  assert [temporal_sampling.slice_frame(16, 8, s) for s in range(8)] == [
      1, 3, 5, 7, 9, 11, 13, 15]
  assert temporal_sampling.slice_frame(8, 8, 3) == 3


def test_center():
  fi = tf.zeros([3, 2, 16], tf.int32)
  np.testing.assert_array_equal(
      temporal_sampling.region_time_indices(fi, 8, 'center'), [4] * 6)


def test_nearest_overlapping_and_disjoint():
  # Example 0: view b starts 6 frames after view a (stride 1, 8 frames, T'=4):
  # slice times a: [1,3,5,7], b: [7,9,11,13] -> a slice 3 meets b slice 0.
  a0 = np.arange(0, 8)
  b0 = np.arange(6, 14)
  # Example 1: disjoint, b before a -> a's first slice, b's last slice.
  a1 = np.arange(100, 108)
  b1 = np.arange(0, 8)
  fi = tf.constant(np.stack([np.stack([a0, b0]), np.stack([a1, b1])]))
  idx = temporal_sampling.region_time_indices(fi, 4, 'nearest').numpy()
  np.testing.assert_array_equal(idx, [3, 0, 0, 3])


def test_nearest_identical_clips_prefers_center():
  fi = tf.constant(np.tile(np.arange(16)[None, None], [1, 2, 1]))
  idx = temporal_sampling.region_time_indices(fi, 8, 'nearest').numpy()
  np.testing.assert_array_equal(idx, [4, 4])


def test_random_in_range_and_varied():
  fi = tf.zeros([64, 2, 16], tf.int32)
  idx = temporal_sampling.region_time_indices(fi, 8, 'random').numpy()
  assert idx.min() >= 0 and idx.max() < 8 and len(set(idx.tolist())) > 4


def test_unknown_strategy():
  with pytest.raises(ValueError, match='temporal_sampling'):
    temporal_sampling.region_time_indices(tf.zeros([1, 2, 4]), 2, 'middle')
