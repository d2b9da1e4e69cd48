"""A small deterministic video world to run ConST-CL on a laptop.

Pure numpy. Each video films a crop of a scikit-image photograph with a
moving camera and one to three textured objects moving over it, each with a
track id, per-frame boxes and actions (`ACTIONS`): pretraining records
(paper §3, §4.1), AVA-style keyframes (§4.3) and tracking sequences (§4.4).
The class is the scene by default (`DemoWorldConfig.class_defined_by`); why,
and what the demo can and cannot show: docs/demo.md.
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

from official_projects_const_cl.dataloaders import demo_backgrounds

SHAPES = ('disk', 'square', 'triangle', 'cross', 'ring', 'star')
TEXTURES = ('stripes', 'checker', 'dots', 'rings', 'grid', 'solid')
ACTIONS = ('still', 'moving-left', 'moving-right', 'moving-up', 'moving-down',
           'rotating')
CLASS_DEFINITIONS = ('scene', 'shape_texture', 'shape', 'texture')


@dataclasses.dataclass(frozen=True)
class DemoWorldConfig:
  """Parameters of the demo world. Fractions refer to min(height, width).

  Attributes:
    num_classes: number of video classes (scenes, or main-object identities).
    num_frames: frames per video.
    height: frame height in pixels.
    width: frame width in pixels.
    frame_rate: frames per second (timestamps, AVA keyframes at whole seconds).
    min_objects: fewest objects per video (main object included).
    max_objects: most objects per video (main object + distractors).
    class_defined_by: 'scene' (the filmed photograph is the class, up to
      len(backgrounds) classes; objects are class-independent actors),
      'shape_texture' (the main object's shape and texture together define
      the class; up to 36 classes), 'shape' or 'texture' (the other attribute
      is a random nuisance; up to 6 classes).
    object_size: (min, max) main-object diameter as a fraction of the frame.
    distractor_size: (min, max) distractor diameter relative to the main one.
    object_speed: (min, max) speed of moving objects, fraction per frame.
    rotation_speed: (min, max) angular speed of rotating objects, rad/frame.
    num_action_segments: actions per object per video (switches at random
      frames; bounces off the frame border also change the action).
    texture_frequency: (min, max) texture cycles across the object diameter.
    min_color_contrast: min luminance difference of an object's two colours,
      so the texture survives grayscale augmentation.
    camera_zoom: (min, max) crop window height as a fraction of the photo's
      usable height.
    camera_zoom_change: max |log| zoom change over a video.
    camera_pan: max pan distance over a video, fraction of the photo height
      (values > 1 need `photos_per_video` > 1).
    photos_per_video: the background is a strip of this many photos side by
      side that the camera pans along, so distant clips of one video show
      different scenery (a background shared by the two views of a video is
      the easiest shortcut for a contrastive objective).
    object_color_drift: object colours move this far (0-1) from their first
      palette to a second one over a video (slow lighting change), so colour
      is not a shortcut between distant clips either.
    background_scale: photos are cached at this many times max(height,
      width) on their short side.
    backgrounds: names of `skimage.data` photographs.
    brightness_jitter: max absolute per-video brightness offset.
    contrast_jitter: max relative per-video contrast change.
    noise_std: std of per-pixel Gaussian noise (in [0, 1] units).
  """
  num_classes: int = 8
  num_frames: int = 32
  height: int = 64
  width: int = 64
  frame_rate: float = 10.0
  min_objects: int = 1
  max_objects: int = 3
  class_defined_by: str = 'scene'
  object_size: Tuple[float, float] = (0.4, 0.55)
  distractor_size: Tuple[float, float] = (0.4, 0.7)
  object_speed: Tuple[float, float] = (0.01, 0.03)
  rotation_speed: Tuple[float, float] = (0.08, 0.2)
  num_action_segments: int = 2
  texture_frequency: Tuple[float, float] = (2.5, 3.5)
  min_color_contrast: float = 0.35
  camera_zoom: Tuple[float, float] = (0.45, 0.85)
  camera_zoom_change: float = 0.35
  camera_pan: float = 0.35
  photos_per_video: int = 1
  object_color_drift: float = 0.0
  background_scale: float = 2.5
  backgrounds: Tuple[str, ...] = demo_backgrounds.BACKGROUND_PHOTOS
  brightness_jitter: float = 0.1
  contrast_jitter: float = 0.15
  noise_std: float = 0.02

  def __post_init__(self):
    if self.class_defined_by not in CLASS_DEFINITIONS:
      raise ValueError(f'class_defined_by must be one of {CLASS_DEFINITIONS}, '
                       f'got {self.class_defined_by!r}.')
    limit = (len(self.backgrounds) if self.class_defined_by == 'scene' else
             max_num_classes(self.class_defined_by))
    if not 1 <= self.num_classes <= limit:
      raise ValueError(f'num_classes must be in [1, {limit}] for '
                       f'class_defined_by={self.class_defined_by!r}, got '
                       f'{self.num_classes}.')
    if not 1 <= self.min_objects <= self.max_objects:
      raise ValueError('Need 1 <= min_objects <= max_objects, got '
                       f'{self.min_objects}, {self.max_objects}.')
    if self.max_objects > 1 and not _distractor_identities(self):
      raise ValueError(
          f'No distractor identity is left: all {len(SHAPES)} '
          f'{self.class_defined_by} values are classes; use max_objects=1 '
          'or fewer classes.')
    if self.num_frames < 1 or self.height < 8 or self.width < 8:
      raise ValueError('Need num_frames >= 1 and frames of at least 8x8, got '
                       f'{self.num_frames} frames of {self.height}x'
                       f'{self.width}.')
    for name in ('object_size', 'distractor_size', 'object_speed',
                 'rotation_speed', 'texture_frequency', 'camera_zoom'):
      lo, hi = getattr(self, name)
      if not 0 <= lo <= hi:
        raise ValueError(f'{name} must be (min, max) with 0 <= min <= max, '
                         f'got {(lo, hi)}.')
    if self.object_size[1] >= 1.0 or self.camera_zoom[1] > 1.0:
      raise ValueError('object_size must stay < 1 and camera_zoom <= 1, got '
                       f'{self.object_size} and {self.camera_zoom}.')
    if self.num_action_segments < 1:
      raise ValueError('num_action_segments must be >= 1.')
    if self.photos_per_video < 1 or not 0 <= self.object_color_drift <= 1:
      raise ValueError('Need photos_per_video >= 1 and object_color_drift in '
                       f'[0, 1], got {self.photos_per_video}, '
                       f'{self.object_color_drift}.')
    if not self.backgrounds:
      raise ValueError('backgrounds must name at least one skimage.data photo.')


@dataclasses.dataclass
class DemoVideo:
  """One rendered video. T frames, K objects (track 0 = the main object).

  Attributes:
    frames: uint8 [T, H, W, 3].
    class_id: the video class (identity of the main object).
    boxes: float32 [T, K, 4] normalized [ymin, xmin, ymax, xmax], amodal
      (occlusion by other objects ignored), tight around the rendered shape.
    track_ids: int32 [K], object identities constant over time.
    visibility: float32 [T, K], visible fraction of each object's area.
    actions: int32 [T, K], index into `ACTIONS` per frame and object.
    shapes: K shape names.
    textures: K texture names.
    colors: float32 [T, K, 2, 3], the two colours of each object per frame,
      in [0, 1] (before global brightness/contrast jitter and noise).
    camera: float32 [T, 4], crop window (center_y, center_x, height, width)
      in pixels of the background strip.
    background: names of the `skimage.data` photos of the strip, '+'-joined.
    frame_rate: frames per second.
  """
  frames: np.ndarray
  class_id: int
  boxes: np.ndarray
  track_ids: np.ndarray
  visibility: np.ndarray
  actions: np.ndarray
  shapes: Tuple[str, ...]
  textures: Tuple[str, ...]
  colors: np.ndarray
  camera: np.ndarray
  background: str
  frame_rate: float

  @property
  def num_objects(self) -> int:
    return int(self.track_ids.shape[0])

  @property
  def boxes_pixels(self) -> np.ndarray:
    """float32 [T, K, 4] boxes as pixel [ymin, xmin, ymax, xmax] edges."""
    h, w = self.frames.shape[1:3]
    return self.boxes * np.array([h, w, h, w], np.float32)


def max_num_classes(class_defined_by: str) -> int:
  """The number of distinct class identities a class definition allows."""
  if class_defined_by == 'shape_texture':
    return len(SHAPES) * len(TEXTURES)
  return len(SHAPES) if class_defined_by == 'shape' else len(TEXTURES)


def class_identity(class_id: int, cfg: DemoWorldConfig
                   ) -> Tuple[Optional[str], Optional[str]]:
  """(shape, texture) of a class; None marks an attribute that is a nuisance.

  Class i has shape i mod 6 and texture (i + i // 6) mod 6, so the first six
  classes differ in both attributes and all 36 pairs are reachable.
  """
  if not 0 <= class_id < cfg.num_classes:
    raise ValueError(f'class_id {class_id} outside [0, {cfg.num_classes}).')
  if cfg.class_defined_by == 'scene':
    return None, None
  if cfg.class_defined_by == 'shape':
    return SHAPES[class_id], None
  if cfg.class_defined_by == 'texture':
    return None, TEXTURES[class_id]
  return (SHAPES[class_id % len(SHAPES)],
          TEXTURES[(class_id + class_id // len(SHAPES)) % len(TEXTURES)])


def class_names(cfg: DemoWorldConfig) -> List[str]:
  """Human-readable class names, index = class id."""
  if cfg.class_defined_by == 'scene':
    return list(cfg.backgrounds[:cfg.num_classes])
  names = []
  for i in range(cfg.num_classes):
    shape, texture = class_identity(i, cfg)
    names.append('-'.join(s for s in (shape, texture) if s is not None))
  return names


def _distractor_identities(cfg: DemoWorldConfig) -> List[Tuple[str, str]]:
  """(shape, texture) pairs that do not show any class's identity."""
  if cfg.class_defined_by == 'scene':  # Objects say nothing of the class.
    return [(shape, texture) for shape in SHAPES for texture in TEXTURES]
  classes = [class_identity(i, cfg) for i in range(cfg.num_classes)]
  allowed = []
  for shape in SHAPES:
    for texture in TEXTURES:
      clash = any((cs is None or cs == shape) and (ct is None or ct == texture)
                  for cs, ct in classes)
      if not clash:
        allowed.append((shape, texture))
  return allowed


# ----------------------------------------------------------------------------
# Foreground objects. Local coordinates (a, b) are in units of the object
# radius, x to the right and y downwards, rotated with the object.


def _shape_distance(shape: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Signed distance-like field, < 0 inside, in units of the radius."""
  rho = np.sqrt(a * a + b * b)
  if shape == 'disk':
    return rho - 1.0
  if shape == 'square':
    return np.maximum(np.abs(a), np.abs(b)) - 0.8
  if shape == 'triangle':  # Equilateral, apex up, inscribed in the unit disk.
    return np.maximum.reduce([b, 0.866 * a - 0.5 * b,
                              -0.866 * a - 0.5 * b]) - 0.5
  if shape == 'cross':
    arm = lambda u, v: np.maximum(np.abs(u) - 0.95, np.abs(v) - 0.32)
    return np.minimum(arm(a, b), arm(b, a))
  if shape == 'ring':
    return np.abs(rho - 0.68) - 0.32
  if shape == 'star':
    phi = np.arctan2(b, a)
    return rho - (0.5 + 0.5 * ((1 + np.cos(5 * phi)) / 2) ** 1.5)
  raise ValueError(f'Unknown shape {shape!r}; expected one of {SHAPES}.')


def _texture(texture: str, a: np.ndarray, b: np.ndarray, freq: float,
             phase: np.ndarray) -> np.ndarray:
  """Mixing weight of the second colour in [0, 1]."""
  half = freq / 2  # Cycles per unit radius.
  if texture == 'solid':
    return np.zeros_like(a)
  if texture == 'stripes':
    return np.clip(0.5 + 2.5 * np.sin(2 * np.pi * (half * a + phase[0])),
                   0, 1)
  if texture == 'checker':
    s = (np.sin(2 * np.pi * (half * a + phase[0])) *
         np.sin(2 * np.pi * (half * b + phase[1])))
    return np.clip(0.5 + 4.0 * s, 0, 1)
  if texture == 'dots':
    fa = (half * a + phase[0]) % 1.0 - 0.5
    fb = (half * b + phase[1]) % 1.0 - 0.5
    return np.clip((0.3 - np.sqrt(fa * fa + fb * fb)) * 8 + 0.5, 0, 1)
  if texture == 'rings':
    rho = np.sqrt(a * a + b * b)
    return np.clip(0.5 + 2.5 * np.sin(2 * np.pi * (half * rho + phase[0])),
                   0, 1)
  if texture == 'grid':
    fa = (half * a + phase[0]) % 1.0
    fb = (half * b + phase[1]) % 1.0
    dist = np.minimum(np.minimum(fa, 1 - fa), np.minimum(fb, 1 - fb))
    return np.clip((0.14 - dist) * 8 + 0.5, 0, 1)
  raise ValueError(f'Unknown texture {texture!r}; expected one of {TEXTURES}.')


def _luminance(rgb: np.ndarray) -> float:
  return float(rgb @ np.array([0.299, 0.587, 0.114]))


def _object_colors(rng: np.random.Generator, min_contrast: float,
                   sign: float = 0.0) -> np.ndarray:
  """Two random colours [2, 3] whose luminance differs by >= min_contrast.

  A non-zero `sign` fixes which colour is the brighter one, so palettes can
  be interpolated without the contrast passing through zero.
  """
  for _ in range(100):
    c = rng.uniform(0.0, 1.0, size=(2, 3))
    diff = _luminance(c[1]) - _luminance(c[0])
    if abs(diff) >= min_contrast and diff * sign >= 0:
      return c.astype(np.float32)
  c[0], c[1] = np.full(3, 0.1), np.full(3, 0.9)  # Contrast is unreachable.
  return (c if sign >= 0 else c[::-1]).astype(np.float32)


def _object_color_path(rng: np.random.Generator, cfg: DemoWorldConfig
                       ) -> np.ndarray:
  """Colours [T, 2, 3] drifting from one palette towards a second one."""
  first = _object_colors(rng, cfg.min_color_contrast)
  sign = np.sign(_luminance(first[1]) - _luminance(first[0]))
  second = _object_colors(rng, cfg.min_color_contrast, sign)
  s = cfg.object_color_drift * np.linspace(0.0, 1.0, cfg.num_frames)
  s = s.astype(np.float32)[:, None, None]
  return (1 - s) * first + s * second


def _trajectory(rng: np.random.Generator, radius: float,
                cfg: DemoWorldConfig
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Positions [T, 2] (y, x pixels), angles [T] and action ids [T].

  Objects stay inside the frame and bounce off its border; the action of a
  frame is read from the motion actually executed at that frame.
  """
  num_frames, h, w = cfg.num_frames, cfg.height, cfg.width
  lo = np.array([radius, radius])
  hi = np.array([max(h - radius, radius), max(w - radius, radius)])
  pos = rng.uniform(lo, hi)
  angle = rng.uniform(0, 2 * np.pi)
  cuts = np.sort(rng.choice(np.arange(1, max(num_frames, 2)),
                            size=min(cfg.num_action_segments - 1,
                                     max(num_frames - 1, 0)), replace=False))
  segment_actions = rng.integers(0, len(ACTIONS), size=len(cuts) + 1)
  speeds = rng.uniform(*cfg.object_speed, size=len(cuts) + 1) * min(h, w)
  spins = (rng.uniform(*cfg.rotation_speed, size=len(cuts) + 1) *
           rng.choice([-1.0, 1.0], size=len(cuts) + 1))
  directions = {1: (0., -1.), 2: (0., 1.), 3: (-1., 0.), 4: (1., 0.)}
  positions = np.zeros((num_frames, 2), np.float32)
  angles = np.zeros(num_frames, np.float32)
  actions = np.zeros(num_frames, np.int32)
  segment = -1
  velocity, spin = np.zeros(2), 0.0
  for t in range(num_frames):
    if segment + 1 < len(segment_actions) and (
        segment < 0 or t >= cuts[segment]):
      segment += 1
      act = int(segment_actions[segment])
      velocity = np.array(directions.get(act, (0., 0.))) * speeds[segment]
      spin = spins[segment] if ACTIONS[act] == 'rotating' else 0.0
    if spin != 0.0:
      actions[t] = ACTIONS.index('rotating')
    elif np.abs(velocity).max() == 0:
      actions[t] = ACTIONS.index('still')
    elif velocity[1] != 0:
      actions[t] = ACTIONS.index(
          'moving-left' if velocity[1] < 0 else 'moving-right')
    else:
      actions[t] = ACTIONS.index(
          'moving-up' if velocity[0] < 0 else 'moving-down')
    positions[t], angles[t] = pos, angle
    pos = pos + velocity
    angle = angle + spin
    for i in range(2):  # Bounce: reflect the position and the velocity.
      if pos[i] < lo[i] or pos[i] > hi[i]:
        pos[i] = np.clip(2 * (lo[i] if pos[i] < lo[i] else hi[i]) - pos[i],
                         lo[i], hi[i])
        velocity[i] = -velocity[i]
  return positions, angles, actions


def _render_object(shape: str, texture: str, radius: float,
                   positions: np.ndarray, angles: np.ndarray, freq: float,
                   phase: np.ndarray, colors: np.ndarray, height: int,
                   width: int) -> Tuple[np.ndarray, np.ndarray]:
  """Coverage [T, H, W] in [0, 1] and appearance [T, H, W, 3] of one object.

  `colors` is [T, 2, 3]: the two texture colours per frame.
  """
  py = (np.arange(height, dtype=np.float32) + 0.5)[None, :, None]
  px = (np.arange(width, dtype=np.float32) + 0.5)[None, None, :]
  dy = py - positions[:, 0, None, None]
  dx = px - positions[:, 1, None, None]
  cos = np.cos(angles)[:, None, None]
  sin = np.sin(angles)[:, None, None]
  a = (cos * dx + sin * dy) / radius
  b = (-sin * dx + cos * dy) / radius
  coverage = np.clip(0.5 - _shape_distance(shape, a, b) * radius, 0.0, 1.0)
  mix = _texture(texture, a, b, freq, phase)[..., None]
  c0, c1 = colors[:, None, None, 0], colors[:, None, None, 1]
  appearance = c0 * (1 - mix) + c1 * mix
  return coverage.astype(np.float32), appearance.astype(np.float32)


def _tight_boxes(coverage: np.ndarray) -> np.ndarray:
  """Normalized [T, 4] boxes around pixels with coverage >= 0.5."""
  num_frames, h, w = coverage.shape
  inside = coverage >= 0.5
  rows, cols = inside.any(axis=2), inside.any(axis=1)
  boxes = np.zeros((num_frames, 4), np.float32)
  for t in range(num_frames):
    r, c = np.flatnonzero(rows[t]), np.flatnonzero(cols[t])
    if r.size:
      boxes[t] = (r[0] / h, c[0] / w, (r[-1] + 1) / h, (c[-1] + 1) / w)
  return boxes


def render_video(rng: np.random.Generator, class_id: int,
                 cfg: DemoWorldConfig) -> DemoVideo:
  """Renders one video of class `class_id`; deterministic given the rng state.

  Args:
    rng: numpy Generator; all randomness of the video is drawn from it.
    class_id: the class, in [0, cfg.num_classes).
    cfg: the world parameters.

  Returns:
    The `DemoVideo` (frames uint8 [T, H, W, 3], boxes [T, K, 4], ...).
  """
  shape, texture = class_identity(class_id, cfg)
  if shape is None:
    shape = SHAPES[rng.integers(len(SHAPES))]
  if texture is None:
    texture = TEXTURES[rng.integers(len(TEXTURES))]
  num_objects = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
  identities = [(shape, texture)]
  if num_objects > 1:
    allowed = _distractor_identities(cfg)
    for i in rng.integers(len(allowed), size=num_objects - 1):
      identities.append(allowed[i])

  side = min(cfg.height, cfg.width)
  main_diameter = rng.uniform(*cfg.object_size) * side
  diameters = [main_diameter] + list(
      main_diameter * rng.uniform(*cfg.distractor_size, size=num_objects - 1))

  num_frames, h, w = cfg.num_frames, cfg.height, cfg.width
  coverages, appearances = [], []
  actions = np.zeros((num_frames, num_objects), np.int32)
  colors = np.zeros((num_frames, num_objects, 2, 3), np.float32)
  for k, ((obj_shape, obj_texture), diameter) in enumerate(
      zip(identities, diameters)):
    radius = diameter / 2
    colors[:, k] = _object_color_path(rng, cfg)
    freq = rng.uniform(*cfg.texture_frequency)
    phase = rng.uniform(0, 1, size=2)
    positions, angles, actions[:, k] = _trajectory(rng, radius, cfg)
    coverage, appearance = _render_object(obj_shape, obj_texture, radius,
                                          positions, angles, freq, phase,
                                          colors[:, k], h, w)
    coverages.append(coverage)
    appearances.append(appearance)
  draw_order = rng.permutation(num_objects)

  # Background: crops of a photo (strip) along a smooth camera path,
  # channel-permuted and tinted per video so colours say nothing of the class.
  names = [cfg.backgrounds[i] for i in rng.integers(
      len(cfg.backgrounds), size=cfg.photos_per_video)]
  if cfg.class_defined_by == 'scene':  # The scene filmed is the class.
    names[0] = cfg.backgrounds[class_id]
  photo = demo_backgrounds.background_strip(rng, names,
                            int(round(cfg.background_scale * max(h, w))))
  camera = demo_backgrounds.camera_path(rng, photo.shape[:2], cfg)
  frames = demo_backgrounds.sample_background(photo, camera, h, w)
  frames = frames[..., rng.permutation(3)] * rng.uniform(
      0.75, 1.25, size=3).astype(np.float32)

  visible = [c.copy() for c in coverages]
  for rank, k in enumerate(draw_order):
    c = coverages[k][..., None]
    frames = frames * (1 - c) + appearances[k] * c
    for j in draw_order[:rank]:  # Objects drawn before k are occluded by it.
      visible[j] *= 1 - coverages[k]
  visibility = np.stack(
      [v.sum(axis=(1, 2)) / np.maximum(c.sum(axis=(1, 2)), 1e-6)
       for v, c in zip(visible, coverages)], axis=1).astype(np.float32)
  boxes = np.stack([_tight_boxes(c) for c in coverages], axis=1)

  contrast = np.float32(
      1 + rng.uniform(-cfg.contrast_jitter, cfg.contrast_jitter))
  brightness = np.float32(
      rng.uniform(-cfg.brightness_jitter, cfg.brightness_jitter))
  frames = (frames - 0.5) * contrast + 0.5 + brightness
  if cfg.noise_std > 0:
    frames = frames + np.float32(cfg.noise_std) * rng.standard_normal(
        frames.shape, dtype=np.float32)
  frames = np.clip(np.round(frames * 255), 0, 255).astype(np.uint8)

  return DemoVideo(
      frames=frames,
      class_id=int(class_id),
      boxes=boxes,
      track_ids=np.arange(num_objects, dtype=np.int32),
      visibility=np.clip(visibility, 0, 1),
      actions=actions,
      shapes=tuple(s for s, _ in identities),
      textures=tuple(t for _, t in identities),
      colors=colors,
      camera=camera,
      background='+'.join(names),
      frame_rate=float(cfg.frame_rate))


def video_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """The generator of video `index` of `split`: independent of other videos,
  so a video can be re-rendered alone (e.g. for AVA or tracking files)."""
  split_key = int.from_bytes(split.encode('utf-8'), 'little') % (2**63)
  return np.random.default_rng([int(seed), split_key, int(index)])


def class_schedule(seed: int, split: str, num_videos: int,
                   num_classes: int) -> np.ndarray:
  """Balanced class ids [num_videos] in a seeded random order (counts differ
  by at most one)."""
  classes = np.arange(num_videos) % num_classes
  split_key = int.from_bytes(split.encode('utf-8'), 'little') % (2**63)
  rng = np.random.default_rng([int(seed), 7919, num_videos, split_key])
  return rng.permutation(classes).astype(np.int32)


def world_summary(cfg: DemoWorldConfig) -> Dict[str, object]:
  """JSON-friendly config (tuples as lists) for manifests."""
  return json_ready(dataclasses.asdict(cfg))


def json_ready(value):
  if isinstance(value, dict):
    return {k: json_ready(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_ready(v) for v in value]
  return value
