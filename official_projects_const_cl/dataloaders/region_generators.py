"""Region boxes for the local (region-level) loss of ConST-CL.

Implements the region priors of the ConST-CL supplementary material §2:

* `random_boxes`: 8 random boxes per frame, aspect ratio in [0.5, 2], side in
  [0.1, 0.5] of the frame. Every value is an independent, fresh draw (no op
  seeds): boxes differ between frames, views and examples, and the
  coordinates are not functions of one another (docs/choices.md: the public
  reference's fixed seed put every box on the image diagonal).
* `segment_boxes`: boxes of SLIC superpixels (16 per frame) or
  Felzenszwalb–Huttenlocher segments (scale = min size in {500, 1000}); each
  segment becomes its minimal bounding box and boxes whose width or height is
  outside [0.05, 0.7] of the frame are dropped.
* `transform_boxes`: maps boxes of a source frame (SLIC/FH boxes, boxes
  stored in the TFRecord) into an augmented view (crop window + flip).
* `pad_boxes`: a variable number of boxes per frame -> fixed [T, N, 4] + mask.

All boxes are normalized `[ymin, xmin, ymax, xmax]` of the frame they belong
to (team contract).
"""

from typing import Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage
from skimage import segmentation
import tensorflow as tf

SEGMENT_METHODS = ('slic', 'fh')

# A transformed box is kept when it still covers at least this fraction of the
# view's height and width (smaller slivers are marked invalid).
MIN_VISIBLE_EXTENT = 0.02


def random_boxes(num_frames: Union[int, tf.Tensor],
                 num_boxes: int,
                 min_size: float = 0.1,
                 max_size: float = 0.5,
                 min_aspect_ratio: float = 0.5,
                 max_aspect_ratio: float = 2.0) -> tf.Tensor:
  """Draws fresh random boxes, independently for every frame and box.

  Width `w ~ U(min_size, max_size)`; height
  `h ~ U(max(min_size, w / max_ar), min(max_size, w / min_ar))`, so that both
  sides are in [min_size, max_size] and the aspect ratio `w / h` is in
  [min_ar, max_ar]; then `ymin ~ U(0, 1 - h)` and `xmin ~ U(0, 1 - w)`. The
  four draws are separate stateful random ops without seeds, so each call
  (each example, each view, inside `tf.data` too) gets new values. Sides and
  aspect ratio are measured in normalized coordinates, i.e. relative to the
  frame (they equal pixel units on the square views used for pretraining).

  Args:
    num_frames: T, number of frames.
    num_boxes: N, boxes per frame.
    min_size: Smallest side, as a fraction of the frame side.
    max_size: Largest side, as a fraction of the frame side.
    min_aspect_ratio: Smallest width / height; must be <= 1.
    max_aspect_ratio: Largest width / height; must be >= 1.

  Returns:
    float32 [T, N, 4] boxes `[ymin, xmin, ymax, xmax]` in [0, 1].

  Raises:
    ValueError: if the ranges are empty or cannot be satisfied together.
  """
  if not 0.0 < min_size <= max_size <= 1.0:
    raise ValueError('random_boxes needs 0 < min_size <= max_size <= 1, got '
                     f'min_size={min_size}, max_size={max_size}.')
  if not 0.0 < min_aspect_ratio <= 1.0 <= max_aspect_ratio:
    raise ValueError('random_boxes needs 0 < min_aspect_ratio <= 1 <= '
                     f'max_aspect_ratio, got {min_aspect_ratio}, '
                     f'{max_aspect_ratio}.')
  shape = tf.stack([tf.convert_to_tensor(num_frames, tf.int32),
                    tf.constant(num_boxes, tf.int32)])
  width = tf.random.uniform(shape, min_size, max_size)
  h_low = tf.maximum(min_size, width / max_aspect_ratio)
  h_high = tf.minimum(max_size, width / min_aspect_ratio)
  height = h_low + (h_high - h_low) * tf.random.uniform(shape)
  ymin = (1.0 - height) * tf.random.uniform(shape)
  xmin = (1.0 - width) * tf.random.uniform(shape)
  boxes = tf.stack([ymin, xmin, ymin + height, xmin + width], axis=-1)
  if isinstance(num_frames, int):
    boxes.set_shape([num_frames, num_boxes, 4])
  return boxes


def segment_boxes(frame: np.ndarray,
                  method: str,
                  num_segments: int = 16,
                  fh_scale: float = 500.0,
                  min_size: float = 0.05,
                  max_size: float = 0.7) -> np.ndarray:
  """Boxes of low-level image segments of one frame (supplementary §2).

  SLIC: `slic(n_segments=num_segments, start_label=0)`. FH:
  `felzenszwalb(scale=fh_scale, min_size=fh_scale)` (the paper sets the scale
  equal to the minimum cluster size, 500 or 1000). The `num_segments` largest
  segments (by pixel count) are kept, largest first; each becomes its minimal
  bounding box, and boxes whose width or height is outside
  [min_size, max_size] of the frame are dropped.

  Args:
    frame: uint8 [H, W, 3] image.
    method: 'slic' or 'fh'.
    num_segments: Segments to generate (SLIC) / keep (both).
    fh_scale: FH scale and minimum segment size in pixels.
    min_size: Smallest kept box side, as a fraction of the frame side.
    max_size: Largest kept box side, as a fraction of the frame side.

  Returns:
    float32 [K, 4] normalized boxes, K <= num_segments, largest segment first.
  """
  frame = np.asarray(frame)
  if frame.ndim != 3 or frame.shape[-1] != 3:
    raise ValueError(f'segment_boxes expects an [H, W, 3] frame, got shape '
                     f'{frame.shape}.')
  if method == 'slic':
    labels = segmentation.slic(frame, n_segments=num_segments, start_label=0)
  elif method == 'fh':
    labels = segmentation.felzenszwalb(frame, scale=fh_scale,
                                       min_size=int(fh_scale))
  else:
    raise ValueError(f'Unknown segment method {method!r}; expected one of '
                     f'{SEGMENT_METHODS}.')
  height, width = labels.shape
  counts = np.bincount(labels.ravel())
  # `find_objects` treats 0 as background, hence the + 1.
  slices = ndimage.find_objects(labels + 1)
  order = np.argsort(-counts, kind='stable')[:num_segments]
  boxes = []
  for label in order:
    if counts[label] == 0 or slices[label] is None:
      continue
    rows, cols = slices[label]
    box = (rows.start / height, cols.start / width, rows.stop / height,
           cols.stop / width)
    box_h, box_w = box[2] - box[0], box[3] - box[1]
    if min_size <= box_h <= max_size and min_size <= box_w <= max_size:
      boxes.append(box)
  return np.asarray(boxes, np.float32).reshape(-1, 4)


def _segment_boxes_clip(frames: np.ndarray, method: bytes, num_boxes: int,
                        num_segments: int, fh_scale: float, min_size: float,
                        max_size: float) -> Tuple[np.ndarray, np.ndarray]:
  """numpy: [T, H, W, 3] -> ([T, N, 4], [T, N]) padded segment boxes."""
  method = method.decode() if isinstance(method, bytes) else method
  num_frames = frames.shape[0]
  boxes = np.zeros((num_frames, num_boxes, 4), np.float32)
  mask = np.zeros((num_frames, num_boxes), np.float32)
  for t in range(num_frames):
    frame_boxes = segment_boxes(frames[t], method, int(num_segments),
                                float(fh_scale), float(min_size),
                                float(max_size))[:num_boxes]
    boxes[t, :len(frame_boxes)] = frame_boxes
    mask[t, :len(frame_boxes)] = 1.0
  return boxes, mask


def segment_boxes_tf(frames: tf.Tensor,
                     method: str,
                     num_boxes: int,
                     num_segments: int = 16,
                     fh_scale: float = 500.0,
                     min_size: float = 0.05,
                     max_size: float = 0.7) -> Tuple[tf.Tensor, tf.Tensor]:
  """`segment_boxes` on every frame of a clip, for use inside `tf.data`.

  Runs scikit-image through `tf.numpy_function` (frame by frame, on the CPU of
  the input pipeline; not serializable for tf.data service).

  Args:
    frames: uint8 [T, H, W, 3].
    method: 'slic' or 'fh'.
    num_boxes: N, boxes per frame in the output (largest segments first).
    num_segments: See `segment_boxes`.
    fh_scale: See `segment_boxes`.
    min_size: See `segment_boxes`.
    max_size: See `segment_boxes`.

  Returns:
    boxes: float32 [T, N, 4], zeros where padded.
    mask: float32 [T, N], 1.0 for a real box.
  """
  if method not in SEGMENT_METHODS:
    raise ValueError(f'Unknown segment method {method!r}; expected one of '
                     f'{SEGMENT_METHODS}.')
  frames = tf.convert_to_tensor(frames)
  boxes, mask = tf.numpy_function(
      _segment_boxes_clip,
      [frames, method, num_boxes, num_segments, fh_scale, min_size, max_size],
      [tf.float32, tf.float32], stateful=False)
  num_frames = frames.shape[0]
  boxes.set_shape([num_frames, num_boxes, 4])
  mask.set_shape([num_frames, num_boxes])
  return boxes, mask


def transform_boxes(
    boxes: tf.Tensor,
    crop_window: Union[tf.Tensor, Sequence[float]],
    flipped: Union[tf.Tensor, bool],
    min_extent: float = MIN_VISIBLE_EXTENT) -> Tuple[tf.Tensor, tf.Tensor]:
  """Maps boxes of a source frame into an augmented (cropped, flipped) view.

  Boxes are clipped to the crop window, renormalized to the window, and
  mirrored horizontally when the view was flipped. A box stays valid when its
  visible part is at least `min_extent` of the view in both height and
  width; boxes outside the crop or reduced to slivers are invalid (their
  coordinates are still returned, clipped, for the caller to mask).

  Args:
    boxes: float [..., 4] `[ymin, xmin, ymax, xmax]` normalized to the source.
    crop_window: float [4] `(y0, x0, h, w)` of the crop, normalized to the
      source frame (as returned by `augmentations`).
    flipped: bool scalar, whether the view was flipped left-right.
    min_extent: Smallest visible height/width, as a fraction of the view.

  Returns:
    boxes: float32 [..., 4] in view coordinates, within [0, 1].
    valid: bool [...].
  """
  boxes = tf.cast(boxes, tf.float32)
  y0, x0, h, w = tf.unstack(tf.cast(crop_window, tf.float32))
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
  ymin = tf.clip_by_value((ymin - y0) / h, 0.0, 1.0)
  ymax = tf.clip_by_value((ymax - y0) / h, 0.0, 1.0)
  xmin = tf.clip_by_value((xmin - x0) / w, 0.0, 1.0)
  xmax = tf.clip_by_value((xmax - x0) / w, 0.0, 1.0)
  flipped = tf.cast(flipped, tf.bool)
  xmin, xmax = (tf.where(flipped, 1.0 - xmax, xmin),
                tf.where(flipped, 1.0 - xmin, xmax))
  valid = tf.logical_and(ymax - ymin >= min_extent, xmax - xmin >= min_extent)
  return tf.stack([ymin, xmin, ymax, xmax], axis=-1), valid


def pad_boxes(boxes: Union[tf.Tensor, tf.RaggedTensor],
              mask: Optional[tf.Tensor],
              num_boxes: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """Gives every frame exactly `num_boxes` boxes (valid ones first).

  Valid boxes are moved to the front of each frame (stable order), then the
  box axis is truncated or zero-padded to `num_boxes`. Boxes whose mask is 0
  are zeroed.

  Args:
    boxes: float [T, K, 4] dense boxes with `mask`, or a ragged
      [T, (K), 4] tensor (then `mask` must be None: every box is valid).
    mask: [T, K] validity (bool or 0/1 float), or None for all valid.
    num_boxes: N.

  Returns:
    boxes: float32 [T, N, 4].
    mask: float32 [T, N].
  """
  if isinstance(boxes, tf.RaggedTensor):
    if mask is not None:
      raise ValueError('pad_boxes: give a mask only with dense boxes.')
    mask = tf.ones_like(boxes[..., 0], tf.float32).to_tensor(0.0)
    boxes = boxes.to_tensor(0.0)
  boxes = tf.cast(boxes, tf.float32)
  if mask is None:
    mask = tf.ones_like(boxes[..., 0])
  mask = tf.cast(tf.cast(mask, tf.bool), tf.float32)
  # Valid boxes first, keeping their order.
  order = tf.argsort(-mask, axis=-1, stable=True)
  boxes = tf.gather(boxes, order, batch_dims=1)
  mask = tf.gather(mask, order, batch_dims=1)
  boxes = boxes[:, :num_boxes]
  mask = mask[:, :num_boxes]
  pad = tf.maximum(num_boxes - tf.shape(mask)[1], 0)
  boxes = tf.pad(boxes, [[0, 0], [0, pad], [0, 0]])
  mask = tf.pad(mask, [[0, 0], [0, pad]])
  boxes = boxes * mask[..., None]
  num_frames = boxes.shape[0]
  boxes.set_shape([num_frames, num_boxes, 4])
  mask.set_shape([num_frames, num_boxes])
  return boxes, mask
