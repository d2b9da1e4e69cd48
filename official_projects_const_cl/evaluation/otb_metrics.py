"""OTB one-pass evaluation (OPE) metrics, toolkit-exact (supp. §3.3).

A numpy implementation of the success / precision protocol of the GOT-10k
toolkit's `ExperimentOTB.report` (got10k 0.1.3), runnable without the
toolkit; `tests/test_otb.py` checks it against the toolkit to 1e-6. The
protocol step by step: docs/metrics.md. Boxes are (x, y, w, h) pixels.
"""

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

# Thresholds of the two curves (the toolkit's nbins_iou = 21, nbins_ce = 51).
IOU_THRESHOLDS = np.linspace(0.0, 1.0, 21)
CENTER_ERROR_THRESHOLDS = np.arange(0, 51)  # 0, 1, ..., 50 pixels.
PRECISION_INDEX = 20  # CENTER_ERROR_THRESHOLDS[20] == 20 px.
SUCCESS_RATE_INDEX = 10  # IOU_THRESHOLDS[10] == 0.5.
_EPS = np.finfo(float).eps

BoxesLike = Any  # Anything np.asarray turns into [N, 4] or [4].


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
