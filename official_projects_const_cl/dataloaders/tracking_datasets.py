"""Readers of single-object tracking datasets: OTB and GOT-10k folders.

* OTB as distributed: `<root>/<Sequence>/img/*.jpg` (sorted; usually
  `%04d.jpg`, `Board` uses `%05d.jpg`, `BlurCar1/3/4` start at 0247 / 0003 /
  0018) and `<root>/<Sequence>/groundtruth*.txt`, one box per line separated
  by commas, tabs and/or spaces (mixed within one file: `BlurCar1`). Empty
  annotation files are ignored (`Human4/groundtruth_rect.1.txt`). A folder
  with several non-empty annotation files holds several targets, named
  `<Sequence>.1`, `<Sequence>.2`, ... in sorted file-name order (`Jogging`,
  `Skating2`). Sequences are ordered by the sorted annotation-file paths.
  Five sequences annotate a contiguous subset of their frames; the toolkit
  keeps positions first..last (1-based, inclusive) of the sorted image list:
  David 300-770, Football1 1-74, Freeman3 1-460, Freeman4 1-283, Diving
  1-215 (`OTB_FRAME_RANGES`). The toolkit special-cases nothing else: Tiger1
  uses all its frames from frame 1 (pytracking's table instead skips its
  first 5 frames, `initOmit`), and BlurCar1/3/4 simply use the images in
  their folder.
* GOT-10k: `<root>/<subset>/list.txt`, `<root>/<subset>/<seq>/%08d.jpg`,
  `groundtruth.txt` (comma-separated, 0-based; the test subset annotates only
  the first frame), optional `absence.label`, `cover.label`,
  `cut_by_image.label` (one integer per frame) and `meta_info.ini`.
* Results (the toolkit's layout): `<results>/<seq>.txt`, one predicted box
  per line, comma-separated (whitespace is accepted as well).
"""

import dataclasses
import glob
import os
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

# OTB sequences whose annotation covers only part of the image folder:
# lower-case sequence name -> (first, last) position, 1-based inclusive, in
# the sorted image list (the toolkit's table; see the module docstring).
OTB_FRAME_RANGES = {
    'david': (300, 770),
    'football1': (1, 74),
    'freeman3': (1, 460),
    'freeman4': (1, 283),
    'diving': (1, 215),
}

@dataclasses.dataclass
class TrackingSequence:
  """One single-object tracking sequence.

  Attributes:
    name: sequence name (`Jogging.1` for the first target of `Jogging`).
    img_files: frame paths, in order.
    boxes: [N, 4] float64 (x, y, w, h) ground truth as written in the file
      (OTB: 1-based pixels; GOT-10k: 0-based). GOT-10k test sequences have a
      single row (first frame only).
    absence, cover, cut_by_image: GOT-10k per-frame labels when present.
    meta: GOT-10k meta_info.ini entries when present.
  """
  name: str
  img_files: List[str]
  boxes: np.ndarray
  absence: Optional[np.ndarray] = None
  cover: Optional[np.ndarray] = None
  cut_by_image: Optional[np.ndarray] = None
  meta: Optional[Dict[str, str]] = None


def parse_boxes(text: str) -> np.ndarray:
  """[N, 4] boxes of a text with one box per line.

  Values may be separated by commas, tabs and/or spaces, mixed freely; blank
  lines are skipped; 'NaN' parses to NaN.
  """
  rows = []
  for number, line in enumerate(text.splitlines(), 1):
    fields = line.replace(',', ' ').split()
    if not fields:
      continue
    if len(fields) != 4:
      raise ValueError(f'Line {number}: expected 4 values (x, y, w, h), got '
                       f'{len(fields)}: {line!r}.')
    try:
      rows.append([float(v) for v in fields])
    except ValueError:
      raise ValueError(f'Line {number}: expected 4 numbers (x, y, w, h), '
                       f'got {line!r}.') from None
  return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _read_text(path: str) -> str:
  """The text of `path`; a file that is not text is a ValueError naming it."""
  with open(path, 'r') as f:
    try:
      return f.read()
    except UnicodeDecodeError as e:
      raise ValueError(f'{path}: not a text file ({e.reason})') from None


def read_boxes(path: str) -> np.ndarray:
  """[N, 4] boxes of a ground-truth or result file (see `parse_boxes`)."""
  text = _read_text(path)
  try:
    return parse_boxes(text)
  except ValueError as e:
    raise ValueError(f'{path}: {e}') from None


def _otb_index(root: str, folders: Optional[Iterable[str]] = None
               ) -> List[Tuple[str, str]]:
  """[(sequence name, annotation file)] of an OTB root, in toolkit order."""
  if not os.path.isdir(root):
    raise FileNotFoundError(f'OTB root {root!r} is not a folder.')
  pattern = 'groundtruth*.txt'
  if folders is None:
    files = glob.glob(os.path.join(glob.escape(root), '*', pattern))
  else:
    files = [f for s in folders for f in glob.glob(
        os.path.join(glob.escape(root), glob.escape(s), pattern))]
  files = sorted(set(files))
  nonempty = []
  for path in files:
    if _read_text(path).strip():
      nonempty.append(path)
  folder_names = [os.path.basename(os.path.dirname(p)) for p in nonempty]
  index, seen = [], {}
  for folder, path in zip(folder_names, nonempty):
    seen[folder] = seen.get(folder, 0) + 1
    name = (folder if folder_names.count(folder) == 1
            else f'{folder}.{seen[folder]}')
    index.append((name, path))
  return index


def list_otb_sequences(root: str, folders: Optional[Iterable[str]] = None
                       ) -> List[str]:
  """Sequence names of an OTB-layout root, in the toolkit's order.

  Args:
    root: folder holding one sub-folder per sequence.
    folders: restrict to these sequence folders (e.g. the OTB-2013 list);
      default every sub-folder with a `groundtruth*.txt`.

  Returns:
    Names; a folder with several targets gives `<folder>.1`, `<folder>.2`...
  """
  return [name for name, _ in _otb_index(root, folders)]


def read_otb_sequence(root: str, name: str) -> TrackingSequence:
  """Reads one OTB sequence (`name` as given by `list_otb_sequences`).

  Frames are the sorted `img/*.jpg` of the sequence folder, cut to
  `OTB_FRAME_RANGES` for the five partially annotated sequences.
  """
  # `Jogging.1` lives in folder `Jogging`; a folder may also contain a dot.
  folders = dict.fromkeys([name, name.rsplit('.', 1)[0]])
  index = dict(_otb_index(root, folders))
  if name not in index:
    raise KeyError(f'No OTB sequence {name!r} under {root!r}; found '
                   f'{sorted(index) or "none"} for that folder.')
  anno_file = index[name]
  seq_dir = os.path.dirname(anno_file)
  img_files = sorted(glob.glob(os.path.join(glob.escape(seq_dir), 'img',
                                            '*.jpg')))
  frame_range = OTB_FRAME_RANGES.get(name.lower())
  if frame_range is not None:
    img_files = img_files[frame_range[0] - 1:frame_range[1]]
  boxes = read_boxes(anno_file)
  if len(img_files) != len(boxes):
    raise ValueError(
        f'OTB sequence {name}: {len(img_files)} frames'
        + (f' (positions {frame_range[0]}-{frame_range[1]})'
           if frame_range else '')
        + f' but {len(boxes)} boxes in {anno_file}.')
  return TrackingSequence(name=name, img_files=img_files, boxes=boxes)


def _got10k_dir(root: str, subset: Optional[str]) -> str:
  return os.path.join(root, subset) if subset else root


def list_got10k_sequences(root: str, subset: Optional[str] = None
                          ) -> List[str]:
  """Names in `<root>/<subset>/list.txt` (`<root>/list.txt` without subset)."""
  text = _read_text(os.path.join(_got10k_dir(root, subset), 'list.txt'))
  return [line.strip() for line in text.splitlines() if line.strip()]


def _read_label(path: str) -> Optional[np.ndarray]:
  if not os.path.isfile(path):
    return None
  values = []
  for number, line in enumerate(_read_text(path).splitlines(), 1):
    try:
      values.extend(float(v) for v in line.split())
    except ValueError:
      raise ValueError(f'{path}, line {number}: expected numbers, got '
                       f'{line!r}.') from None
  return np.array(values, dtype=np.float64)


def read_got10k_sequence(root: str, name: str, subset: Optional[str] = None
                         ) -> TrackingSequence:
  """Reads `<root>/<subset>/<name>` (or `<root>/<name>` without subset).

  Frames are the sorted `*.jpg` of the folder; boxes from `groundtruth.txt`
  (one per frame, or only the first frame's on the test subset); the
  absence / cover / cut_by_image labels and meta_info.ini when present.
  """
  seq_dir = os.path.join(_got10k_dir(root, subset), name)
  if not os.path.isdir(seq_dir):
    raise KeyError(f'No GOT-10k sequence folder {seq_dir!r}.')
  img_files = sorted(glob.glob(os.path.join(glob.escape(seq_dir), '*.jpg')))
  anno_file = os.path.join(seq_dir, 'groundtruth.txt')
  boxes = read_boxes(anno_file)
  if len(boxes) != len(img_files) and len(boxes) != 1:
    raise ValueError(f'GOT-10k sequence {name}: {len(img_files)} frames but '
                     f'{len(boxes)} boxes in {anno_file}.')
  labels = {}
  for key in ('absence', 'cover', 'cut_by_image'):
    label_file = os.path.join(seq_dir, f'{key}.label')
    labels[key] = _read_label(label_file)
    if labels[key] is not None and len(labels[key]) != len(img_files):
      raise ValueError(f'GOT-10k sequence {name}: {len(img_files)} frames but '
                       f'{len(labels[key])} {key} labels in {label_file}.')
  meta = None
  meta_file = os.path.join(seq_dir, 'meta_info.ini')
  if os.path.isfile(meta_file):
    # After the [METAINFO] line.
    lines = _read_text(meta_file).strip().splitlines()[1:]
    meta = dict(line.split(': ', 1) for line in lines if ': ' in line)
  return TrackingSequence(name=name, img_files=img_files, boxes=boxes,
                          meta=meta, **labels)


def read_results(results_dir: str, name: str) -> np.ndarray:
  """[N, 4] predicted boxes of `<results_dir>/<name>.txt`."""
  return read_boxes(os.path.join(results_dir, f'{name}.txt'))


def read_times(results_dir: str, name: str) -> Optional[np.ndarray]:
  """Per-frame times of `<results_dir>/times/<name>_time.txt`, if present."""
  return _read_label(os.path.join(results_dir, 'times', f'{name}_time.txt'))


def load_ground_truth(root: str, layout: str = 'otb',
                      subset: Optional[str] = None,
                      sequences: Optional[Iterable[str]] = None
                      ) -> Dict[str, np.ndarray]:
  """name -> ground-truth boxes of every (or the named) sequences of a root."""
  if layout == 'otb':
    names = list_otb_sequences(root)
    read = lambda n: read_otb_sequence(root, n)
  elif layout == 'got10k':
    names = list_got10k_sequences(root, subset)
    read = lambda n: read_got10k_sequence(root, n, subset)
  else:
    raise ValueError(f"layout must be 'otb' or 'got10k', got {layout!r}.")
  if sequences is not None:
    wanted = list(sequences)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
      raise KeyError(f'Unknown sequences under {root!r}: {unknown}.')
    names = wanted
  if not names:
    raise ValueError(f'No {layout} sequences found under {root!r}.')
  return {name: read(name).boxes for name in names}
