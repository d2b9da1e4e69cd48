"""Frame-mAP@0.5 IoU for AVA v2.2 and AVA-Kinetics (supp. §3.2).

A numpy implementation of ActivityNet's AVA metric (`get_ava_performance.py`
with its vendored TF Object Detection API `PascalDetectionEvaluator`),
written from the protocol, not copied. The script changed its keyframe rules
in 2020, so `frame_map` takes a `protocol`:

* '2018' (default): the script before commit c070fdb (2020-04-24), the one
  SlowFast and MMAction2 vendor: detections on a keyframe without
  ground-truth boxes are false positives; every CSV row has 7 or 8 columns.
* 'current': the script since: detections on a keyframe that has no row in
  the ground-truth file are ignored; a two-column row `video_id,timestamp`
  marks a keyframe without actions, whose detections are false positives.

Both keep at most 50 detection rows per keyframe (the script's cap since
2019-03; SlowFast and MMAction2 vendor it without: `detection_capacity=0`).
The protocol step by step and our decisions where it is unspecified:
docs/metrics.md. Boxes in memory are float64 [N, 4] (y1, x1, y2, x2); the CSV
files (`dataloaders/ava_io.py`) are (x1, y1, x2, y2).
"""

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set

import numpy as np

from official_projects_const_cl.configs import ava_protocols
from official_projects_const_cl.ops import ava_keyframes

DEFAULT_IOU_THRESHOLD = 0.5
KeyframeBoxes = ava_keyframes.KeyframeBoxes


def _take(frame: KeyframeBoxes, index: np.ndarray) -> KeyframeBoxes:
  return KeyframeBoxes(frame.boxes[index], frame.labels[index],
                       frame.scores[index])


def _concat(frames: Sequence[KeyframeBoxes]) -> KeyframeBoxes:
  if len(frames) == 1:
    return frames[0]
  return KeyframeBoxes(np.concatenate([f.boxes for f in frames]),
                       np.concatenate([f.labels for f in frames]),
                       np.concatenate([f.scores for f in frames]))


def _whitelisted(frame: KeyframeBoxes, class_array: np.ndarray
                 ) -> KeyframeBoxes:
  keep = np.isin(frame.labels, class_array)
  return frame if keep.all() else _take(frame, keep)


def _top_scoring(frame: KeyframeBoxes, capacity: int) -> KeyframeBoxes:
  """Rows by descending score (ties in input order), at most `capacity`."""
  order = np.argsort(-frame.scores, kind='stable')
  if capacity > 0:
    order = order[:capacity]
  return _take(frame, order)


def _class_array(class_ids: Iterable[int]) -> np.ndarray:
  ids = np.array(sorted({int(c) for c in class_ids}), dtype=np.int64)
  if ids.size == 0:
    raise ValueError('class_ids is empty: pass the label-map class ids')
  return ids


def _prepare(keyframes: Mapping[Any, Any], class_array: np.ndarray,
             excluded: Set[str], is_groundtruth: bool,
             capacity: int) -> Dict[str, KeyframeBoxes]:
  """Exclusions, whitelist, then (detections) descending score and the cap."""
  prepared = {}
  for raw_key, value in keyframes.items():
    key = ava_keyframes.normalize_key(raw_key)
    if key in excluded:
      continue
    frame = _whitelisted(ava_keyframes.as_keyframe(value, key, is_groundtruth),
                         class_array)
    if is_groundtruth:
      boxes = frame.boxes
      if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ValueError(f'ground truth of {key!r} has a box with y2 < y1 or '
                         'x2 < x1')
    else:
      frame = _top_scoring(frame, capacity)
    if frame.labels.size:
      if key in prepared:  # Two raw keys normalized to the same keyframe.
        frame = _concat([prepared[key], frame])
        if not is_groundtruth:
          frame = _top_scoring(frame, capacity)
      prepared[key] = frame
  return prepared


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
  """Pairwise IoU [N, M] of (y1, x1, y2, x2) boxes, without a +1 term.

  (The formula is symmetric in the two axes, so (x1, y1, x2, y2) boxes give
  the same values as long as both arguments use the same order.) Two
  zero-area boxes have IoU 0.
  """
  a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
  b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
  height = np.maximum(
      0.0, np.minimum(a[:, None, 2], b[None, :, 2]) -
      np.maximum(a[:, None, 0], b[None, :, 0]))
  width = np.maximum(
      0.0, np.minimum(a[:, None, 3], b[None, :, 3]) -
      np.maximum(a[:, None, 1], b[None, :, 1]))
  intersection = height * width
  area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
  area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  union = area_a[:, None] + area_b[None, :] - intersection
  with np.errstate(divide='ignore', invalid='ignore'):
    iou = intersection / union
  return np.where(union > 0, iou, 0.0)


def _match_keyframe(detections: KeyframeBoxes, groundtruth: KeyframeBoxes,
                    iou_threshold: float) -> np.ndarray:
  """TP flags of one keyframe's detections (already in descending score).

  Each detection looks only at ground truth of its own class, takes the box
  of highest IoU (first on ties) if IoU >= threshold and the box is still
  free; otherwise it is a false positive.
  """
  overlaps = box_iou(detections.boxes, groundtruth.boxes)
  # IoU >= 0, so -1 keeps other classes out of the argmax.
  overlaps[detections.labels[:, None] != groundtruth.labels[None, :]] = -1.0
  best = np.argmax(overlaps, axis=1)
  best_iou = overlaps[np.arange(best.size), best]
  taken = np.zeros(groundtruth.labels.size, bool)
  is_tp = np.zeros(best.size, bool)
  for i in np.flatnonzero(best_iou >= iou_threshold):
    if not taken[best[i]]:
      taken[best[i]] = True
      is_tp[i] = True
  return is_tp


def average_precision(scores: np.ndarray, is_true_positive: np.ndarray,
                      num_groundtruth: int) -> float:
  """Area under the precision envelope (ActivityNet / OD API AP).

  Detections are ranked by descending score (stable). With precision p_i and
  recall r_i after the i-th detection, p is replaced by its envelope
  p*_i = max_{k >= i} p_k and AP = sum_i (r_i - r_{i-1}) p*_i, i.e. the sum
  over recall steps; no 11-point interpolation.

  Args:
    scores: [D] detection scores of one class.
    is_true_positive: [D] bool.
    num_groundtruth: ground-truth instances of the class (recall denominator).

  Returns:
    AP in [0, 1]; NaN when num_groundtruth == 0; 0.0 without detections.

  Raises:
    ValueError: on mismatched sizes or more TPs than ground-truth instances.
  """
  scores = np.asarray(scores, np.float64).reshape(-1)
  tp = np.asarray(is_true_positive, bool).reshape(-1)
  if scores.shape != tp.shape:
    raise ValueError(f'{scores.size} scores but {tp.size} TP flags')
  if num_groundtruth <= 0:
    return float('nan')
  if tp.sum() > num_groundtruth:
    raise ValueError(f'{tp.sum()} true positives but only {num_groundtruth} '
                     'ground-truth instances')
  if scores.size == 0:
    return 0.0
  tp = tp[np.argsort(-scores, kind='stable')]
  cum_tp = np.cumsum(tp, dtype=np.float64)
  precision = cum_tp / np.arange(1, tp.size + 1, dtype=np.float64)
  recall = cum_tp / float(num_groundtruth)
  envelope = np.maximum.accumulate(precision[::-1])[::-1]
  previous_recall = np.concatenate([[0.0], recall[:-1]])
  steps = recall != previous_recall
  return float(np.sum((recall[steps] - previous_recall[steps]) *
                      envelope[steps]))


def frame_map(groundtruth: Mapping[Any, Any],
              detections: Mapping[Any, Any],
              class_ids: Iterable[int],
              exclusions: Iterable[str] = (),
              iou_threshold: float = DEFAULT_IOU_THRESHOLD,
              detection_capacity: int = ava_keyframes.DETECTION_CAPACITY,
              protocol: str = ava_protocols.DEFAULT_PROTOCOL
              ) -> Dict[str, Any]:
  """Frame-mAP of AVA-style keyframe detections (protocol: docs/metrics.md).

  Args:
    groundtruth: {image key: KeyframeBoxes or (boxes, labels[, scores])},
      e.g. `read_csv(..., is_groundtruth=True)`. Boxes (y1, x1, y2, x2). A
      key with no rows (boxes [0, 4]) is a keyframe without actions.
    detections: the same with scores, e.g. `read_csv(...)`.
    class_ids: the label-map class ids: the whitelist and the classes
      averaged (those with ground truth).
    exclusions: image keys to drop from both sides (`read_exclusions`).
    iou_threshold: a detection matches a ground-truth box at IoU >= this.
    detection_capacity: detection rows kept per keyframe (highest scores,
      ties in input order) after the whitelist; 0 = no cap.
    protocol: '2018' (what SlowFast / MMAction2 report): a detection on a
      keyframe without ground-truth boxes is a false positive. 'current'
      (today's `get_ava_performance.py`): detections on keyframes that are
      not keys of `groundtruth` are ignored; a key with no rows, or with
      rows of other classes only, is evaluated, so its detections are false
      positives. Excluded keyframes are dropped under both.

  Returns:
    'mAP': mean AP over classes with ground truth (NaN if there are none).
    'per_class_ap': {class id: AP} for every id in class_ids, NaN without
      ground truth.
    'per_class_num_groundtruth': {class id: ground-truth instances}.
    'per_class_num_detections': {class id: detections evaluated}.
    'num_evaluated_classes': classes with ground truth (also under
      'num_classes_with_groundtruth').
    'num_keyframes': keyframes with ground truth or scored detections left
      after exclusions, the whitelist and (under 'current') the ignored
      keyframes.
    'num_ignored_detections': detection rows (after the whitelist and the
      cap) on keyframes without a ground-truth key, left out under
      'current'; 0 under '2018'.
    'iou_threshold', 'protocol': the settings used.
  """
  class_array = _class_array(class_ids)
  ava_protocols.check_protocol(protocol)
  if not 0.0 <= iou_threshold <= 1.0:
    raise ValueError(f'iou_threshold must be in [0, 1], got {iou_threshold}')
  excluded = {ava_keyframes.normalize_key(k) for k in exclusions}
  gt = _prepare(groundtruth, class_array, excluded, True, 0)
  det = _prepare(detections, class_array, excluded, False, detection_capacity)
  num_ignored = 0
  if protocol == ava_protocols.PROTOCOL_CURRENT:
    # Every key of the ground truth, even one without (whitelisted) rows.
    evaluated = {ava_keyframes.normalize_key(k) for k in groundtruth}
    num_ignored = sum(f.labels.size for k, f in det.items()
                      if k not in evaluated)
    det = {k: f for k, f in det.items() if k in evaluated}

  det_labels, det_scores, det_tp = [], [], []
  for key, frame in det.items():
    boxes = frame.boxes
    valid = (boxes[:, 0] < boxes[:, 2]) & (boxes[:, 1] < boxes[:, 3])
    if not valid.all():
      frame = _take(frame, valid)
    if not frame.labels.size:
      continue
    if key in gt:
      is_tp = _match_keyframe(frame, gt[key], iou_threshold)
    else:  # No ground truth on this keyframe: all false positives.
      is_tp = np.zeros(frame.labels.size, bool)
    det_labels.append(frame.labels)
    det_scores.append(frame.scores)
    det_tp.append(is_tp)
  det_labels = np.concatenate(det_labels or [np.zeros(0, np.int64)])
  det_scores = np.concatenate(det_scores or [np.zeros(0)])
  det_tp = np.concatenate(det_tp or [np.zeros(0, bool)])
  gt_labels = np.concatenate(
      [f.labels for f in gt.values()] or [np.zeros(0, np.int64)])

  per_class_ap, num_gt, num_det = {}, {}, {}
  for class_id in class_array.tolist():
    num_gt[class_id] = int(np.count_nonzero(gt_labels == class_id))
    mine = det_labels == class_id
    num_det[class_id] = int(np.count_nonzero(mine))
    per_class_ap[class_id] = average_precision(det_scores[mine], det_tp[mine],
                                               num_gt[class_id])
  evaluated = [per_class_ap[c] for c in per_class_ap if num_gt[c] > 0]
  return {
      'mAP': float(np.mean(evaluated)) if evaluated else float('nan'),
      'per_class_ap': per_class_ap,
      'per_class_num_groundtruth': num_gt,
      'per_class_num_detections': num_det,
      'num_evaluated_classes': len(evaluated),
      'num_classes_with_groundtruth': len(evaluated),
      'num_keyframes': len(set(gt) | set(det)),
      'num_ignored_detections': int(num_ignored),
      'iou_threshold': float(iou_threshold),
      'protocol': protocol,
  }


def official_metric_names(result: Mapping[str, Any],
                          categories: Sequence[Mapping[str, Any]]
                          ) -> Dict[str, float]:
  """`frame_map` output under the names the official script prints.

  Args:
    result: output of `frame_map` / `evaluate_files`.
    categories: [{'id', 'name'}] from `read_label_map`.

  Returns:
    {'PascalBoxes_Precision/mAP@0.5IOU': mAP,
     'PascalBoxes_PerformanceByCategory/AP@0.5IOU/<name>': AP, ...}.
  """
  threshold = result.get('iou_threshold', DEFAULT_IOU_THRESHOLD)
  metrics = {f'PascalBoxes_Precision/mAP@{threshold}IOU': result['mAP']}
  for category in categories:
    ap = result['per_class_ap'].get(category['id'], float('nan'))
    metrics[f'PascalBoxes_PerformanceByCategory/AP@{threshold}IOU/'
            f'{category["name"]}'] = ap
  return metrics


class AvaEvaluator:
  """Accumulates keyframe ground truth and detections batch by batch.

  Boxes are normalized (y1, x1, y2, x2). Calls for the same image key
  accumulate (a keyframe may be split over batches, so feed each box once).
  Rows whose label is not a class id are dropped by the whitelist, so padding
  rows with label 0 or -1 can be passed as they are. `result` runs
  `frame_map`, so the protocol is exactly that of the file evaluation.

  With `class_ids` given to the constructor the whitelist and the
  per-keyframe cap are applied as detections arrive (memory stays at most
  `capacity` rows per keyframe; the same rows as capping at the end);
  without it every row is kept until `result` (for AVA with one row per
  (person, class) that can be gigabytes: pass class_ids).
  """

  def __init__(self, class_ids: Optional[Iterable[int]] = None,
               capacity: int = ava_keyframes.DETECTION_CAPACITY):
    """Constructor.

    Args:
      class_ids: optional label-map class ids (whitelist applied on arrival).
      capacity: detection rows kept per keyframe (official: 50; 0 = all).
    """
    self._class_array = (None if class_ids is None else
                         _class_array(class_ids))
    self._capacity = capacity
    self.reset()

  def reset(self) -> None:
    self._groundtruth: Dict[str, List[KeyframeBoxes]] = {}
    self._detections: Dict[str, List[KeyframeBoxes]] = {}

  def add_groundtruth(self, image_key: Any, boxes: np.ndarray,
                      labels: np.ndarray) -> None:
    """Adds ground truth: boxes [N, 4], labels [N] action ids."""
    key = ava_keyframes.normalize_key(image_key)
    frame = ava_keyframes.as_keyframe((boxes, labels), key, is_groundtruth=True)
    if self._class_array is not None:
      frame = _whitelisted(frame, self._class_array)
    self._groundtruth.setdefault(key, []).append(frame)

  def add_detections(self, image_key: Any, boxes: np.ndarray,
                     labels: np.ndarray, scores: np.ndarray) -> None:
    """Adds detections: boxes [M, 4], labels [M], scores [M]."""
    key = ava_keyframes.normalize_key(image_key)
    frame = ava_keyframes.as_keyframe((boxes, labels, scores), key,
                                      is_groundtruth=False)
    if self._class_array is None:
      self._detections.setdefault(key, []).append(frame)
      return
    frame = _whitelisted(frame, self._class_array)
    previous = self._detections.get(key, [])
    # Stable top-k of (kept rows, new rows) = top-k of all rows so far.
    self._detections[key] = [_top_scoring(_concat(previous + [frame]),
                                          self._capacity)]

  def groundtruth(self) -> Dict[str, KeyframeBoxes]:
    """The accumulated ground truth, {image key: KeyframeBoxes}."""
    return {k: _concat(v) for k, v in self._groundtruth.items()}

  def detections(self) -> Dict[str, KeyframeBoxes]:
    """The accumulated detections (capped only if class_ids was given)."""
    return {k: _concat(v) for k, v in self._detections.items()}

  def result(self, class_ids: Optional[Iterable[int]] = None,
             exclusions: Iterable[str] = (),
             iou_threshold: float = DEFAULT_IOU_THRESHOLD,
             protocol: str = ava_protocols.DEFAULT_PROTOCOL
             ) -> Dict[str, Any]:
    """`frame_map` of everything added so far.

    Args:
      class_ids: label-map class ids; defaults to the constructor's (and must
        equal them when both are given).
      exclusions: image keys to drop.
      iou_threshold: matching threshold.
      protocol: see `frame_map`; under 'current' a keyframe is evaluated iff
        `add_groundtruth` was called for it (with boxes or without).

    Returns:
      See `frame_map`.
    """
    if class_ids is None:
      if self._class_array is None:
        raise ValueError('AvaEvaluator.result needs class_ids')
      class_array = self._class_array
    else:
      class_array = _class_array(class_ids)
      if (self._class_array is not None and
          not np.array_equal(class_array, self._class_array)):
        raise ValueError('class_ids differ from those the evaluator was '
                         'built with (its cap was applied after that '
                         'whitelist)')
    return frame_map(self.groundtruth(), self.detections(), class_array,
                     exclusions, iou_threshold, self._capacity, protocol)
