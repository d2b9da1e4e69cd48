"""SiamFC training pairs from GOT-10k-layout sequences (supplementary §3.3).

A pair is an exemplar frame z and a search frame x of one sequence with
|t_x - t_z| <= `max_frame_gap` (SiamFC: 100), both with the target visible
(GOT-10k `absence.label`, when present, and a box of positive size). Each
frame comes as a stack of itself and its n neighbours on each side (edge
frames repeated, `ops/temporal.py:neighbor_indices`); every frame of a
stack is cropped with the SAME window, the one of the center frame's box:

* exemplar: side s_z = sqrt((w + p)(h + p)), p = context (w + h), resized to
  `exemplar_size`;
* search: side s_z * instance_size / exemplar_size, centered on the target,
  resized to `train_instance_size` (SiamFC: 255 - 2 * 8), optionally
  stretched by a random factor in [1 - stretch, 1 + stretch] (SiamFC's
  scale augmentation; the target stays centered, so the label map is fixed).

Crops outside the frame are padded with the frame's mean color. Output
float32 in [0, 1]: 'exemplar' [2n + 1, E, E, 3], 'search' [2n + 1, S, S, 3].
"""

import dataclasses
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from official_projects_const_cl.dataloaders import tracking_datasets
from official_projects_const_cl.ops import box_ops
from official_projects_const_cl.ops import siamfc_crops
from official_projects_const_cl.ops import temporal

_TrackingSequence = tracking_datasets.TrackingSequence


def valid_frames(sequence: tracking_datasets.TrackingSequence) -> np.ndarray:
  """bool [T]: the target is present and its box has positive size."""
  boxes = np.asarray(sequence.boxes, np.float64)
  valid = np.all(np.isfinite(boxes), axis=1) & (boxes[:, 2] > 0) & (
      boxes[:, 3] > 0)
  if sequence.absence is not None:
    valid &= ~np.asarray(sequence.absence, bool)[:len(valid)]
  return valid


def sample_pair(valid: np.ndarray, max_frame_gap: int,
                rng: np.random.Generator) -> Optional[Tuple[int, int]]:
  """A random valid (exemplar, search) frame pair, or None.

  The search frame is valid and at most `max_frame_gap` frames from the
  exemplar (possibly the same frame).
  """
  indices = np.flatnonzero(valid)
  if indices.size == 0:
    return None
  t_z = int(rng.choice(indices))
  near = indices[np.abs(indices - t_z) <= max_frame_gap]
  return t_z, int(rng.choice(near))


@dataclasses.dataclass(frozen=True)
class PairSettings:
  exemplar_size: int = 127
  instance_size: int = 255
  train_instance_size: int = 239
  context_amount: float = 0.5
  max_frame_gap: int = 100
  num_neighbors: int = 2
  stretch: float = 0.05


def _load(path: str) -> np.ndarray:
  with Image.open(path) as image:
    return np.asarray(image.convert('RGB'), np.float32) / 255.0


def crop_pair(frames_z: Sequence[np.ndarray], box_z: np.ndarray,
              frames_x: Sequence[np.ndarray], box_x: np.ndarray,
              settings: PairSettings, stretch: float = 1.0
              ) -> Dict[str, np.ndarray]:
  """Crops the exemplar and search stacks around their center boxes.

  Args:
    frames_z: the exemplar stack (float [H, W, 3] frames).
    box_z: (x, y, w, h) of the target on the center exemplar frame.
    frames_x: the search stack.
    box_x: (x, y, w, h) on the center search frame.
    settings: crop sizes.
    stretch: scale factor of the search window (1 = none).

  Returns:
    {'exemplar': [n, E, E, 3], 'search': [n, S, S, 3]} float32.
  """
  def stack(frames, box, side, out_size):
    center, _ = box_ops.box_to_center_size(box)
    return np.stack([siamfc_crops.crop_and_resize_np(f, center, side, out_size)
                     for f in frames]).astype(np.float32)

  s_z = siamfc_crops.exemplar_crop_size(np.asarray(box_z)[2:4],
                                  settings.context_amount)
  s_x = siamfc_crops.exemplar_crop_size(np.asarray(box_x)[2:4],
                                  settings.context_amount)
  s_x = siamfc_crops.search_crop_size(s_x, settings.exemplar_size,
                                settings.instance_size)
  # The training search crop covers train_instance_size of the instance
  # window's pixels (SiamFC crops 255 - 2 * 8 out of 255).
  s_x *= settings.train_instance_size / settings.instance_size * stretch
  return {
      'exemplar': stack(frames_z, box_z, s_z, settings.exemplar_size),
      'search': stack(frames_x, box_x, s_x, settings.train_instance_size),
  }


class TrainingPairs:
  """An endless stream of training pairs from sequences of a GOT-10k root."""

  def __init__(self, root: str, settings: PairSettings = PairSettings(),
               subset: Optional[str] = None, seed: Optional[int] = None):
    """Lists the sequences (read lazily).

    Args:
      root: a GOT-10k subset folder (with `list.txt`), or the dataset root
        with `subset`.
      settings: crop and sampling settings.
      subset: e.g. 'train' when `root` is the dataset root.
      seed: sampling seed (None: fresh).

    Raises:
      FileNotFoundError / ValueError: from the reader, naming the path.
    """
    self._root = root
    self._subset = subset
    self._names: List[str] = tracking_datasets.list_got10k_sequences(
        root, subset)
    if not self._names:
      raise ValueError(f'{root}: no sequences listed.')
    self._settings = settings
    self._rng = np.random.default_rng(seed)
    # Annotations are read once per sequence (frames are read per pair).
    self._sequences: Dict[str, Tuple[_TrackingSequence, np.ndarray]] = {}
    self.num_skipped = 0
    # (sequence, t_z, t_x) of the last pair, for inspection.
    self.last_pair: Optional[Tuple[str, int, int]] = None

  def _sequence(self, name: str) -> Tuple[_TrackingSequence, np.ndarray]:
    if name not in self._sequences:
      sequence = tracking_datasets.read_got10k_sequence(
          self._root, name, self._subset)
      self._sequences[name] = (sequence, valid_frames(sequence))
    return self._sequences[name]

  @property
  def num_sequences(self) -> int:
    return len(self._names)

  def _stack(self, sequence: _TrackingSequence, t: int) -> List[np.ndarray]:
    indices = temporal.neighbor_indices(
        t, len(sequence.img_files), self._settings.num_neighbors)
    cache = {}
    for i in set(indices.tolist()):
      cache[i] = _load(sequence.img_files[i])
    return [cache[i] for i in indices]

  def sample(self) -> Dict[str, np.ndarray]:
    """One pair from a random sequence with a visible target."""
    for _ in range(100):
      name = self._names[self._rng.integers(len(self._names))]
      sequence, valid = self._sequence(name)
      pair = sample_pair(valid, self._settings.max_frame_gap, self._rng)
      if pair is None:
        self.num_skipped += 1
        continue
      t_z, t_x = pair
      self.last_pair = (name, t_z, t_x)
      stretch = 1.0 + self._rng.uniform(-self._settings.stretch,
                                        self._settings.stretch)
      return crop_pair(self._stack(sequence, t_z), sequence.boxes[t_z],
                       self._stack(sequence, t_x), sequence.boxes[t_x],
                       self._settings, stretch)
    raise ValueError(f'{self._root}: 100 sequences in a row have no frame '
                     'with a visible target.')

  def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
    while True:
      yield self.sample()
