r"""SiamFC tracking with an injected embedding (Bertinetto et al., ECCVW 2016).

The inference loop: scale pyramid, bicubic upsampling, cosine window, damped
scale updates (sec. 2.4). Written from the paper and the documented behaviour
of the MATLAB release `bertinetto/siamese-fc` [M] and `siamfc-pytorch` [P].
Crops: `ops/siamfc_crops.py`; head: `modeling/heads/siamfc_head.py`; loss:
`losses/siamfc_loss.py`; hyperparameters: `configs/siamfc.py`. Boxes are
`(x, y, w, h)`, 0-based, as the GOT-10k toolkit hands them to `Tracker.init`.
"""

import collections
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from official_projects_const_cl.configs import siamfc as siamfc_cfg
from official_projects_const_cl.modeling.heads import siamfc_head
from official_projects_const_cl.ops import box_ops
from official_projects_const_cl.ops import siamfc_crops


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
  and returns features `[S, h, w, C]` (array or tensor), aligned as
  `modeling/heads/siamfc_head.py` says (cell (i, j) is the target displaced
  by `total_stride * (i - (h - 1) / 2, j - (w - 1) / 2)` search pixels).

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
               config: Optional[siamfc_cfg.SiamFCConfig] = None,
               head: Optional[Callable[[Tuple[Any, Any]], Any]] = None,
               name: str = 'SiamFC',
               is_deterministic: bool = True):
    """Initializes the tracker.

    Args:
      embed: The embedding (see the class docstring for the contract).
      config: Hyperparameters; default `SiamFCConfig()`.
      head: Optional trained `SiamFCHead` (or any callable on
        `(exemplar_features, search_features)` returning `[S, rh, rw]`);
        default `config.out_scale * siamfc_head.cross_correlation(...)`.
      name: Tracker name (the toolkit's result folder).
      is_deterministic: The toolkit's flag (run once per sequence).
    """
    self.name = name
    self.is_deterministic = is_deterministic
    self.embed = embed
    self.head = head
    self.config = config if config is not None else siamfc_cfg.SiamFCConfig()
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
    crops = [siamfc_crops.crop_and_resize_np(f, self.center, sizes, out_size,
                                             pad_value=self.avg_color)
             for f in stack]
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
      out = self.config.out_scale * siamfc_head.cross_correlation(*inputs)
    return np.asarray(out, np.float32)

  # -- the toolkit interface -------------------------------------------------

  def init(self, image, box, neighbors=None) -> None:
    """Starts tracking the 0-based `(x, y, w, h)` box in `image`."""
    cfg = self.config
    frame = _as_frame(image)
    self.center, self.target_sz = box_ops.box_to_center_size(box)
    self.base_target_sz = self.target_sz.copy()
    self.base_z_sz = float(siamfc_crops.exemplar_crop_size(
        self.target_sz[::-1], cfg.context_amount))
    self.base_x_sz = float(siamfc_crops.search_crop_size(
        self.base_z_sz, cfg.exemplar_size, cfg.instance_size))
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
    return box_ops.center_size_to_box(self.center, self.target_sz)

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
