r"""OTB one-pass evaluation (OPE) of single-object trackers, toolkit-exact.

A numpy implementation of the success / precision protocol that the GOT-10k
toolkit's `ExperimentOTB.report` computes (got10k 0.1.3, `got10k.experiments.
otb` with `got10k.utils.metrics` and `got10k.datasets.otb`), written from the
protocol, not copied, and runnable without the toolkit. `tests/test_otb.py`
checks it against the toolkit to 1e-6.

Protocol (every step is what the toolkit does):

1. Boxes are (x, y, w, h) in pixels, used exactly as read from the files: no
   0-/1-based conversion of either the predictions or the ground truth (OTB
   ground truth is 1-based, GOT-10k 0-based; a tracker initialised from the
   ground truth answers in the same frame of reference, and both metrics
   below are invariant to a common shift).
2. OPE: the tracker is initialised with the first ground-truth box, and the
   first predicted box is REPLACED by the first ground-truth box before
   scoring (`boxes[0] = anno[0]`). The first frame is scored like any other
   (IoU ~1, center error 0), so it is part of every mean.
3. Center location error: Euclidean distance between the box centers
   (x + (w - 1) / 2, y + (h - 1) / 2) (`metrics.center_error`). Note that the
   -1 cancels in the difference of two centers, so it changes no error.
4. IoU: plain rectangle IoU with continuous extents [x, x + w) x [y, y + h)
   (area w * h, no +1 pixel term), intersection extents clamped at 0,
   union = area1 + area2 - intersection, IoU = intersection / (union + eps)
   with eps = np.finfo(float).eps, clipped to [0, 1] (`metrics.rect_iou`
   without a bound). Consequences: any box of zero (or negative) width or
   height has IoU 0 with everything; identical boxes score 1 - O(1e-16), not
   exactly 1.
5. Invalid ground truth is NOT excluded: a frame whose ground truth (or
   prediction) contains NaN has IoU NaN and center error NaN, and NaN passes
   no threshold, so the frame counts as a failure in both curves (it stays in
   the denominator). Zero-size ground truth frames have IoU 0 (failure for
   success) and an ordinary, finite center error.
6. Per-sequence curves, with every frame of the sequence counted:
   success(t) = fraction of frames with IoU STRICTLY greater than t, for the
   21 thresholds t = np.linspace(0, 1, 21) (so t = 0 excludes zero-overlap
   frames and t = 1 is never passed: a perfect tracker has AUC 20/21);
   precision(t) = fraction of frames with center error <= t (inclusive), for
   the 51 integer thresholds t = 0, 1, ..., 50 px.
7. The overall curves are the UNWEIGHTED mean of the per-sequence curves
   (each sequence counts once, whatever its length). From the curves:
   success_score = mean of the 21 success values (AUC, thresholds 0 and 1
   included), precision_score = precision at 20 px, success_rate = success
   at IoU 0.5 (index 10 of the 21 thresholds). The same three numbers are
   reported per sequence from that sequence's curves.
8. Speed (optional): per sequence mean(1 / t) over the frame times t > 0 of
   `<results>/times/<seq>_time.txt`; overall = mean over the sequences that
   have a speed; -1 where there is none.

Dataset layouts read here:

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

CLI:
  python -m official_projects_const_cl.evaluation.otb --root=OTB100 \
      --results=results/OTB2015/MyTracker [--results=... more trackers] \
      [--report_dir=reports]
prints the summary as JSON and, with --report_dir, writes performance.json
(the toolkit's 'overall' / 'seq_wise' structure) and success_plots.png /
precision_plots.png.
"""

import argparse
import dataclasses
import glob
import json
import os
import sys
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from official_projects_const_cl import errors

# Thresholds of the two curves (the toolkit's nbins_iou = 21, nbins_ce = 51).
IOU_THRESHOLDS = np.linspace(0.0, 1.0, 21)
CENTER_ERROR_THRESHOLDS = np.arange(0, 51)  # 0, 1, ..., 50 pixels.
PRECISION_INDEX = 20  # CENTER_ERROR_THRESHOLDS[20] == 20 px.
SUCCESS_RATE_INDEX = 10  # IOU_THRESHOLDS[10] == 0.5.
_EPS = np.finfo(float).eps

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

BoxesLike = Any  # Anything np.asarray turns into [N, 4] or [4].


# ----------------------------------------------------------------------------
# Metrics.


def as_boxes(boxes: BoxesLike) -> np.ndarray:
  """[N, 4] float64 (x, y, w, h) boxes; a single box [4] becomes [1, 4]."""
  boxes = np.asarray(boxes, dtype=np.float64)
  if boxes.ndim == 1:
    boxes = boxes[np.newaxis]
  if boxes.ndim != 2 or boxes.shape[1] != 4:
    raise ValueError(f'Boxes must be [N, 4] (x, y, w, h); got shape '
                     f'{boxes.shape}.')
  return boxes


def _pair(pred: BoxesLike, gt: BoxesLike) -> Tuple[np.ndarray, np.ndarray]:
  pred, gt = as_boxes(pred), as_boxes(gt)
  if pred.shape != gt.shape:
    raise ValueError(f'Predicted and ground-truth boxes differ in number: '
                     f'{len(pred)} vs {len(gt)} frames.')
  return pred, gt


def box_centers(boxes: BoxesLike) -> np.ndarray:
  """[N, 2] centers (x + (w - 1) / 2, y + (h - 1) / 2) of (x, y, w, h) boxes.

  The pixel-index convention of OTB and the toolkit: a box starting at pixel
  x and `w` pixels wide spans pixels x .. x + w - 1.
  """
  boxes = as_boxes(boxes)
  return boxes[:, :2] + (boxes[:, 2:] - 1.0) / 2.0


def center_errors(pred: BoxesLike, gt: BoxesLike) -> np.ndarray:
  """[N] Euclidean distances between predicted and ground-truth centers.

  NaN where either box has a NaN coordinate.
  """
  pred, gt = _pair(pred, gt)
  diff = box_centers(pred) - box_centers(gt)
  return np.sqrt(np.sum(diff * diff, axis=1))


def iou(pred: BoxesLike, gt: BoxesLike) -> np.ndarray:
  """[N] IoU of (x, y, w, h) rectangle pairs, the toolkit's way.

  Continuous extents (area w * h); intersection / (union + eps), clipped to
  [0, 1]. 0 whenever either box has no positive width and height; NaN where
  either box has a NaN coordinate (such frames fail every threshold).
  """
  pred, gt = _pair(pred, gt)
  left = np.maximum(pred[:, 0], gt[:, 0])
  top = np.maximum(pred[:, 1], gt[:, 1])
  right = np.minimum(pred[:, 0] + pred[:, 2], gt[:, 0] + gt[:, 2])
  bottom = np.minimum(pred[:, 1] + pred[:, 3], gt[:, 1] + gt[:, 3])
  inter = np.maximum(right - left, 0.0) * np.maximum(bottom - top, 0.0)
  union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.clip(inter / (union + _EPS), 0.0, 1.0)


def _fractions(passed: np.ndarray) -> np.ndarray:
  if passed.shape[0] == 0:
    raise ValueError('A curve needs at least one frame.')
  return passed.mean(axis=0)


def precision_curve(errors: BoxesLike,
                    thresholds: Sequence[float] = CENTER_ERROR_THRESHOLDS
                    ) -> np.ndarray:
  """Fraction of frames whose center error is <= each threshold (NaN fails)."""
  errors = np.asarray(errors, dtype=np.float64).reshape(-1)
  thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
  with np.errstate(invalid='ignore'):
    return _fractions(errors[:, np.newaxis] <= thresholds[np.newaxis, :])


def success_curve(ious: BoxesLike,
                  thresholds: Sequence[float] = IOU_THRESHOLDS) -> np.ndarray:
  """Fraction of frames whose IoU is strictly > each threshold (NaN fails)."""
  ious = np.asarray(ious, dtype=np.float64).reshape(-1)
  thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
  with np.errstate(invalid='ignore'):
    return _fractions(ious[:, np.newaxis] > thresholds[np.newaxis, :])


def frame_metrics(pred: BoxesLike, gt: BoxesLike, init_with_gt: bool = True
                  ) -> Tuple[np.ndarray, np.ndarray]:
  """Per-frame (ious, center_errors) of one sequence under OPE.

  Args:
    pred: [N, 4] predicted boxes, one per frame, the first included.
    gt: [N, 4] ground-truth boxes.
    init_with_gt: replace the first prediction by the first ground-truth box,
      as the toolkit does (the tracker was initialised with it).
  """
  pred, gt = _pair(pred, gt)
  if len(gt) == 0:
    raise ValueError('A sequence needs at least one frame.')
  if init_with_gt:
    pred = pred.copy()
    pred[0] = gt[0]
  return iou(pred, gt), center_errors(pred, gt)


def _scores(succ: np.ndarray, prec: np.ndarray) -> Dict[str, float]:
  return {
      'success_score': float(np.mean(succ)),
      'precision_score': float(prec[PRECISION_INDEX]),
      'success_rate': float(succ[SUCCESS_RATE_INDEX]),
  }


def _speed_fps(times: Optional[BoxesLike]) -> float:
  if times is None:
    return -1.0
  times = np.asarray(times, dtype=np.float64).reshape(-1)
  times = times[times > 0]
  return float(np.mean(1.0 / times)) if len(times) else -1.0


def evaluate_sequence(pred: BoxesLike, gt: BoxesLike,
                      init_with_gt: bool = True,
                      times: Optional[BoxesLike] = None) -> Dict[str, object]:
  """Curves and scores of one sequence (the toolkit's 'seq_wise' entry)."""
  ious, errors = frame_metrics(pred, gt, init_with_gt)
  succ, prec = success_curve(ious), precision_curve(errors)
  result = {'success_curve': succ.tolist(), 'precision_curve': prec.tolist()}
  result.update(_scores(succ, prec))
  result['speed_fps'] = _speed_fps(times)
  result['num_frames'] = int(len(ious))
  return result


def evaluate_sequences(
    sequences: Mapping[str, Tuple[BoxesLike, BoxesLike]],
    init_with_gt: bool = True,
    times: Optional[Mapping[str, BoxesLike]] = None) -> Dict[str, object]:
  """OPE success / precision of one tracker over several sequences.

  Args:
    sequences: name -> (predicted boxes [N, 4], ground-truth boxes [N, 4]),
      one box per frame, first frame included.
    init_with_gt: see `frame_metrics`.
    times: optional name -> per-frame tracking times in seconds.

  Returns:
    A dict with 'success_score' (AUC), 'precision_score' (20 px),
    'success_rate' (IoU > 0.5), 'success_curve' (21 values over
    'iou_thresholds'), 'precision_curve' (51 values over
    'center_error_thresholds'), all from the mean of the per-sequence
    curves; 'speed_fps', 'num_sequences', and 'per_sequence': name -> the
    same keys for that sequence (plus 'num_frames').
  """
  if not sequences:
    raise ValueError('No sequences to evaluate.')
  times = times or {}
  per_sequence = {
      name: evaluate_sequence(pred, gt, init_with_gt, times.get(name))
      for name, (pred, gt) in sequences.items()}
  succ = np.mean([r['success_curve'] for r in per_sequence.values()], axis=0)
  prec = np.mean([r['precision_curve'] for r in per_sequence.values()],
                 axis=0)
  speeds = np.array([max(r['speed_fps'], 0.0)
                     for r in per_sequence.values()])
  result = _scores(succ, prec)
  result.update({
      'success_curve': succ.tolist(),
      'precision_curve': prec.tolist(),
      'iou_thresholds': IOU_THRESHOLDS.tolist(),
      'center_error_thresholds': CENTER_ERROR_THRESHOLDS.tolist(),
      'speed_fps': (float(speeds.sum() / np.count_nonzero(speeds))
                    if np.count_nonzero(speeds) else -1.0),
      'num_sequences': len(per_sequence),
      'per_sequence': per_sequence,
  })
  return result


def toolkit_report(results_by_tracker: Mapping[str, Mapping[str, object]]
                   ) -> Dict[str, object]:
  """The toolkit's performance.json structure of `evaluate_sequences` dicts.

  tracker -> {'overall': {...}, 'seq_wise': {seq: {...}}} with the keys
  success_curve, precision_curve, success_score, precision_score,
  success_rate, speed_fps.
  """
  keys = ('success_curve', 'precision_curve', 'success_score',
          'precision_score', 'success_rate', 'speed_fps')
  return {
      name: {'overall': {k: result[k] for k in keys},
             'seq_wise': {seq: {k: r[k] for k in keys}
                          for seq, r in result['per_sequence'].items()}}
      for name, result in results_by_tracker.items()}


# ----------------------------------------------------------------------------
# Plots.


def plot_curves(results_by_tracker: Mapping[str, Mapping[str, object]],
                out_dir: str, dpi: int = 150) -> List[str]:
  """Writes the success and precision plots of OPE as PNG files.

  Args:
    results_by_tracker: tracker name -> `evaluate_sequences` result.
    out_dir: output folder (created).
    dpi: resolution.

  Returns:
    [out_dir/success_plots.png, out_dir/precision_plots.png] (the toolkit's
    file names). Legends read 'name: [score]', trackers sorted by score.
  """
  if not results_by_tracker:
    raise ValueError('No tracker results to plot.')
  # The object-oriented API: no pyplot state, no display backend needed.
  from matplotlib.backends import backend_agg  # pylint: disable=g-import-not-at-top
  from matplotlib import figure  # pylint: disable=g-import-not-at-top

  os.makedirs(out_dir, exist_ok=True)
  styles = [c + s for s in ('-', '--', '-.') for c in ('',) * 10]
  plots = (
      ('success_plots.png', 'success_curve', 'success_score',
       IOU_THRESHOLDS, 'Overlap threshold', 'Success rate',
       'Success plots of OPE', 1.0),
      ('precision_plots.png', 'precision_curve', 'precision_score',
       CENTER_ERROR_THRESHOLDS, 'Location error threshold', 'Precision',
       'Precision plots of OPE', float(CENTER_ERROR_THRESHOLDS.max())),
  )
  paths = []
  for fname, curve_key, score_key, xs, xlabel, ylabel, title, xmax in plots:
    names = sorted(results_by_tracker,
                   key=lambda n: -float(results_by_tracker[n][score_key]))
    fig = figure.Figure(figsize=(6.4, 4.8))
    backend_agg.FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, name in enumerate(names):
      result = results_by_tracker[name]
      ax.plot(xs, result[curve_key], styles[i % len(styles)],
              label=f'{name}: [{float(result[score_key]):.3f}]')
    legend = ax.legend(loc='center left', bbox_to_anchor=(1, 0.5),
                       fontsize=7.4)
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(0, xmax), ylim=(0, 1),
           title=title)
    ax.grid(True)
    path = os.path.join(out_dir, fname)
    fig.savefig(path, dpi=dpi, bbox_extra_artists=(legend,),
                bbox_inches='tight')
    paths.append(path)
  return paths


# ----------------------------------------------------------------------------
# Readers.


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
    rows.append([float(v) for v in fields])
  return np.array(rows, dtype=np.float64).reshape(-1, 4)


def read_boxes(path: str) -> np.ndarray:
  """[N, 4] boxes of a ground-truth or result file (see `parse_boxes`)."""
  with open(path, 'r') as f:
    try:
      return parse_boxes(f.read())
    except ValueError as e:
      raise ValueError(f'{path}: {e}') from e


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
    with open(path, 'r') as f:
      if f.read().strip():
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
  with open(os.path.join(_got10k_dir(root, subset), 'list.txt'), 'r') as f:
    return [line.strip() for line in f.read().splitlines() if line.strip()]


def _read_label(path: str) -> Optional[np.ndarray]:
  if not os.path.isfile(path):
    return None
  with open(path, 'r') as f:
    values = [float(v) for v in f.read().split()]
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
  boxes = read_boxes(os.path.join(seq_dir, 'groundtruth.txt'))
  if len(boxes) != len(img_files) and len(boxes) != 1:
    raise ValueError(f'GOT-10k sequence {name}: {len(img_files)} frames but '
                     f'{len(boxes)} boxes.')
  labels = {}
  for key in ('absence', 'cover', 'cut_by_image'):
    labels[key] = _read_label(os.path.join(seq_dir, f'{key}.label'))
    if labels[key] is not None and len(labels[key]) != len(img_files):
      raise ValueError(f'GOT-10k sequence {name}: {len(img_files)} frames but '
                       f'{len(labels[key])} {key} labels.')
  meta = None
  meta_file = os.path.join(seq_dir, 'meta_info.ini')
  if os.path.isfile(meta_file):
    with open(meta_file, 'r') as f:
      lines = f.read().strip().splitlines()[1:]  # After the [METAINFO] line.
    meta = dict(line.split(': ', 1) for line in lines if ': ' in line)
  return TrackingSequence(name=name, img_files=img_files, boxes=boxes,
                          meta=meta, **labels)


def read_results(results_dir: str, name: str) -> np.ndarray:
  """[N, 4] predicted boxes of `<results_dir>/<name>.txt`."""
  return read_boxes(os.path.join(results_dir, f'{name}.txt'))


def read_times(results_dir: str, name: str) -> Optional[np.ndarray]:
  """Per-frame times of `<results_dir>/times/<name>_time.txt`, if present."""
  return _read_label(os.path.join(results_dir, 'times', f'{name}_time.txt'))


# ----------------------------------------------------------------------------
# Evaluating a results folder, and the CLI.


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


def evaluate_results_dir(results_dir: str,
                         ground_truth: Mapping[str, np.ndarray],
                         skip_missing: bool = False) -> Dict[str, object]:
  """`evaluate_sequences` of the `<seq>.txt` predictions in `results_dir`.

  A sequence without a result file is an error unless `skip_missing`.
  """
  missing = [n for n in ground_truth
             if not os.path.isfile(os.path.join(results_dir, f'{n}.txt'))]
  if missing and not skip_missing:
    raise FileNotFoundError(
        f'{results_dir}: no results for {len(missing)} of '
        f'{len(ground_truth)} sequences: {missing[:10]}'
        + (' ...' if len(missing) > 10 else ''))
  names = [n for n in ground_truth if n not in missing]
  return evaluate_sequences(
      {n: (read_results(results_dir, n), ground_truth[n]) for n in names},
      times={n: read_times(results_dir, n) for n in names})


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
  """Command line; returns {'trackers': {name: summary}, 'files': [...]}."""
  parser = argparse.ArgumentParser(
      description='OTB one-pass evaluation (success / precision), matching '
                  'the GOT-10k toolkit ExperimentOTB.report numbers.')
  parser.add_argument('--root', required=True,
                      help='Dataset root (OTB: folder of sequence folders).')
  parser.add_argument('--results', required=True, nargs='+',
                      action='extend',
                      help='Folder(s) of <seq>.txt predictions, one tracker '
                           'each; the tracker is named after the folder.')
  parser.add_argument('--names', default=None,
                      help='Comma-separated tracker names for --results.')
  parser.add_argument('--layout', choices=('otb', 'got10k'), default='otb')
  parser.add_argument('--subset', default=None,
                      help='GOT-10k subset folder under --root (val, ...).')
  parser.add_argument('--sequences', default=None,
                      help='Comma-separated sequence names (default: all).')
  parser.add_argument('--skip_missing', action='store_true',
                      help='Evaluate only sequences that have results.')
  parser.add_argument('--report_dir', default=None,
                      help='Write performance.json and the PNG plots here.')
  args = parser.parse_args(argv)

  names = ([n.strip() for n in args.names.split(',')] if args.names else
           [os.path.basename(os.path.normpath(d)) for d in args.results])
  if len(names) != len(args.results) or len(set(names)) != len(names):
    raise ValueError(f'Need one distinct tracker name per results folder; '
                     f'got {names} for {args.results}.')
  ground_truth = load_ground_truth(
      args.root, args.layout, args.subset,
      args.sequences.split(',') if args.sequences else None)
  results = {name: evaluate_results_dir(d, ground_truth, args.skip_missing)
             for name, d in zip(names, args.results)}
  summary = {name: {k: r[k] for k in ('success_score', 'precision_score',
                                      'success_rate', 'speed_fps',
                                      'num_sequences')}
             for name, r in results.items()}
  files = []
  if args.report_dir:
    os.makedirs(args.report_dir, exist_ok=True)
    report_file = os.path.join(args.report_dir, 'performance.json')
    with open(report_file, 'w') as f:
      json.dump(toolkit_report(results), f, indent=2)
    files = [report_file] + plot_curves(results, args.report_dir)
  output = {'trackers': summary, 'files': files}
  json.dump(output, sys.stdout, indent=2)
  sys.stdout.write('\n')
  return output


def console_main(argv: Optional[List[str]] = None) -> None:
  """`main` with exit statuses: a missing / malformed file is exit 2."""
  errors.run_main(main, argv, user_errors=(ValueError, OSError))


if __name__ == '__main__':
  console_main()
