"""Tests of ROIAlign's continuous-coordinate convention (docs/choices.md)."""

import numpy as np
import pytest
import tensorflow as tf

from official_projects_const_cl.ops import roi_align


def _reference(features, boxes, crop, ratio):
  """Direct per-sample numpy ROIAlign with the documented convention."""
  b, h, w, c = features.shape
  n = boxes.shape[1]
  out = np.zeros([b, n, crop, crop, c])

  def corners(coord, size):
    g = min(max(coord - 0.5, 0.0), size - 1.0)
    lo = int(np.floor(g))
    hi = min(lo + 1, size - 1)
    return lo, hi, g - lo

  for bi in range(b):
    for ni in range(n):
      y0, x0, y1, x1 = boxes[bi, ni] * [h, w, h, w]
      bh, bw = (y1 - y0) / crop, (x1 - x0) / crop
      for p in range(crop):
        for q in range(crop):
          acc = np.zeros(c)
          for a in range(ratio):
            for s in range(ratio):
              ylo, yhi, fy = corners(y0 + (p + (a + 0.5) / ratio) * bh, h)
              xlo, xhi, fx = corners(x0 + (q + (s + 0.5) / ratio) * bw, w)
              f = features[bi]
              acc += ((1 - fy) * (1 - fx) * f[ylo, xlo] + (1 - fy) * fx *
                      f[ylo, xhi] + fy * (1 - fx) * f[yhi, xlo] +
                      fy * fx * f[yhi, xhi])
          out[bi, ni, p, q] = acc / ratio**2
  return out


def _coordinate_map(height, width):
  """[1, H, W, 2] whose values are the normalized cell centers (y, x)."""
  y = (np.arange(height) + 0.5) / height
  x = (np.arange(width) + 0.5) / width
  yy, xx = np.meshgrid(y, x, indexing='ij')
  return np.stack([yy, xx], axis=-1)[None].astype(np.float32)


def _random_boxes(rng, n, low=0.1, high=0.9, min_size=0.05):
  corners = rng.uniform(low, high - min_size, size=(n, 2))
  sizes = rng.uniform(min_size, 1.0, size=(n, 2)) * (high - corners)
  return np.concatenate([corners, corners + sizes], axis=-1).astype(np.float32)


@pytest.mark.parametrize('height,width', [(8, 8), (6, 10)])
def test_coordinate_map_pools_to_box_center(height, width):
  rng = np.random.default_rng(0)
  boxes = _random_boxes(rng, 16)[None]
  features = _coordinate_map(height, width)
  pooled = roi_align.roi_pool_mean(features, boxes, crop_size=4,
                                   sampling_ratio=2).numpy()
  centers = np.stack([(boxes[..., 0] + boxes[..., 2]) / 2,
                      (boxes[..., 1] + boxes[..., 3]) / 2], axis=-1)
  np.testing.assert_allclose(pooled, centers, atol=1e-5)
  # Every bin too: bilinear interpolation of a linear map is exact, so bin
  # (p, q) holds the center of that bin.
  crops = roi_align.roi_align(features, boxes, crop_size=3,
                              sampling_ratio=2).numpy()
  frac = (np.arange(3) + 0.5) / 3
  y = boxes[..., 0, None] + (boxes[..., 2] - boxes[..., 0])[..., None] * frac
  x = boxes[..., 1, None] + (boxes[..., 3] - boxes[..., 1])[..., None] * frac
  np.testing.assert_allclose(crops[..., 0], np.broadcast_to(
      y[..., :, None], crops.shape[:-1]), atol=1e-5)
  np.testing.assert_allclose(crops[..., 1], np.broadcast_to(
      x[..., None, :], crops.shape[:-1]), atol=1e-5)


def test_matches_direct_reference_including_borders():
  rng = np.random.default_rng(1)
  features = rng.normal(size=(2, 5, 7, 3)).astype(np.float32)
  boxes = np.stack([_random_boxes(rng, 4, low=0.0, high=1.0),
                    _random_boxes(rng, 4, low=0.0, high=1.0)])
  boxes[0, 0] = [0.0, 0.0, 1.0, 1.0]
  boxes[1, 1] = [0.9, 0.0, 1.0, 0.1]  # Corner box: clamped samples.
  for crop, ratio in [(4, 2), (2, 3), (1, 1)]:
    got = roi_align.roi_align(features, boxes, crop, ratio).numpy()
    np.testing.assert_allclose(got, _reference(features, boxes, crop, ratio),
                               rtol=1e-5, atol=1e-5)


def test_constant_map_gives_the_constant():
  features = np.full([2, 7, 7, 4], 3.25, np.float32)
  rng = np.random.default_rng(2)
  boxes = np.stack([_random_boxes(rng, 5, 0.0, 1.0) for _ in range(2)])
  pooled = roi_align.roi_pool_mean(features, boxes).numpy()
  np.testing.assert_allclose(pooled, 3.25, atol=1e-6)


def test_hand_computed_2x2():
  features = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)[None, :, :, None]
  full = np.array([[[0.0, 0.0, 1.0, 1.0]]], np.float32)
  # Bins centered on the cells read the cells themselves.
  np.testing.assert_allclose(
      roi_align.roi_align(features, full, 2, 1).numpy()[0, 0, ..., 0],
      [[1.0, 2.0], [3.0, 4.0]], atol=1e-6)
  # One sample at the map center (1, 1): the mean of the four cells.
  np.testing.assert_allclose(
      roi_align.roi_align(features, full, 1, 1).numpy()[0, 0, 0, 0, 0], 2.5,
      atol=1e-6)
  # Top half, 2x2 samples at y in {0.25, 0.75}, x in {0.5, 1.5}: grid rows
  # -0.25 (clamped to 0) and 0.25, columns 0 and 1:
  # rows (1, 2) and (0.75 * (1, 2) + 0.25 * (3, 4)) = (1.5, 2.5); mean 1.75.
  top = np.array([[[0.0, 0.0, 0.5, 1.0]]], np.float32)
  np.testing.assert_allclose(
      roi_align.roi_pool_mean(features, top, 1, 2).numpy()[0, 0, 0], 1.75,
      atol=1e-6)


def test_gradient_is_a_convex_combination_per_channel():
  rng = np.random.default_rng(3)
  features = tf.Variable(rng.normal(size=(1, 6, 6, 3)).astype(np.float32))
  boxes = tf.constant([[[0.1, 0.2, 0.7, 0.6], [0.0, 0.5, 1.0, 1.0]]])
  with tf.GradientTape() as tape:
    pooled = roi_align.roi_pool_mean(features, boxes)  # [1, 2, 3]
  jacobian = tape.jacobian(pooled, features).numpy()  # [1,2,3, 1,6,6,3]
  for n in range(2):
    for c in range(3):
      grad = jacobian[0, n, c, 0]
      assert np.abs(grad[..., c]).sum() > 0
      np.testing.assert_allclose(grad[..., c].sum(), 1.0, atol=1e-5)
      assert (grad[..., c] >= 0).all()
      others = np.delete(grad, c, axis=-1)
      np.testing.assert_allclose(others, 0.0, atol=1e-7)


def test_xla_graph_and_dtypes():
  rng = np.random.default_rng(4)
  features = rng.normal(size=(2, 7, 7, 8)).astype(np.float32)
  boxes = np.stack([_random_boxes(rng, 3) for _ in range(2)])
  eager = roi_align.roi_align(features, boxes).numpy()
  compiled = tf.function(roi_align.roi_align, jit_compile=True)(
      tf.constant(features), tf.constant(boxes))
  np.testing.assert_allclose(compiled.numpy(), eager, rtol=1e-5, atol=1e-6)
  half = roi_align.roi_pool_mean(tf.cast(features, tf.bfloat16), boxes)
  assert half.dtype == tf.float32


def test_bad_arguments():
  with pytest.raises(ValueError, match='crop_size'):
    roi_align.roi_align(np.zeros([1, 4, 4, 1], np.float32),
                        np.zeros([1, 1, 4], np.float32), crop_size=0)
  with pytest.raises(ValueError, match=r'\[B, H, W, C\]'):
    roi_align.roi_align(np.zeros([4, 4, 1], np.float32),
                        np.zeros([1, 1, 4], np.float32))


@pytest.mark.parametrize('height,width,crop,ratio', [(2, 2, 4, 2), (7, 7, 4, 2),
                                                     (5, 9, 3, 1)])
def test_pool_mean_equals_mean_of_crops_values_and_gradients(height, width,
                                                             crop, ratio):
  """The weighted-cell matmul gives ROIAlign's crop mean, and its gradient."""
  rng = np.random.default_rng(5)
  features = tf.constant(rng.normal(size=(3, height, width, 6)), tf.float32)
  boxes = tf.constant(np.stack([_random_boxes(rng, 5) for _ in range(3)]))
  expected = _reference(features.numpy(), boxes.numpy(), crop, ratio).mean(
      axis=(2, 3))
  upstream = tf.constant(rng.normal(size=(3, 5, 6)), tf.float32)

  def pooled_and_grad(fn):
    with tf.GradientTape() as tape:
      tape.watch(features)
      out = fn(features, boxes)
      loss = tf.reduce_sum(out * upstream)
    return out, tape.gradient(loss, features)

  fast, fast_grad = pooled_and_grad(
      lambda f, b: roi_align.roi_pool_mean(f, b, crop, ratio))
  slow, slow_grad = pooled_and_grad(
      lambda f, b: tf.reduce_mean(roi_align.roi_align(f, b, crop, ratio),
                                  axis=[2, 3]))
  np.testing.assert_allclose(fast.numpy(), expected, atol=1e-5)
  np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=1e-5)
  np.testing.assert_allclose(fast_grad.numpy(), slow_grad.numpy(), atol=1e-5)
  compiled = tf.function(
      lambda f, b: roi_align.roi_pool_mean(f, b, crop, ratio),
      jit_compile=True)(features, boxes)
  np.testing.assert_allclose(compiled.numpy(), expected, atol=1e-5)
  # Unknown spatial size (pools the explicit crop instead).
  dynamic = tf.function(
      lambda f, b: roi_align.roi_pool_mean(f, b, crop, ratio),
      input_signature=[tf.TensorSpec([None, None, None, 6]),
                       tf.TensorSpec([None, None, 4])])(features, boxes)
  np.testing.assert_allclose(dynamic.numpy(), expected, atol=1e-5)
