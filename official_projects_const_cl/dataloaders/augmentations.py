"""Temporally consistent clip augmentation (ConST-CL §4.1, CVRL §3.2).

Each clip gets ONE random draw of every augmentation parameter, applied to all
its frames (CVRL's "temporally consistent spatial augmentation"): random
resized crop (area 0.3–1, aspect 0.5–2), horizontal flip (p = 0.5), color
jitter (p = 0.8; brightness / contrast / saturation / hue of strength
0.8s / 0.8s / 0.8s / 0.2s as in SimCLR and CVRL, applied in that fixed order),
grayscale (p = 0.2) and Gaussian blur (p = 0.5, sigma ~ U(0.1, 2), kernel
about 10% of the output side). Evaluation uses a deterministic center crop.

The spatial ops return the crop window `(y0, x0, h, w)` (normalized to the
source frame) and the flip flag, so that region boxes of the source frame can
follow the pixels (`region_generators.transform_boxes`).

All functions take and return whole clips `[T, H, W, 3]` and work eagerly and
inside `tf.data` (the random draws are stateful ops without seeds: every
call, i.e. every example and every view, gets fresh values).
"""

import dataclasses
from typing import Sequence, Tuple

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class ClipAugmentation:
  """Parameters of the training augmentation (defaults: the paper recipe)."""
  min_area_ratio: float = 0.3
  max_area_ratio: float = 1.0
  min_aspect_ratio: float = 0.5
  max_aspect_ratio: float = 2.0
  flip: bool = True
  color_jitter_prob: float = 0.8
  color_jitter_strength: float = 1.0
  grayscale_prob: float = 0.2
  blur_prob: float = 0.5
  blur_sigma_range: Tuple[float, float] = (0.1, 2.0)


def clip_augmentation_from_config(params, color: bool = True
                                  ) -> ClipAugmentation:
  """The `aug_*` fields of a data config as a `ClipAugmentation`.

  Args:
    params: a data config with `aug_{min,max}_{area,aspect}_ratio`,
      `aug_flip` and, if `color`, `aug_color_jitter_prob`,
      `aug_color_jitter_strength`, `aug_grayscale_prob`, `aug_blur_prob`.
    color: False gives crop and flip only (downstream recognition).

  Returns:
    The augmentation.
  """
  spatial = dict(min_area_ratio=params.aug_min_area_ratio,
                 max_area_ratio=params.aug_max_area_ratio,
                 min_aspect_ratio=params.aug_min_aspect_ratio,
                 max_aspect_ratio=params.aug_max_aspect_ratio,
                 flip=params.aug_flip)
  if not color:
    return ClipAugmentation(color_jitter_prob=0.0, grayscale_prob=0.0,
                            blur_prob=0.0, **spatial)
  return ClipAugmentation(
      color_jitter_prob=params.aug_color_jitter_prob,
      color_jitter_strength=params.aug_color_jitter_strength,
      grayscale_prob=params.aug_grayscale_prob,
      blur_prob=params.aug_blur_prob, **spatial)


def _to_unit_float(frames: tf.Tensor, source_dtype: tf.DType) -> tf.Tensor:
  """Casts resized frames to float32 in [0, 1] (uint8 sources are / 255)."""
  frames = tf.cast(frames, tf.float32)
  if source_dtype == tf.uint8:
    frames = frames / 255.0
  return tf.clip_by_value(frames, 0.0, 1.0)


def _coin(prob: float) -> tf.Tensor:
  """A bool scalar that is True with probability `prob` (fresh per call)."""
  return tf.random.uniform([]) < prob


def _crop_resize(frames: tf.Tensor, begin: tf.Tensor, size: tf.Tensor,
                 output_size: Sequence[int]) -> Tuple[tf.Tensor, tf.Tensor]:
  """Crops the same pixel window of every frame and resizes it.

  Args:
    frames: [T, H, W, 3] uint8 or float in [0, 1].
    begin: int32 [2] top-left pixel (y, x) of the crop.
    size: int32 [2] pixel (height, width) of the crop.
    output_size: (out_h, out_w).

  Returns:
    frames: float32 [T, out_h, out_w, 3] in [0, 1].
    window: float32 [4] `(y0, x0, h, w)` normalized to the source frame.
  """
  shape = tf.shape(frames)
  cropped = tf.slice(frames, tf.stack([0, begin[0], begin[1], 0]),
                     tf.stack([shape[0], size[0], size[1], shape[3]]))
  out = tf.image.resize(cropped, output_size, method='bilinear')
  out = _to_unit_float(out, frames.dtype)
  out.set_shape([frames.shape[0], output_size[0], output_size[1], 3])
  hw = tf.cast(tf.stack([shape[1], shape[2]]), tf.float32)
  window = tf.concat([tf.cast(begin, tf.float32) / hw,
                      tf.cast(size, tf.float32) / hw], axis=0)
  return out, window


def random_resized_crop(
    frames: tf.Tensor,
    output_size: Sequence[int],
    area_range: Tuple[float, float] = (0.3, 1.0),
    aspect_ratio_range: Tuple[float, float] = (0.5, 2.0)
) -> Tuple[tf.Tensor, tf.Tensor]:
  """One random crop for the whole clip, resized to `output_size`.

  The crop covers a fraction of the frame area in `area_range` with a pixel
  aspect ratio (width / height) in `aspect_ratio_range` times the output's
  aspect ratio (as Model Garden's `preprocess_ops_3d.random_crop_resize`);
  after 100 failed attempts the whole frame is used.

  Args:
    frames: [T, H, W, 3] uint8 or float in [0, 1].
    output_size: (out_h, out_w).
    area_range: (min, max) crop area / frame area.
    aspect_ratio_range: (min, max) crop width / height.

  Returns:
    frames: float32 [T, out_h, out_w, 3] in [0, 1].
    window: float32 [4] `(y0, x0, h, w)` of the crop, normalized to the source.
  """
  shape = tf.shape(frames)
  factor = output_size[1] / output_size[0]
  begin, size, _ = tf.image.sample_distorted_bounding_box(
      shape[1:],
      bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
      min_object_covered=0.0,
      aspect_ratio_range=(aspect_ratio_range[0] * factor,
                          aspect_ratio_range[1] * factor),
      area_range=area_range,
      max_attempts=100,
      use_image_if_no_bounding_boxes=True)
  return _crop_resize(frames, begin[:2], size[:2], output_size)


def center_crop(frames: tf.Tensor,
                output_size: Sequence[int]) -> Tuple[tf.Tensor, tf.Tensor]:
  """Evaluation crop: scale the frame to cover `output_size`, crop the center.

  The frame is scaled by `max(out_h / H, out_w / W)` (for a square output:
  the shorter side becomes the output side) and the central `output_size`
  region is kept. Implemented as one crop of the corresponding source pixels
  followed by a resize, which is the same up to rounding to whole pixels.

  Args:
    frames: [T, H, W, 3] uint8 or float in [0, 1].
    output_size: (out_h, out_w).

  Returns:
    frames: float32 [T, out_h, out_w, 3] in [0, 1].
    window: float32 [4] `(y0, x0, h, w)` of the crop, normalized to the source.
  """
  shape = tf.shape(frames)
  hw = tf.cast(shape[1:3], tf.float32)
  out = tf.constant(output_size[:2], tf.float32)
  scale = tf.reduce_max(out / hw)
  size = tf.cast(tf.round(out / scale), tf.int32)
  size = tf.clip_by_value(size, 1, shape[1:3])
  begin = (shape[1:3] - size) // 2
  return _crop_resize(frames, begin, size, output_size)


def random_flip(frames: tf.Tensor,
                prob: float = 0.5) -> Tuple[tf.Tensor, tf.Tensor]:
  """Flips every frame left-right together, with probability `prob`.

  Args:
    frames: [T, H, W, C].
    prob: Flip probability.

  Returns:
    frames: [T, H, W, C].
    flipped: bool scalar.
  """
  flipped = _coin(prob)
  frames = tf.cond(flipped, lambda: tf.reverse(frames, axis=[2]),
                   lambda: frames)
  return frames, flipped


def color_jitter(frames: tf.Tensor, strength: float = 1.0) -> tf.Tensor:
  """Brightness, contrast, saturation, hue with one draw for the whole clip.

  Brightness multiplies by `U(1 - 0.8s, 1 + 0.8s)`; contrast and saturation
  use factors from the same range; hue shifts by `U(-0.2s, 0.2s)`.

  Args:
    frames: float32 [T, H, W, 3] in [0, 1].
    strength: s.

  Returns:
    float32 [T, H, W, 3] in [0, 1].
  """
  def factor(max_delta):
    return tf.random.uniform([], max(0.0, 1.0 - max_delta), 1.0 + max_delta)

  frames = tf.clip_by_value(frames * factor(0.8 * strength), 0.0, 1.0)
  frames = tf.clip_by_value(
      tf.image.adjust_contrast(frames, factor(0.8 * strength)), 0.0, 1.0)
  frames = tf.clip_by_value(
      tf.image.adjust_saturation(frames, factor(0.8 * strength)), 0.0, 1.0)
  hue = min(0.2 * strength, 0.5)
  frames = tf.image.adjust_hue(frames, tf.random.uniform([], -hue, hue))
  return tf.clip_by_value(frames, 0.0, 1.0)


def to_grayscale(frames: tf.Tensor) -> tf.Tensor:
  """[T, H, W, 3] -> [T, H, W, 3] with the luma copied to all channels."""
  return tf.tile(tf.image.rgb_to_grayscale(frames), [1, 1, 1, 3])


def blur_kernel_radius(side: int) -> int:
  """Radius of the blur kernel: kernel ~10% of the side (at least 3 taps)."""
  return max(1, (side // 10) // 2)


def gaussian_blur(frames: tf.Tensor, sigma: tf.Tensor,
                  radius: int) -> tf.Tensor:
  """Separable Gaussian blur of every frame (reflect padding).

  Args:
    frames: float32 [T, H, W, C], H and W > radius.
    sigma: float scalar standard deviation in pixels.
    radius: Kernel radius; the kernel has 2 * radius + 1 taps.

  Returns:
    float32 [T, H, W, C].
  """
  channels = frames.shape[-1]
  x = tf.range(-radius, radius + 1, dtype=tf.float32)
  kernel = tf.exp(-0.5 * tf.square(x / tf.cast(sigma, tf.float32)))
  kernel = kernel / tf.reduce_sum(kernel)
  kernel_v = tf.tile(tf.reshape(kernel, [-1, 1, 1, 1]), [1, 1, channels, 1])
  kernel_h = tf.tile(tf.reshape(kernel, [1, -1, 1, 1]), [1, 1, channels, 1])
  padded = tf.pad(frames, [[0, 0], [radius, radius], [radius, radius], [0, 0]],
                  mode='REFLECT')
  out = tf.nn.depthwise_conv2d(padded, kernel_v, [1, 1, 1, 1], 'VALID')
  return tf.nn.depthwise_conv2d(out, kernel_h, [1, 1, 1, 1], 'VALID')


def _maybe(prob: float, fn, frames: tf.Tensor) -> tf.Tensor:
  """Applies `fn` to the clip with probability `prob` (one coin per clip)."""
  if prob <= 0.0:
    return frames
  if prob >= 1.0:
    return fn(frames)
  return tf.cond(_coin(prob), lambda: fn(frames), lambda: frames)


def augment_clip(
    frames: tf.Tensor,
    output_size: Sequence[int],
    params: ClipAugmentation = ClipAugmentation()
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Training augmentation with one random draw shared by all frames.

  Order: random resized crop -> flip -> color jitter -> grayscale -> blur.

  Args:
    frames: [T, H, W, 3] uint8 (0..255) or float (0..1).
    output_size: (out_h, out_w).
    params: The augmentation's parameters.

  Returns:
    frames: float32 [T, out_h, out_w, 3] in [0, 1].
    window: float32 [4] `(y0, x0, h, w)` of the crop in the source frame.
    flipped: bool scalar.
  """
  out, window = random_resized_crop(
      frames, output_size, (params.min_area_ratio, params.max_area_ratio),
      (params.min_aspect_ratio, params.max_aspect_ratio))
  if params.flip:
    out, flipped = random_flip(out)
  else:
    flipped = tf.constant(False)
  out = _maybe(params.color_jitter_prob,
               lambda x: color_jitter(x, params.color_jitter_strength), out)
  out = _maybe(params.grayscale_prob, to_grayscale, out)
  radius = blur_kernel_radius(min(output_size[:2]))
  sigma_lo, sigma_hi = params.blur_sigma_range
  out = _maybe(
      params.blur_prob,
      lambda x: gaussian_blur(x, tf.random.uniform([], sigma_lo, sigma_hi),
                              radius), out)
  out = tf.clip_by_value(out, 0.0, 1.0)
  out.set_shape([frames.shape[0], output_size[0], output_size[1], 3])
  return out, window, flipped


def eval_clip(frames: tf.Tensor, output_size: Sequence[int]
             ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Evaluation view: center crop only (no flip, no color changes).

  Args:
    frames: [T, H, W, 3] uint8 (0..255) or float (0..1).
    output_size: (out_h, out_w).

  Returns:
    frames: float32 [T, out_h, out_w, 3] in [0, 1].
    window: float32 [4] `(y0, x0, h, w)` of the crop in the source frame.
    flipped: bool scalar, always False.
  """
  out, window = center_crop(frames, output_size)
  return out, window, tf.constant(False)
