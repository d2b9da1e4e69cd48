"""Tests for dataloaders/augmentations.py (temporally consistent, CVRL §3.2).

Every op is run eagerly and inside a tf.data map (they can differ).
"""

import numpy as np
import pytest
import tensorflow as tf

from official_projects_const_cl.dataloaders import augmentations as aug
from official_projects_const_cl.dataloaders import region_generators as rg

NO_COLOR = aug.ClipAugmentation(color_jitter_prob=0.0, grayscale_prob=0.0,
                                blur_prob=0.0)
ALWAYS_COLOR = aug.ClipAugmentation(color_jitter_prob=1.0,
                                    grayscale_prob=0.0, blur_prob=1.0)


def _run(fn, in_tf_data, *args):
  """fn(*args) eagerly, or inside a tf.data map; returns numpy values."""
  if in_tf_data:
    ds = tf.data.Dataset.from_tensors(tuple(args)).map(lambda *a: fn(*a))
    out = ds.get_single_element()
  else:
    out = fn(*[tf.constant(a) for a in args])
  return tf.nest.map_structure(lambda t: t.numpy(), out)


def _random_frame(h=40, w=48, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


@pytest.mark.parametrize('in_tf_data', [False, True])
@pytest.mark.parametrize('params', [aug.ClipAugmentation(), ALWAYS_COLOR])
def test_identical_frames_stay_identical(in_tf_data, params):
  clip = np.repeat(_random_frame()[None], 4, axis=0)
  for _ in range(3):
    out, window, flipped = _run(
        lambda c: aug.augment_clip(c, (32, 32), params), in_tf_data, clip)
    assert out.shape == (4, 32, 32, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    for t in range(1, 4):
      np.testing.assert_allclose(out[t], out[0], atol=1e-6)
    assert window.shape == (4,) and flipped.shape == ()


@pytest.mark.parametrize('in_tf_data', [False, True])
def test_frame_coded_clip_keeps_one_crop_and_flip(in_tf_data):
  # Frame t = base + 8 t: a shared crop/flip maps it to view_0 + 8 t / 255.
  base = _random_frame().astype(np.int32) // 2
  clip = np.stack([base + 8 * t for t in range(4)]).astype(np.uint8)
  for _ in range(4):
    out, _, _ = _run(lambda c: aug.augment_clip(c, (32, 32), NO_COLOR),
                     in_tf_data, clip)
    for t in range(4):
      np.testing.assert_allclose(out[t] - out[0], 8 * t / 255.0, atol=1e-4)


@pytest.mark.parametrize('in_tf_data', [False, True])
def test_views_differ_between_calls(in_tf_data):
  clip = np.repeat(_random_frame()[None], 2, axis=0)
  windows = [_run(lambda c: aug.augment_clip(c, (32, 32)), in_tf_data,
                  clip)[1] for _ in range(4)]
  for i in range(4):
    for j in range(i):
      assert not np.allclose(windows[i], windows[j])


@pytest.mark.parametrize('in_tf_data', [False, True])
def test_random_crop_window_ranges(in_tf_data):
  clip = np.zeros((1, 60, 80, 3), np.uint8)
  for _ in range(20):
    out, window = _run(
        lambda c: aug.random_resized_crop(c, (32, 32), (0.3, 1.0), (0.5, 2.0)),
        in_tf_data, clip)
    y0, x0, h, w = window
    assert out.shape == (1, 32, 32, 3)
    assert 0 <= y0 and y0 + h <= 1 + 1e-6 and 0 <= x0 and x0 + w <= 1 + 1e-6
    area = h * w
    assert 0.3 - 0.02 <= area <= 1.0
    aspect = (w * 80) / (h * 60)  # In pixels.
    assert 0.5 - 0.05 <= aspect <= 2.0 + 0.05


@pytest.mark.parametrize('in_tf_data', [False, True])
def test_crop_window_matches_pixels(in_tf_data):
  # Channel 0 codes the row, channel 1 the column: the crop's pixel content
  # must come from the returned window.
  h, w = 40, 64
  frame = np.zeros((h, w, 3), np.uint8)
  frame[..., 0] = (np.arange(h) * 4)[:, None]
  frame[..., 1] = (np.arange(w) * 4)[None, :]
  for _ in range(5):
    out, window = _run(lambda c: aug.random_resized_crop(c, (16, 16)),
                       in_tf_data, frame[None])
    y0, x0, wh, ww = window
    rows = out[0, :, :, 0] * 255 / 4
    cols = out[0, :, :, 1] * 255 / 4
    assert rows.min() >= y0 * h - 1 and rows.max() <= (y0 + wh) * h
    assert cols.min() >= x0 * w - 1 and cols.max() <= (x0 + ww) * w
    np.testing.assert_allclose(rows.mean(), (y0 + wh / 2) * h - 0.5, atol=1)
    np.testing.assert_allclose(cols.mean(), (x0 + ww / 2) * w - 0.5, atol=1)


@pytest.mark.parametrize('in_tf_data', [False, True])
def test_center_crop_hand_computed(in_tf_data):
  # 40 x 60 frame to 32 x 32: scale 0.8, i.e. the central 40 x 40 source
  # pixels (columns 10..49) resized to 32 x 32.
  frame = np.zeros((2, 40, 60, 3), np.uint8)
  frame[..., 1] = (np.arange(60) * 4)[None, None, :]
  out, window, flipped = _run(lambda c: aug.eval_clip(c, (32, 32)),
                              in_tf_data, frame)
  np.testing.assert_allclose(window, [0, 10 / 60, 1, 40 / 60], atol=1e-6)
  assert not flipped
  cols = out[0, 0, :, 1] * 255 / 4
  assert cols.min() >= 10 - 1e-3 and cols.max() <= 49 + 1e-3
  np.testing.assert_allclose(cols.mean(), 29.5, atol=0.1)
  np.testing.assert_allclose(out[0], out[1])


@pytest.mark.parametrize('in_tf_data', [False, True])
@pytest.mark.parametrize('flip_prob', [0.0, 1.0])
def test_flip_moves_boxes_with_pixels(in_tf_data, flip_prob):
  """A bright square's box, transformed with the view, covers its pixels."""
  h, w = 40, 48
  frame = np.zeros((3, h, w, 3), np.uint8)
  frame[:, 10:22, 6:18] = 255
  box = np.array([10 / h, 6 / w, 22 / h, 18 / w], np.float32)

  def fn(clip):
    out, window = aug.random_resized_crop(clip, (32, 32), (0.7, 1.0))
    out, flipped = aug.random_flip(out, flip_prob)
    view_box, valid = rg.transform_boxes(box, window, flipped)
    return out, view_box, valid, flipped

  for _ in range(4):
    out, view_box, valid, flipped = _run(fn, in_tf_data, frame)
    assert bool(flipped) == (flip_prob == 1.0)
    assert valid
    ys, xs = np.nonzero(out[1, :, :, 0] > 0.5)
    assert len(ys) > 0
    center = [(ys.mean() + 0.5) / 32, (xs.mean() + 0.5) / 32]
    np.testing.assert_allclose(
        center, [(view_box[0] + view_box[2]) / 2,
                 (view_box[1] + view_box[3]) / 2], atol=1.5 / 32)
    assert ys.min() / 32 >= view_box[0] - 1.5 / 32
    assert (ys.max() + 1) / 32 <= view_box[2] + 1.5 / 32
    assert xs.min() / 32 >= view_box[1] - 1.5 / 32
    assert (xs.max() + 1) / 32 <= view_box[3] + 1.5 / 32
    np.testing.assert_allclose(out[0], out[2])


@pytest.mark.parametrize('in_tf_data', [False, True])
def test_color_jitter_grayscale_blur_values(in_tf_data):
  clip = np.repeat(_random_frame(32, 32)[None], 2, axis=0).astype(
      np.float32) / 255
  out = _run(lambda c: aug.color_jitter(c, 1.0), in_tf_data, clip)
  assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
  np.testing.assert_allclose(out[0], out[1], atol=1e-6)
  assert not np.allclose(out, clip, atol=1e-3)

  gray = _run(aug.to_grayscale, in_tf_data, clip)
  np.testing.assert_allclose(gray[..., 0], gray[..., 1])
  np.testing.assert_allclose(gray[..., 0], gray[..., 2])
  np.testing.assert_allclose(
      gray[..., 0], clip @ np.array([0.2989, 0.587, 0.114]), atol=1e-3)

  # An impulse is spread into a symmetric, normalized Gaussian; a constant
  # image stays constant (reflect padding keeps the borders).
  impulse = np.zeros((1, 9, 9, 3), np.float32)
  impulse[0, 4, 4] = 1.0
  blurred = _run(lambda c: aug.gaussian_blur(c, 1.0, 2), in_tf_data, impulse)
  g = np.exp(-0.5 * np.arange(-2, 3) ** 2)
  g /= g.sum()
  np.testing.assert_allclose(blurred[0, 2:7, 2:7, 0], np.outer(g, g),
                             atol=1e-6)
  const = np.full((1, 8, 8, 3), 0.3, np.float32)
  np.testing.assert_allclose(
      _run(lambda c: aug.gaussian_blur(c, 2.0, 3), in_tf_data, const), const,
      atol=1e-6)


def test_blur_kernel_radius():
  assert aug.blur_kernel_radius(224) == 11  # 23 taps, ~10% of 224.
  assert aug.blur_kernel_radius(64) == 3
  assert aug.blur_kernel_radius(16) == 1


def test_probabilities():
  """Flip p=0.5, jitter p=0.8, grayscale p=0.2 (one coin per clip)."""
  clip = tf.constant(np.repeat(_random_frame(16, 16)[None], 1, axis=0))
  params = aug.ClipAugmentation(blur_prob=0.0, min_area_ratio=1.0)

  @tf.function
  def many(n):
    return tf.map_fn(lambda _: aug.augment_clip(clip, (16, 16), params),
                     tf.range(n), fn_output_signature=(
                         tf.float32, tf.float32, tf.bool))

  out, _, flipped = many(200)
  flip_rate = float(np.mean(flipped.numpy()))
  assert 0.35 < flip_rate < 0.65
  out = out.numpy()
  is_gray = np.all(np.abs(out[..., 0] - out[..., 1]) < 1e-5, axis=(1, 2, 3))
  assert 0.08 < is_gray.mean() < 0.35
