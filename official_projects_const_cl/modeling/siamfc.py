r"""SiamFC parts, independent of the backbone (Bertinetto et al., ECCVW 2016).

"Fully-Convolutional Siamese Networks for Object Tracking": an embedding
phi is applied to an exemplar crop z (127 x 127, the target with context) and
to a search crop x (255 x 255, same center, 255/127 times larger); the score
map is the cross-correlation phi(z) * phi(x) (scaled by 1e-3, plus a learned
bias), trained with a class-balanced logistic loss against a disk of
positives around the center, and used for tracking with a scale pyramid,
bicubic upsampling, a cosine window and damped scale updates. Written from
the paper and the public reference implementations' documented behaviour
(the authors' MATLAB `bertinetto/siamese-fc` and the GOT-10k toolkit author's
`huanglianghua/siamfc-pytorch`), not copied from them.

The embedding is injected (a callable or a Keras model), so these parts work
with any backbone: see `SiamFCTracker` for its contract.

Conventions (every function here uses them):

* Boxes are `(x, y, w, h)` in pixels, 0-based, as the GOT-10k toolkit hands
  them to `Tracker.init` (OTB files are 1-based; the tracker answers in the
  frame of reference it was initialised in, and the OTB metrics are
  invariant to a common shift, see `evaluation/otb.py`).
* Pixel centers are integers: pixel i covers [i - 0.5, i + 0.5). A box
  covers pixels x .. x + w - 1, so its center is `x + (w - 1) / 2` (and
  `y + (h - 1) / 2`), as in OTB / the toolkit's `center_error` /
  siamfc-pytorch. Centers are stored `(cy, cx)`, sizes `(h, w)`.
* A square crop of side `size` (frame pixels, need not be an integer)
  centered at `c` covers the continuous extent [c - size / 2, c + size / 2);
  output pixel k (0 .. out_size - 1) is the bilinear sample at
  `c - size / 2 + (k + 0.5) * size / out_size` (half-pixel mapping, as
  OpenCV / `tf.image.resize`). Outside the image the frame is extended by
  `pad_value` (default: the image's per-channel mean), and bilinear samples
  near the border blend the two, exactly as padding the image first and
  then sampling. For an integer `size == out_size` with `c - size / 2 + 0.5`
  an integer this returns the frame's pixels unchanged. The references
  round the crop to whole pixels (siamfc-pytorch; the MATLAB crop is also
  shifted by one pixel); here the crop is sub-pixel exact. No antialiasing
  when shrinking (neither reference filters either).
* Score maps: cell (i, j) of a response of size (rh, rw) is the target
  displaced by `total_stride * (i - (rh - 1) / 2, j - (rw - 1) / 2)`
  search-crop pixels from the crop center. This is what SiamFC's AlexNet
  (valid convolutions, 127 -> 6 x 6, 255 -> 22 x 22, response 17 x 17)
  gives; an injected embedding must be aligned the same way.
"""

import collections
import dataclasses
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf
import tf_keras

from official.modeling import hyperparams

ArrayLike = Union[np.ndarray, tf.Tensor, Sequence[float]]


@dataclasses.dataclass
class SiamFCConfig(hyperparams.Config):
  """SiamFC hyperparameters; defaults are the published SiamFC-3s values.

  Sources: [M] the authors' MATLAB release `bertinetto/siamese-fc`
  (`tracking/tracker.m`, "default hyper-params for SiamFC-3S", and
  `training/experiment.m`, `make_siameseFC.m`); [P] `siamfc-pytorch` by the
  GOT-10k toolkit's author (`TrackerSiamFC.parse_args`, `Pair`); [E] the
  paper (ECCVW 2016). The paper's own tracker (SiamFC, 5 scales 1.025^{-2..2},
  scale damping 0.35; [M] `params-5s.txt`: 1.0255 / 0.962 / 0.34 / 0.168)
  differs from the 3-scale defaults used here and by [P].
  """
  # Crop geometry. [E] sec. 2.4 (127 / 255, context p = (w + h) / 4 on each
  # side, i.e. 0.5 * (w + h) in total); [M] p.exemplarSize, p.instanceSize,
  # p.contextAmount; [P] exemplar_sz, instance_sz, context.
  exemplar_size: int = 127
  instance_size: int = 255
  context_amount: float = 0.5
  # Score map of a 255 search crop and the network's stride. [E] sec. 2.4
  # (17 x 17, stride 8); [M] p.scoreSize, p.totalStride; [P] response_sz,
  # total_stride.
  response_size: int = 17
  total_stride: int = 8
  # Output adjustment: score = out_scale * xcorr + bias. [M] make_siameseFC:
  # add_adjust_layer(..., gain 1e-3, bias 0, lr_gain 0, lr_bias 1), i.e. a
  # fixed 1e-3 gain and a learned bias; [P] out_scale = 0.001 (no bias).
  out_scale: float = 0.001
  # Tracking (SiamFC-3s). [M] tracker.m: numScale 3, scaleStep 1.0375,
  # scalePenalty 0.9745, scaleLR 0.59, responseUp 16, windowing 'cosine',
  # wInfluence 0.176; [P] the same six numbers.
  scale_num: int = 3
  scale_step: float = 1.0375
  scale_penalty: float = 0.9745
  scale_lr: float = 0.59
  response_up: int = 16
  window_influence: float = 0.176
  # Size saturation relative to the initial size. [M] tracker.m:
  # min_s_x = 0.2 * s_x, max_s_x = 5 * s_x ([P] does not clip).
  min_scale: float = 0.2
  max_scale: float = 5.0
  # Training. [M] experiment.m: instanceSize = 255 - 2 * 8 (search crops of
  # 239, response 15 x 15, leaving room for the +-8 px translation
  # augmentation), loss.rPos = 16 (search-crop pixels; Euclidean distance to
  # the center, divided by the stride in create_labels), rNeg = 0,
  # labelWeight 'balanced', frameRange = 100 (vid_get_random_batch: x is
  # within 100 positions of z, before or after it, x != z, counted in the
  # track's list of valid frames); [P] r_pos = 16 (block distance, the same
  # 13 cells at radius 2 cells), RandomCrop(instance_sz - 2 * 8),
  # BalancedLoss, Pair: sorted frame indices with t_x - t_z < 100. The
  # pair sampler is not part of this module.
  train_instance_size: int = 239
  positive_radius: float = 16.0
  label_weighting: str = 'balanced'
  max_frame_gap: int = 100
  # Frame stacks for video backbones: the embedding receives, per crop, the
  # same window cut from frames t - n .. t + n (edge frames repeated). 0
  # means single frames. Our choice (not SiamFC).
  num_neighbors: int = 0


# ----------------------------------------------------------------------------
# Box and crop geometry.


def box_to_center_size(box: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
  """`(x, y, w, h)` -> center (y + (h-1) / 2, x + (w-1) / 2), size (h, w)."""
  x, y, w, h = [float(v) for v in np.asarray(box, np.float64).reshape(4)]
  return (np.array([y + (h - 1) / 2, x + (w - 1) / 2]), np.array([h, w]))


def center_size_to_box(center_yx: ArrayLike, size_hw: ArrayLike) -> np.ndarray:
  """Inverse of `box_to_center_size`: `(x, y, w, h)` as float64."""
  cy, cx = np.asarray(center_yx, np.float64)
  h, w = np.asarray(size_hw, np.float64)
  return np.array([cx - (w - 1) / 2, cy - (h - 1) / 2, w, h])


def exemplar_crop_size(box_wh: ArrayLike, context_amount: float = 0.5):
  """Side s_z of the exemplar crop in frame pixels.

  p = context_amount * (w + h); s_z = sqrt((w + p) * (h + p)) ([E] sec. 2.4:
  a square of area (w + 2p')(h + 2p') with p' = (w + h) / 4). Works on numpy
  values and on TF tensors (last axis `(w, h)`).

  Args:
    box_wh: `[..., 2]` target width and height.
    context_amount: Context as a fraction of w + h (SiamFC: 0.5).

  Returns:
    `[...]` crop side(s).
  """
  if not isinstance(box_wh, tf.Tensor):
    box_wh = np.asarray(box_wh, np.float64)
  w, h = box_wh[..., 0], box_wh[..., 1]
  p = context_amount * (w + h)
  return ((w + p) * (h + p)) ** 0.5


def search_crop_size(s_z, exemplar_size: int = 127, instance_size: int = 255):
  """s_x = s_z * instance_size / exemplar_size (same scale as the exemplar)."""
  return s_z * (instance_size / exemplar_size)


def _sample_coords(center, size, out_size: int):
  """Half-pixel sample coordinates `c - size/2 + (k + 0.5) * size / out`."""
  k = tf.range(out_size, dtype=tf.float32)
  return (center - size / 2.0)[..., None] + (k + 0.5) * (size[..., None] /
                                                          out_size)


def _interp_axis(values, coords, axis_len, pad, batched):
  """Linear interpolation along one axis; out-of-range grid points read `pad`.

  Rows (`batched=False`): `values` is the image `[H, W, C]`, `coords`
  `[S, out]` -> `[S, out, W, C]`. Columns (`batched=True`): `values` is
  `[S, out, W, C]` -> `[S, out, out, C]`.
  """
  lo = tf.floor(coords)
  frac = coords - lo
  lo = tf.cast(lo, tf.int32)
  out = 0.0
  for offset, weight in ((0, 1.0 - frac), (1, frac)):
    index = lo + offset
    valid = (index >= 0) & (index < axis_len)
    index = tf.clip_by_value(index, 0, axis_len - 1)
    if batched:
      gathered = tf.gather(values, index, axis=2, batch_dims=1)
      valid, weight = valid[:, None, :, None], weight[:, None, :, None]
    else:
      gathered = tf.gather(values, index, axis=0)
      valid, weight = valid[:, :, None, None], weight[:, :, None, None]
    out += weight * tf.where(valid, gathered, pad)
  return out


def crop_and_resize(image: ArrayLike,
                    center_yx: ArrayLike,
                    size: ArrayLike,
                    out_size: int,
                    pad_value: Optional[ArrayLike] = None) -> tf.Tensor:
  """Square crop(s) of `image` centered on `center_yx`, resized (TF).

  Graph-safe (dynamic image sizes; usable in tf.data). See the module
  docstring for the exact sampling convention.

  Args:
    image: `[H, W, C]` frame (any numeric dtype; computed in float32).
    center_yx: `[2]` crop center `(cy, cx)` in pixel coordinates.
    size: Scalar crop side in frame pixels, or `[S]` sides (a scale pyramid
      sharing the center).
    out_size: Output side in pixels.
    pad_value: `[C]` (or scalar) value of the frame outside the image;
      default the image's per-channel mean.

  Returns:
    float32 `[out_size, out_size, C]`, or `[S, out_size, out_size, C]` when
    `size` is a vector.
  """
  image = tf.convert_to_tensor(image)
  image = tf.cast(image, tf.float32)
  center = tf.cast(tf.convert_to_tensor(center_yx), tf.float32)
  size = tf.cast(tf.convert_to_tensor(size), tf.float32)
  scalar = size.shape.rank == 0
  sizes = tf.reshape(size, [-1])
  if pad_value is None:
    pad = tf.reduce_mean(image, axis=[0, 1])
  else:
    pad = tf.cast(tf.convert_to_tensor(pad_value), tf.float32)
  pad = tf.broadcast_to(pad, tf.shape(image)[-1:])
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  num = tf.shape(sizes)[0]
  ys = _sample_coords(tf.fill([num], center[0]), sizes, out_size)  # [S, out]
  xs = _sample_coords(tf.fill([num], center[1]), sizes, out_size)
  rows = _interp_axis(image, ys, height, pad, batched=False)  # [S, out, W, C]
  crops = _interp_axis(rows, xs, width, pad, batched=True)  # [S, out, out, C]
  return crops[0] if scalar else crops


def crop_and_resize_np(image: np.ndarray,
                       center_yx: ArrayLike,
                       size: Union[float, ArrayLike],
                       out_size: int,
                       pad_value: Optional[ArrayLike] = None) -> np.ndarray:
  """Numpy twin of `crop_and_resize` (same convention, float32 output).

  Used by the tracker (no TF op dispatch per crop). Shapes as
  `crop_and_resize`.
  """
  image = np.asarray(image, np.float32)
  if image.ndim == 2:
    image = image[..., None]
  pad = (image.mean(axis=(0, 1)) if pad_value is None else
         np.broadcast_to(np.asarray(pad_value, np.float32), image.shape[-1:]))
  pad = pad.astype(np.float32)
  cy, cx = np.asarray(center_yx, np.float64)
  sizes = np.atleast_1d(np.asarray(size, np.float64))
  k = np.arange(out_size, dtype=np.float64) + 0.5

  def weights(center, side, length):
    coords = center - side / 2 + k * side / out_size
    lo = np.floor(coords)
    frac = (coords - lo).astype(np.float32)
    lo = lo.astype(np.int64)
    out = []
    for index, weight in ((lo, 1.0 - frac), (lo + 1, frac)):
      valid = (index >= 0) & (index < length)
      out.append((np.clip(index, 0, length - 1), valid, weight))
    return out

  crops = []
  for side in sizes:
    rows = 0.0
    for index, valid, weight in weights(cy, side, image.shape[0]):
      rows = rows + weight[:, None, None] * np.where(
          valid[:, None, None], image[index], pad)
    crop = 0.0
    for index, valid, weight in weights(cx, side, image.shape[1]):
      crop = crop + weight[None, :, None] * np.where(
          valid[None, :, None], rows[:, index], pad)
    crops.append(crop.astype(np.float32))
  crops = np.stack(crops)
  return crops[0] if np.ndim(size) == 0 else crops


# ----------------------------------------------------------------------------
# Score map: cross-correlation and the SiamFC head.


def cross_correlation(exemplar_features: tf.Tensor,
                      search_features: tf.Tensor) -> tf.Tensor:
  """Per-pair dense cross-correlation (no kernel flip, valid positions).

  out[b, i, j] = sum_{u, v, c} z[b, u, v, c] * x[b, i + u, j + v, c].
  The batch is folded into the channels of one depthwise convolution, so
  each pair correlates only with itself. An exemplar batch of 1 is
  broadcast to the search batch (one exemplar, a scale pyramid).

  Args:
    exemplar_features: `[B or 1, hz, wz, C]`.
    search_features: `[B, hx, wx, C]`.

  Returns:
    `[B, hx - hz + 1, wx - wz + 1]`.
  """
  z = tf.convert_to_tensor(exemplar_features)
  x = tf.convert_to_tensor(search_features)
  z = tf.cast(z, x.dtype)
  zs, xs = tf.shape(z), tf.shape(x)
  batch, channels = xs[0], xs[3]
  z = tf.broadcast_to(z, tf.stack([batch, zs[1], zs[2], zs[3]]))
  # Input [1, hx, wx, B*C] (channel b*C + c); filter [hz, wz, B*C, 1].
  x_folded = tf.reshape(tf.transpose(x, [1, 2, 0, 3]),
                        tf.stack([1, xs[1], xs[2], batch * channels]))
  z_folded = tf.reshape(tf.transpose(z, [1, 2, 0, 3]),
                        tf.stack([zs[1], zs[2], batch * channels, 1]))
  out = tf.nn.depthwise_conv2d(x_folded, z_folded, strides=[1, 1, 1, 1],
                               padding='VALID')  # [1, ho, wo, B*C]
  os_ = tf.shape(out)
  out = tf.reshape(out, tf.stack([os_[1], os_[2], batch, channels]))
  return tf.transpose(tf.reduce_sum(out, axis=-1), [2, 0, 1])


@tf_keras.utils.register_keras_serializable(package='ConstCL')
class SiamFCHead(tf_keras.layers.Layer):
  """score = out_scale * (phi(z) * phi(x)) + bias, `[B, ho, wo]` logits.

  As the MATLAB release's 'adjust' layer: a 1x1 affine map with gain fixed
  at 1e-3 (learning rate 0) and a learned bias initialised at 0. Set
  `trainable_scale=True` to learn the gain as well.
  """

  def __init__(self, out_scale: float = 0.001, trainable_scale: bool = False,
               **kwargs):
    super().__init__(**kwargs)
    self._out_scale = float(out_scale)
    self._trainable_scale = bool(trainable_scale)

  def build(self, input_shape):
    self.scale = self.add_weight(
        name='scale', shape=(),
        initializer=tf_keras.initializers.Constant(self._out_scale),
        trainable=self._trainable_scale)
    self.bias = self.add_weight(name='bias', shape=(), initializer='zeros',
                                trainable=True)
    super().build(input_shape)

  def call(self, inputs, training=None):
    exemplar_features, search_features = inputs
    xcorr = cross_correlation(exemplar_features, search_features)
    return (tf.cast(self.scale, xcorr.dtype) * xcorr +
            tf.cast(self.bias, xcorr.dtype))

  def get_config(self) -> Dict[str, Any]:
    return {**super().get_config(), 'out_scale': self._out_scale,
            'trainable_scale': self._trainable_scale}


# ----------------------------------------------------------------------------
# Labels and loss.


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


def cosine_window(size: Union[int, Sequence[int]]) -> np.ndarray:
  """Hann x Hann window normalised to sum 1 (SiamFC's 'cosine' windowing).

  hann(n)[k] = 0.5 - 0.5 cos(2 pi k / (n - 1)) (symmetric: zero at both
  ends, as MATLAB's `hann` and `np.hanning`), outer product, / sum.
  """
  rh, rw = (size, size) if np.ndim(size) == 0 else tuple(size)
  window = np.outer(np.hanning(rh), np.hanning(rw))
  return window / window.sum()


def scale_factors(scale_num: int, scale_step: float) -> np.ndarray:
  """scale_step ** (-(n // 2) .. n // 2): search sizes relative to s_x."""
  half = scale_num // 2
  return scale_step ** np.linspace(-half, half, scale_num)


# ----------------------------------------------------------------------------
# Tracker.


def _as_frame(image) -> np.ndarray:
  """PIL image or array -> float32 `[H, W, 3]` (gray repeated, no alpha)."""
  if hasattr(image, 'mode') and image.mode not in ('RGB', 'L', 'F', 'I'):
    image = image.convert('RGB')
  frame = np.asarray(image, dtype=np.float32)
  if frame.ndim == 2:
    frame = np.repeat(frame[..., None], 3, axis=-1)
  if frame.shape[-1] == 1:
    frame = np.repeat(frame, 3, axis=-1)
  return frame[..., :3]


class SiamFCTracker:
  """SiamFC tracking with an injected embedding, GOT-10k `Tracker` interface.

  `init(image, box)`, `update(image) -> np.ndarray [x, y, w, h]`, `track(
  img_files, box) -> (boxes [N, 4], times [N])`, attributes `name` and
  `is_deterministic`, like `got10k.trackers.Tracker` (images may be PIL
  images, as the toolkit passes, or arrays; boxes 0-based, see the module
  docstring). The class does not import the toolkit; it is duck-typed to it.

  The embedding contract: `embed(crops)` receives float32 crops with pixel
  values as in the frames (e.g. 0..255; normalisation is the embedding's
  job):
    * `num_neighbors == 0`: `[S, H, W, 3]` (S = 1 for the exemplar,
      S = scale_num for the search pyramid);
    * `num_neighbors == n > 0`: `[S, 2n + 1, H, W, 3]`, the SAME window
      (center, side) cut from frames t - n .. t + n, current frame in the
      middle (what a frame-stack video backbone needs; the caller reduces
      its output to one map per crop).
  and returns features `[S, h, w, C]` (array or tensor), aligned as the
  module docstring says.

  Where the neighbours come from: `init` / `update` accept `neighbors`, the
  2n + 1 frames (current in the middle, edges already repeated). Without it
  (online use) the tracker builds the stack causally: the n previous frames
  it was given (the first frame repeated before the start) and the current
  frame repeated for the n future slots. `track(img_files, box)` knows the
  whole sequence and passes the true neighbours (indices clipped to the
  sequence: edge frames repeated).

  Per frame ([M] tracker.m / tracker_eval.m, [P] update):
    1. search crops of sides s_x * scale_step^{-1, 0, 1} at the previous
       center (pad: the first frame's mean color), resized to 255;
    2. responses = head(phi(z), phi(x)) (`head` or out_scale * xcorr),
       each upsampled by response_up with bicubic interpolation
       (`tf.image.resize`, half-pixel centers, Keys a = -0.5 like MATLAB's
       imresize; [P] uses OpenCV's a = -0.75);
    3. non-unit scales multiplied by scale_penalty (as both references; it
       penalises only positive peaks), best scale = highest peak;
    4. that map: minus its min, divided by its sum, blended
       (1 - window_influence) * map + window_influence * hann window;
    5. peak (first argmax) -> displacement from the map center
       (U - 1) / 2 in upsampled cells, * total_stride / response_up
       (search-crop px), * s_x * scale / instance_size (frame px); the
       center moves by it ([M] measures from ceil(U / 2) 1-based, a quarter
       of a search pixel off; [P] and this use the exact center);
    6. size factor *= (1 - scale_lr) + scale_lr * scale, clipped to
       [min_scale, max_scale] of the initial size ([M] clips s_x only); the
       target size, s_z and s_x are the initial ones times that factor.
  The center is not clipped to the image (neither reference does).
  """

  def __init__(self,
               embed: Callable[[np.ndarray], Any],
               config: Optional[SiamFCConfig] = None,
               head: Optional[Callable[[Tuple[Any, Any]], Any]] = None,
               name: str = 'SiamFC',
               is_deterministic: bool = True):
    """Initializes the tracker.

    Args:
      embed: The embedding (see the class docstring for the contract).
      config: Hyperparameters; default `SiamFCConfig()`.
      head: Optional trained `SiamFCHead` (or any callable on
        `(exemplar_features, search_features)` returning `[S, rh, rw]`);
        default `config.out_scale * cross_correlation(...)`.
      name: Tracker name (the toolkit's result folder).
      is_deterministic: The toolkit's flag (run once per sequence).
    """
    self.name = name
    self.is_deterministic = is_deterministic
    self.embed = embed
    self.head = head
    self.config = config if config is not None else SiamFCConfig()
    self.scale_factors = scale_factors(self.config.scale_num,
                                       self.config.scale_step)
    self._windows = {}
    self._history = collections.deque(maxlen=max(self.config.num_neighbors,
                                                 1))
    # Diagnostics of the last update (the chosen scale index, the map).
    self.last_scale_index = None
    self.last_response = None

  # -- frame stacks ----------------------------------------------------------

  def _stack(self, frame: np.ndarray, neighbors) -> List[np.ndarray]:
    n = self.config.num_neighbors
    if n == 0:
      return [frame]
    if neighbors is not None:
      stack = [_as_frame(f) for f in neighbors]
      if len(stack) != 2 * n + 1:
        raise ValueError(f'Expected {2 * n + 1} frames, got {len(stack)}.')
      return stack
    past = list(self._history)
    past = [past[0]] * (n - len(past)) + past if past else [frame] * n
    return past[-n:] + [frame] * (n + 1)

  def _crops(self, stack: List[np.ndarray], sizes: np.ndarray,
             out_size: int) -> np.ndarray:
    crops = [crop_and_resize_np(f, self.center, sizes, out_size,
                                pad_value=self.avg_color) for f in stack]
    if self.config.num_neighbors == 0:
      return crops[0]  # [S, out, out, 3]
    return np.stack(crops, axis=1)  # [S, T, out, out, 3]

  def _window(self, shape: Tuple[int, int]) -> np.ndarray:
    if shape not in self._windows:
      self._windows[shape] = cosine_window(shape)
    return self._windows[shape]

  def _responses(self, search_features) -> np.ndarray:
    inputs = (self._kernel, tf.convert_to_tensor(search_features, tf.float32))
    if self.head is not None:
      out = self.head(inputs)
    else:
      out = self.config.out_scale * cross_correlation(*inputs)
    return np.asarray(out, np.float32)

  # -- the toolkit interface -------------------------------------------------

  def init(self, image, box, neighbors=None) -> None:
    """Starts tracking the 0-based `(x, y, w, h)` box in `image`."""
    cfg = self.config
    frame = _as_frame(image)
    self.center, self.target_sz = box_to_center_size(box)
    self.base_target_sz = self.target_sz.copy()
    self.base_z_sz = float(exemplar_crop_size(self.target_sz[::-1],
                                              cfg.context_amount))
    self.base_x_sz = float(search_crop_size(self.base_z_sz, cfg.exemplar_size,
                                            cfg.instance_size))
    self.size_factor = 1.0
    self.z_sz, self.x_sz = self.base_z_sz, self.base_x_sz
    # [M] / [P]: the padding color is the first frame's mean, kept.
    self.avg_color = frame.mean(axis=(0, 1))
    self._history.clear()
    z = self._crops(self._stack(frame, neighbors), np.array([self.z_sz]),
                    cfg.exemplar_size)
    self._kernel = tf.convert_to_tensor(self.embed(z), tf.float32)
    self._history.append(frame)

  def update(self, image, neighbors=None) -> np.ndarray:
    """Locates the target in the next frame; returns `(x, y, w, h)`."""
    cfg = self.config
    frame = _as_frame(image)
    scales = self.scale_factors
    x = self._crops(self._stack(frame, neighbors), self.x_sz * scales,
                    cfg.instance_size)
    responses = self._responses(self.embed(x))  # [S, rh, rw]
    rh, rw = responses.shape[1:]
    up_shape = (rh * cfg.response_up, rw * cfg.response_up)
    if cfg.response_up > 1:
      responses = tf.image.resize(responses[..., None], up_shape,
                                  method='bicubic')[..., 0].numpy()
    mid = cfg.scale_num // 2
    penalty = np.full([cfg.scale_num], cfg.scale_penalty, np.float32)
    penalty[mid] = 1.0
    responses = responses * penalty[:, None, None]
    best = int(np.argmax(responses.reshape(cfg.scale_num, -1).max(axis=1)))
    response = responses[best] - responses[best].min()
    response = response / (response.sum() + 1e-16)
    response = ((1 - cfg.window_influence) * response +
                cfg.window_influence * self._window(up_shape))
    loc = np.array(np.unravel_index(np.argmax(response), response.shape),
                   np.float64)
    disp_up = loc - (np.array(up_shape, np.float64) - 1) / 2
    disp_search = disp_up * cfg.total_stride / cfg.response_up
    disp_frame = disp_search * self.x_sz * scales[best] / cfg.instance_size
    self.center = self.center + disp_frame
    step = (1 - cfg.scale_lr) + cfg.scale_lr * scales[best]
    self.size_factor = float(np.clip(self.size_factor * step, cfg.min_scale,
                                     cfg.max_scale))
    self.target_sz = self.base_target_sz * self.size_factor
    self.z_sz = self.base_z_sz * self.size_factor
    self.x_sz = self.base_x_sz * self.size_factor
    self.last_scale_index, self.last_response = best, response
    self._history.append(frame)
    return center_size_to_box(self.center, self.target_sz)

  def track(self, img_files: Sequence[str], box, visualize: bool = False
            ) -> Tuple[np.ndarray, np.ndarray]:
    """Runs a sequence like the toolkit's `Tracker.track`.

    Reads each image with PIL (converted to RGB), times `init` / `update`
    per frame; `boxes[0]` is the given box. With `num_neighbors > 0` the
    true neighbouring frames (edges repeated) are passed. `visualize` is
    accepted for interface compatibility and ignored.

    Returns:
      boxes `[N, 4]` (0-based x, y, w, h) and times `[N]` in seconds.
    """
    del visualize
    from PIL import Image  # pylint: disable=g-import-not-at-top

    def read(path):
      with Image.open(path) as image:
        return image.convert('RGB') if image.mode != 'RGB' else image.copy()

    num = len(img_files)
    n = self.config.num_neighbors
    boxes = np.zeros((num, 4))
    boxes[0] = box
    times = np.zeros(num)
    cache = {}
    for f in range(num):
      if n == 0:
        image, neighbors = read(img_files[f]), None
      else:
        wanted = [min(max(f + k, 0), num - 1) for k in range(-n, n + 1)]
        cache = {i: cache[i] if i in cache else read(img_files[i])
                 for i in sorted(set(wanted))}
        neighbors = [cache[i] for i in wanted]
        image = cache[f]
      start = time.time()
      if f == 0:
        self.init(image, box, neighbors=neighbors)
      else:
        boxes[f] = self.update(image, neighbors=neighbors)
      times[f] = time.time() - start
    return boxes, times
