"""AVA frame-mAP (official ActivityNet protocol) against hand-worked examples.

Boxes in memory are (y1, x1, y2, x2). Most examples use full-height boxes,
`_xbox(x1, x2)` = (0, x1, 1, x2), so IoU is the 1-D interval IoU in x and
all coordinates are dyadic (exact in binary floating point).
"""

import math
import re

import numpy as np
import pytest

from official_projects_const_cl.dataloaders import ava_io
from official_projects_const_cl.dataloaders import demo_writers
from official_projects_const_cl.evaluation import ava_map
from official_projects_const_cl.evaluation import ava_metrics
from official_projects_const_cl.ops import ava_keyframes


def _xbox(x1, x2):
  return [0.0, x1, 1.0, x2]


def _gt(boxes, labels):
  return ava_keyframes.KeyframeBoxes(np.array(boxes, float).reshape(-1, 4),
                               np.array(labels, np.int64),
                               np.ones(len(labels)))


def _det(boxes, labels, scores):
  return ava_keyframes.KeyframeBoxes(np.array(boxes, float).reshape(-1, 4),
                               np.array(labels, np.int64),
                               np.array(scores, float))


def _write(path, text):
  path.write_text(text)
  return str(path)


# ----------------------------------------------------------------------------
# Keys and IoU.


def test_make_image_key_matches_official_format():
  assert ava_keyframes.make_image_key('abc', '902') == 'abc,0902'
  assert ava_keyframes.make_image_key('abc', '0902') == 'abc,0902'
  assert ava_keyframes.make_image_key('abc', 902) == 'abc,0902'
  assert ava_keyframes.make_image_key('abc', 902.0) == 'abc,0902'
  assert ava_keyframes.make_image_key('-x_y', 1800) == '-x_y,1800'
  # Extension: non-integral seconds keep their fraction instead of
  # colliding with the integral second (the official script crashes).
  assert ava_keyframes.make_image_key('abc', '3.5') == 'abc,3.5'
  with pytest.raises(ValueError):
    ava_keyframes.make_image_key('abc', 'noon')


def test_box_iou_has_no_plus_one_term():
  full = [0.0, 0.0, 1.0, 1.0]
  # Left half: intersection 0.5, union 1 + 0.5 - 0.5 = 1 -> exactly 0.5.
  assert ava_metrics.box_iou([full], [[0.0, 0.0, 1.0, 0.5]])[0, 0] == 0.5
  # [0,.5]^2 vs [.25,.75]^2: inter .25^2 = .0625, union .25+.25-.0625=.4375.
  iou = ava_metrics.box_iou([[0, 0, .5, .5]], [[.25, .25, .75, .75]])[0, 0]
  assert iou == pytest.approx(0.0625 / 0.4375)
  # Disjoint and identical boxes.
  np.testing.assert_allclose(
      ava_metrics.box_iou([full, [0, 0, .5, .5]], [[.5, .5, 1, 1], full]),
      [[0.25, 1.0], [0.0, 0.25]])


# ----------------------------------------------------------------------------
# Matching rules.


def test_perfect_detection_gives_ap_one():
  gt = {'v,0001': _gt([_xbox(0, .25), _xbox(.5, 1)], [1, 1]),
        'v,0002': _gt([_xbox(0, 1)], [1])}
  det = {'v,0001': _det([_xbox(.5, 1), _xbox(0, .25)], [1, 1], [.6, .7]),
         'v,0002': _det([_xbox(0, 1)], [1], [.9])}
  out = ava_metrics.frame_map(gt, det, {1})
  # 3 detections, all TP: precision 1 at recall 1/3, 2/3, 1 -> AP 1.
  assert out['per_class_ap'] == {1: 1.0}
  assert out['mAP'] == 1.0
  assert out['per_class_num_groundtruth'] == {1: 3}
  assert out['num_evaluated_classes'] == 1


def test_detection_whose_best_box_is_taken_is_false_positive():
  # GT A = [0, .75], B = [.25, 1] (x intervals), both class 1.
  gt = {'v,0001': _gt([_xbox(0, .75), _xbox(.25, 1)], [1, 1])}
  # d1 (.9) = A: IoU(A) = 1, IoU(B) = .5/1 = .5 -> takes A, TP.
  # d2 (.8) = [.125, .75]: IoU(A) = .625/.75 = .833, IoU(B) = .5/.875 = .571.
  #   Its most-overlapping box A is taken -> FP, although the untaken B also
  #   has IoU >= 0.5.
  det = {'v,0001': _det([_xbox(0, .75), _xbox(.125, .75)], [1, 1], [.9, .8])}
  out = ava_metrics.frame_map(gt, det, {1})
  # Ranked TP, FP; 2 GT: precision [1, .5], recall [.5, .5] -> AP = .5 * 1.
  # (Letting d2 fall back to B would give AP 1.)
  assert out['per_class_ap'][1] == pytest.approx(0.5)


def test_detection_takes_the_most_overlapping_box_not_the_first_above_half():
  # GT A = [0, .75] listed first, B = [.25, 1].
  gt = {'v,0001': _gt([_xbox(0, .75), _xbox(.25, 1)], [1, 1])}
  # d1 (.9) = [.25, .875]: IoU(A) = .5/.875 = .571, IoU(B) = .625/.75 = .833
  #   -> takes B (the most overlapping), not A (first box above 0.5).
  # d2 (.8) = [.5, 1]: IoU(A) = .25/1 = .25, IoU(B) = .5/.75 = .667
  #   -> its best box B is taken -> FP.
  det = {'v,0001': _det([_xbox(.25, .875), _xbox(.5, 1)], [1, 1], [.9, .8])}
  out = ava_metrics.frame_map(gt, det, {1})
  # TP, FP with 2 GT -> AP = .5. Taking the first box above 0.5 (A) for d1,
  # or an optimal assignment, would leave B to d2 and give AP 1.
  assert out['per_class_ap'][1] == pytest.approx(0.5)


def test_matching_is_per_class():
  # One person doing two actions: the same box is GT for class 1 and 2.
  gt = {'v,0001': _gt([_xbox(0, 1), _xbox(0, 1)], [1, 2])}
  # A class-1 detection cannot take the class-2 row and vice versa; both TP.
  det = {'v,0001': _det([_xbox(0, 1), _xbox(0, 1)], [2, 1], [.9, .8])}
  out = ava_metrics.frame_map(gt, det, {1, 2})
  assert out['per_class_ap'] == {1: 1.0, 2: 1.0}


def test_iou_threshold_boundary_is_inclusive():
  gt = {'v,0001': _gt([[0, 0, 1, 1]], [1])}
  at = {'v,0001': _det([[0, 0, 1, .5]], [1], [.9])}
  # IoU = .5 / (1 + .5 - .5) = 0.5 exactly -> IoU >= 0.5 -> TP -> AP 1.
  assert ava_metrics.frame_map(gt, at, {1})['mAP'] == 1.0
  below_x2 = 0.5 - 2**-10
  below = {'v,0001': _det([[0, 0, 1, below_x2]], [1], [.9])}
  # IoU = 0.4990234375 < 0.5 -> FP; the only GT is missed -> AP 0.
  assert ava_metrics.box_iou(gt['v,0001'].boxes, below['v,0001'].boxes)[0, 0] == (
      0.4990234375)
  assert ava_metrics.frame_map(gt, below, {1})['mAP'] == 0.0


def test_detections_on_keyframe_without_groundtruth_are_false_positives():
  gt = {'v,0001': _gt([_xbox(0, 1)], [1])}
  det = {'v,0001': _det([_xbox(0, 1)], [1], [.5]),
         'v,0009': _det([_xbox(0, 1)], [1], [.9])}  # No GT at all here.
  out = ava_metrics.frame_map(gt, det, {1})
  # Ranked FP (.9), TP (.5); 1 GT: precision [0, .5], recall [0, 1];
  # envelope [.5, .5]; AP = (1 - 0) * .5 = .5 (ignoring v,0009 would give 1).
  assert out['per_class_ap'][1] == pytest.approx(0.5)
  assert out['per_class_num_detections'] == {1: 2}


def test_degenerate_detection_is_dropped_not_false_positive():
  gt = {'v,0001': _gt([_xbox(0, .5)], [1])}
  # Zero-width box (x1 == x2) scored .9 is removed like the OD API's
  # _remove_invalid_boxes; scoring it as a FP would give AP .5.
  det = {'v,0001': _det([_xbox(.25, .25), _xbox(0, .5)], [1, 1], [.9, .5])}
  out = ava_metrics.frame_map(gt, det, {1})
  assert out['per_class_ap'][1] == 1.0
  assert out['per_class_num_detections'] == {1: 1}


def test_inverted_groundtruth_box_is_an_error():
  gt = {'v,0001': _gt([[0, .5, 1, .25]], [1])}
  with pytest.raises(ValueError, match='v,0001'):
    ava_metrics.frame_map(gt, {}, {1})


# ----------------------------------------------------------------------------
# Average precision.


def _eleven_point_ap(precision, recall):
  return np.mean([max([p for p, r in zip(precision, recall) if r >= t],
                      default=0.0) for t in np.linspace(0, 1, 11)])


def test_ap_is_area_under_precision_envelope_not_eleven_point():
  # Ranked TP, FP, TP, TP with 3 GT:
  #   precision 1/1, 1/2, 2/3, 3/4; recall 1/3, 1/3, 2/3, 1.
  #   envelope (max to the right): 1, 3/4, 3/4, 3/4.
  #   AP = 1/3 * 1 + 1/3 * 3/4 + 1/3 * 3/4 = 2.5 / 3 = 5/6 = 0.8333.
  #   11-point: recall >= t for t in {0,.1,.2,.3} gives max precision 1,
  #   for the 7 t in {.4..1} gives .75 -> (4 + 5.25) / 11 = 0.8409.
  #   Without the envelope: (1 + 2/3 + 3/4) / 3 = 29/36 = 0.8056.
  scores = np.array([.9, .8, .7, .6])
  is_tp = np.array([True, False, True, True])
  ap = ava_metrics.average_precision(scores, is_tp, 3)
  assert ap == pytest.approx(5 / 6)
  eleven = _eleven_point_ap([1, 1 / 2, 2 / 3, 3 / 4], [1 / 3, 1 / 3, 2 / 3, 1])
  assert eleven == pytest.approx(9.25 / 11)
  assert abs(ap - eleven) > 0.005 and abs(ap - 29 / 36) > 0.02
  # Scores are ranked by the function itself (input order irrelevant).
  assert ava_metrics.average_precision(scores[::-1], is_tp[::-1], 3) == (
      pytest.approx(5 / 6))

  # The same ranking through frame_map: one GT per keyframe.
  g = _xbox(0, .5)
  gt = {f'v,{t:04d}': _gt([g], [1]) for t in (1, 2, 3)}
  det = {'v,0001': _det([g], [1], [.9]),                  # TP
         'v,0002': _det([_xbox(.75, 1), g], [1, 1], [.8, .7]),  # FP, TP
         'v,0003': _det([g], [1], [.6])}                  # TP
  assert ava_metrics.frame_map(gt, det, {1})['mAP'] == pytest.approx(5 / 6)


def test_average_precision_edge_cases():
  assert math.isnan(ava_metrics.average_precision([], [], 0))
  assert ava_metrics.average_precision([], [], 4) == 0.0  # GT but no detections.
  # Recall stops at 1/2: AP counts only the covered recall, 1/2 * 1.
  assert ava_metrics.average_precision([.3], [True], 2) == 0.5
  with pytest.raises(ValueError):
    ava_metrics.average_precision([.3, .2], [True, True], 1)


def test_map_averages_only_classes_with_groundtruth():
  a, b = _xbox(0, .5), _xbox(.5, 1)
  # Class 1: one GT (a). Class 2: two GT (a and b). Class 3: no GT.
  gt = {'v,0001': _gt([a, a, b], [1, 2, 2])}
  det = {'v,0001': _det([a, a, b], [1, 2, 3], [.9, .8, .7])}
  out = ava_metrics.frame_map(gt, det, [1, 2, 3])
  # Class 1: TP -> AP 1. Class 2: TP on a, b missed: precision [1], recall
  # [.5] -> AP .5. Class 3: only a FP, no GT -> NaN, excluded.
  # mAP = (1 + .5) / 2 = .75 (counting class 3 as 0 would give .5).
  assert out['per_class_ap'][1] == 1.0
  assert out['per_class_ap'][2] == pytest.approx(0.5)
  assert math.isnan(out['per_class_ap'][3])
  assert out['mAP'] == pytest.approx(0.75)
  assert out['num_evaluated_classes'] == 2
  assert out['per_class_num_groundtruth'] == {1: 1, 2: 2, 3: 0}
  assert out['per_class_num_detections'] == {1: 1, 2: 1, 3: 1}
  # No class with GT at all: mAP is NaN.
  assert math.isnan(ava_metrics.frame_map({}, det, [1])['mAP'])


# ----------------------------------------------------------------------------
# Exclusions, cap and whitelist.


def test_excluded_timestamps_are_removed_from_both_sides(tmp_path):
  labelmap = _write(tmp_path / 'labels.pbtxt', 'item {\n  name: "still"\n'
                    '  id: 1\n}\n')
  gt = _write(tmp_path / 'gt.csv', 'v,0001,0.0,0.0,0.5,1.0,1,0\n'
              'v,0002,0.0,0.0,0.5,1.0,1,0\n')
  # v,0001: TP at .5. v,0002: FP at .9 (disjoint box) and its GT is missed.
  det = _write(tmp_path / 'det.csv', 'v,0001,0.0,0.0,0.5,1.0,1,0.5\n'
               'v,0002,0.75,0.0,1.0,1.0,1,0.9\n')
  # Without exclusions: ranked FP, TP with 2 GT -> precision [0, .5],
  # recall [0, .5]; AP = .5 * .5 = .25.
  out = ava_map.evaluate_files(gt, det, labelmap)
  assert out['mAP'] == pytest.approx(0.25)
  # Excluding v,0002 (written '2' here) drops its GT and its FP -> AP 1.
  excl = _write(tmp_path / 'excl.csv', 'v,2\n')
  assert ava_io.read_exclusions(excl) == {'v,0002'}
  out = ava_map.evaluate_files(gt, det, labelmap, excl)
  assert out['mAP'] == 1.0
  assert out['per_class_num_groundtruth'] == {1: 1}
  # Same through frame_map with in-memory data.
  gt_frames = ava_io.read_csv(gt, is_groundtruth=True)
  det_frames = ava_io.read_csv(det)
  assert ava_metrics.frame_map(gt_frames, det_frames, {1},
                           exclusions={'v,0002'})['mAP'] == 1.0


def _cap_example():
  """Keyframe with 51 detection rows (the 51st is a TP of class 1)."""
  g1, g2 = _xbox(0, .25), _xbox(.5, .75)
  gt = {'v,0001': _gt([g1, g2], [1, 1])}
  boxes = [g1] + [g1] * 49 + [g2]
  labels = [1] + [2] * 49 + [1]
  scores = [.99] + [.98 - .01 * i for i in range(49)] + [.01]  # .98 .. .50
  return gt, {'v,0001': _det(boxes, labels, scores)}


def test_detection_cap_keeps_50_rows_per_keyframe_over_all_classes():
  gt, det = _cap_example()
  # Capped: rows 1-50 are the class-1 TP on g1 (.99) and 49 class-2 rows;
  # the class-1 row on g2 (.01, 51st) is dropped. Class 1: TP only, 2 GT ->
  # AP = .5 * 1 = .5. Class 2 has no GT (NaN), so mAP = .5.
  out = ava_metrics.frame_map(gt, det, {1, 2})
  assert out['per_class_ap'][1] == pytest.approx(0.5)
  assert out['mAP'] == pytest.approx(0.5)
  assert out['per_class_num_detections'] == {1: 1, 2: 49}
  # Uncapped, class 1 ranks .99 TP, .01 TP -> AP 1: the dropped row mattered.
  assert ava_metrics.frame_map(gt, det, {1, 2},
                           detection_capacity=0)['mAP'] == 1.0
  # Ground truth is never capped: 60 GT rows on one keyframe all count.
  many = {'v,0001': _gt([_xbox(0, 1)] * 60, [1] * 60)}
  assert ava_metrics.frame_map(many, {}, {1})['per_class_num_groundtruth'] == {
      1: 60}


def test_detection_cap_in_read_csv_and_streaming_evaluator(tmp_path):
  gt, det = _cap_example()
  path = str(tmp_path / 'det.csv')
  ava_io.write_detections_csv(path, ava_io.rows_from_keyframes(det))
  capped = ava_io.read_csv(path, {1, 2}, capacity=50)['v,0001']
  assert capped.labels.size == 50
  assert capped.scores.min() == pytest.approx(0.5)  # The .01 row is gone.
  assert ava_metrics.frame_map(gt, {'v,0001': capped}, {1, 2})['mAP'] == (
      pytest.approx(0.5))
  assert ava_io.read_csv(path, {1, 2})['v,0001'].labels.size == 51

  # Streaming, capping as rows arrive (class_ids given) or at the end.
  frame = det['v,0001']
  for evaluator in (ava_metrics.AvaEvaluator(class_ids=[1, 2]),
                    ava_metrics.AvaEvaluator()):
    evaluator.add_groundtruth('v,0001', gt['v,0001'].boxes,
                              gt['v,0001'].labels)
    for start in range(0, 51, 20):  # Three batches: 20, 20, 11 rows.
      part = slice(start, start + 20)
      evaluator.add_detections('v,0001', frame.boxes[part],
                               frame.labels[part], frame.scores[part])
    out = evaluator.result([1, 2])
    assert out['per_class_ap'][1] == pytest.approx(0.5)
  # The capped evaluator writes the 50 kept rows in the official format.
  written = str(tmp_path / 'written.csv')
  assert ava_io.write_keyframes_csv(
      written, ava_metrics.AvaEvaluator([1, 2]).detections()) == 0
  evaluator = ava_metrics.AvaEvaluator([1, 2])
  evaluator.add_detections('v,0001', frame.boxes, frame.labels, frame.scores)
  assert ava_io.write_keyframes_csv(written, evaluator.detections()) == 50
  assert ava_io.read_csv(written)['v,0001'].labels.size == 50


def test_read_csv_cap_follows_official_heap_rule_on_ties(tmp_path):
  # Capacity 2, rows (score, action): (.5, 2), (.5, 1), (.9, 3).
  # Heap after two rows: {(.5,1), (.5,2)}; .9 > .5 replaces the smallest
  # tuple (.5, 1), so actions 3 and 2 survive.
  path = _write(tmp_path / 'det.csv', 'v,1,0,0,1,1,2,0.5\n'
                'v,1,0,0,1,1,1,0.5\n'
                'v,1,0,0,1,1,3,0.9\n')
  frame = ava_io.read_csv(path, capacity=2)['v,0001']
  np.testing.assert_array_equal(frame.labels, [3, 2])
  # A later row with an equal (not higher) score does not enter a full heap.
  path = _write(tmp_path / 'det2.csv', 'v,1,0,0,1,1,2,0.5\n'
                'v,1,0,0,1,1,1,0.5\n')
  np.testing.assert_array_equal(
      ava_io.read_csv(path, capacity=1)['v,0001'].labels, [2])


def test_class_whitelist_drops_rows_before_the_cap(tmp_path):
  a, b = _xbox(0, .5), _xbox(.5, 1)
  # Class 7 is not in the label map {1}: its GT row and its 50 top-scoring
  # detections are dropped before the cap, so the class-1 TP (.1, 51st row)
  # survives -> AP 1. Capping before the whitelist would drop it -> AP 0.
  gt = {'v,0001': _gt([a, b], [1, 7])}
  det = {'v,0001': _det([b] * 50 + [a], [7] * 50 + [1],
                        [.99 - .01 * i for i in range(50)] + [.1])}
  out = ava_metrics.frame_map(gt, det, {1})
  assert out['mAP'] == 1.0
  assert list(out['per_class_ap']) == [1]
  assert out['per_class_num_groundtruth'] == {1: 1}

  path = str(tmp_path / 'det.csv')
  ava_io.write_detections_csv(path, ava_io.rows_from_keyframes(det))
  frame = ava_io.read_csv(path, {1}, capacity=50)['v,0001']
  np.testing.assert_array_equal(frame.labels, [1])
  # Padding rows (label 0 / -1) of a TF batch are dropped the same way.
  evaluator = ava_metrics.AvaEvaluator()
  evaluator.add_groundtruth(b'v,0001', [a, [0, 0, 0, 0]], [1, -1])
  evaluator.add_detections(('v', 1), [a, [0, 0, 0, 0]], [1, 0], [.3, 0.])
  assert evaluator.result({1})['mAP'] == 1.0


# ----------------------------------------------------------------------------
# Files.


def test_csv_round_trip(tmp_path):
  rows = [('vidA', 902, 0.1, 0.2, 0.3, 0.4, 12, 0.75),
          ('vidA', '0902', 0.5, 0.25, 1.0, 0.75, 80, 0.8125),
          ('-vid_B', 3.0, 0.0, 0.0, 1.0, 1.0, 1, 1e-05)]
  path = str(tmp_path / 'pred.csv')
  assert ava_io.write_detections_csv(path, rows) == 3
  lines = (tmp_path / 'pred.csv').read_text().splitlines()
  # Official format: x1,y1,x2,y2 order, %04d timestamps.
  assert lines[0] == 'vidA,0902,0.1,0.2,0.3,0.4,12,0.75'
  assert lines[2] == '-vid_B,0003,0.0,0.0,1.0,1.0,1,1e-05'

  frames = ava_io.read_csv(path)
  assert list(frames) == ['vidA,0902', '-vid_B,0003']
  vid_a = frames['vidA,0902']
  # Descending score; boxes converted to (y1, x1, y2, x2).
  np.testing.assert_array_equal(vid_a.scores, [0.8125, 0.75])
  np.testing.assert_array_equal(vid_a.labels, [80, 12])
  np.testing.assert_array_equal(vid_a.boxes,
                                [[0.25, 0.5, 0.75, 1.0], [0.2, 0.1, 0.4, 0.3]])
  # Back to rows and to a second file: the same content.
  path2 = str(tmp_path / 'pred2.csv')
  ava_io.write_detections_csv(path2, ava_io.rows_from_keyframes(frames))
  again = ava_io.read_csv(path2)
  assert list(again) == list(frames)
  for key, frame in frames.items():
    for got, want in zip(again[key], frame):
      np.testing.assert_array_equal(got, want)


def test_read_csv_groundtruth_ignores_person_id(tmp_path):
  path = _write(tmp_path / 'gt.csv', 'v,0902,0.1,0.2,0.3,0.4,5,17\n'
                '\n'
                'v,902,0.1,0.2,0.3,0.4,9,17\n'
                'w,0001,0,0,1,1,5\n')
  frames = ava_io.read_csv(path, is_groundtruth=True)
  assert list(frames) == ['v,0902', 'w,0001']
  np.testing.assert_array_equal(frames['v,0902'].labels, [5, 9])  # File order.
  np.testing.assert_array_equal(frames['v,0902'].scores, [1.0, 1.0])
  np.testing.assert_array_equal(frames['v,0902'].boxes[0], [.2, .1, .4, .3])
  # The same file read as detections takes column 8 as the score.
  np.testing.assert_array_equal(ava_io.read_csv(path)['v,0902'].scores,
                                [17.0, 17.0])


@pytest.mark.parametrize('bad_row, message', [
    ('v,0003,0.1,0.2,0.3,0.4', 'expected 7 or 8 columns'),
    ('v,0003,0.1,0.2,0.3,0.4,1,0.5,9', 'expected 7 or 8 columns'),
    ('v,0003,0.1,0.2,0.3,oops,1,0.5', 'box coordinates'),
    ('v,0003,0.1,0.2,0.3,0.4,one,0.5', 'action_id'),
    ('v,0003,0.1,0.2,0.3,0.4,1,high', 'score'),
    ('v,0003,0.1,0.2,0.3,0.4,1,nan', 'score'),
    ('v,t3,0.1,0.2,0.3,0.4,1,0.5', 't3'),
])
def test_malformed_row_error_names_file_and_line(tmp_path, bad_row, message):
  path = _write(tmp_path / 'det.csv', 'v,0001,0.1,0.2,0.3,0.4,1,0.5\n'
                '\n'
                'v,0002,0.1,0.2,0.3,0.4,1,0.5\n'
                f'{bad_row}\n')
  with pytest.raises(ValueError, match=re.escape(f'{path}, line 4')) as info:
    ava_io.read_csv(path)
  assert message in str(info.value)


def test_malformed_groundtruth_and_exclusion_rows(tmp_path):
  gt = _write(tmp_path / 'gt.csv', 'v,0001,0.5,0.2,0.25,0.4,1,0\n')
  with pytest.raises(ValueError, match=re.escape(f'{gt}, line 1')):
    ava_io.read_csv(gt, is_groundtruth=True)  # x2 < x1.
  excl = _write(tmp_path / 'excl.csv', 'v,0001\nv,0002,extra\n')
  with pytest.raises(ValueError, match=re.escape(f'{excl}, line 2')):
    ava_io.read_exclusions(excl)


# ----------------------------------------------------------------------------
# Label map.


def test_read_label_map_demo_and_official_formats(tmp_path):
  # As written by tools/demo_writers.write_ava_label_map.
  demo = _write(tmp_path / 'demo.pbtxt', 'item {\n  name: "still"\n  id: 1\n}\n'
                'item {\n  name: "moving-left"\n  id: 2\n}\n')
  categories, ids = ava_io.read_label_map(demo)
  assert categories == [{'id': 1, 'name': 'still'},
                        {'id': 2, 'name': 'moving-left'}]
  assert ids == {1, 2}

  # Official AVA style, with comments, names holding commas / parentheses,
  # non-contiguous ids, label_id / display_name variants and one-line items.
  official = _write(tmp_path / 'ava.pbtxt', '# AVA v2.2, 60 classes\n'
                    'item {\n  name: "bend/bow (at the waist)"\n  id: 1\n}\n'
                    'item {\n  name: "talk to (e.g., self, a person)"\n'
                    '  id: 79  # trailing comment\n}\n'
                    'item {\n  display_name: "watch (a person)"\n'
                    '  label_id: 80\n}\n'
                    'item { name: "crawl" id: 5 }\n'
                    'item: { name: "a \\"quoted\\" name", id: 7 }\n')
  categories, ids = ava_io.read_label_map(official)
  assert [c['id'] for c in categories] == [1, 79, 80, 5, 7]
  assert categories[1]['name'] == 'talk to (e.g., self, a person)'
  assert categories[2]['name'] == 'watch (a person)'
  assert categories[4]['name'] == 'a "quoted" name'
  assert ids == {1, 5, 7, 79, 80}


def test_read_label_map_errors_name_file_and_line(tmp_path):
  repeated = _write(tmp_path / 'rep.pbtxt', 'item { name: "a" id: 1 }\n'
                    'item { name: "b" id: 1 }\n')
  with pytest.raises(ValueError, match=re.escape(f'{repeated}, line 2')):
    ava_io.read_label_map(repeated)
  no_id = _write(tmp_path / 'noid.pbtxt', 'item {\n  name: "a"\n}\n')
  with pytest.raises(ValueError, match='no id'):
    ava_io.read_label_map(no_id)
  broken = _write(tmp_path / 'broken.pbtxt', 'item {\n  name: "a"\n  id: 1\n')
  with pytest.raises(ValueError, match=re.escape(f'{broken}, line')):
    ava_io.read_label_map(broken)


# ----------------------------------------------------------------------------
# Streaming evaluator, official names and command line.


def test_ava_evaluator_equals_frame_map():
  a, b = _xbox(0, .5), _xbox(.5, 1)
  gt = {'v,0001': _gt([a, a, b], [1, 2, 2]), 'v,0002': _gt([b], [1])}
  det = {'v,0001': _det([a, a, b, b], [1, 2, 3, 1], [.9, .8, .7, .95]),
         'v,0002': _det([b, a], [1, 1], [.4, .6]),
         'v,0003': _det([a], [2], [.5])}
  want = ava_metrics.frame_map(gt, det, [1, 2, 3])
  evaluator = ava_metrics.AvaEvaluator()
  for key, frame in gt.items():
    evaluator.add_groundtruth(key, frame.boxes, frame.labels)
  for key, frame in det.items():
    evaluator.add_detections(key, frame.boxes, frame.labels, frame.scores)
  got = evaluator.result([1, 2, 3])
  # Class 1: ranked .95 FP (b on v1), .9 TP, .6 FP, .4 TP; 2 GT:
  # precision 0, 1/2, 1/3, 1/2 -> envelope .5 at both TPs -> AP = .5.
  # Class 2: .8 TP, .5 FP (v,0003 has no GT); 2 GT -> AP = .5 * 1 = .5.
  assert got['per_class_ap'][1] == pytest.approx(0.5)
  assert got['per_class_ap'][2] == pytest.approx(0.5)
  assert got['mAP'] == pytest.approx(want['mAP']) == pytest.approx(0.5)
  assert got['per_class_num_detections'] == want['per_class_num_detections']
  assert got['num_evaluated_classes'] == 2
  assert got['num_classes_with_groundtruth'] == 2
  assert got['num_keyframes'] == 3  # v,0001-v,0003 (v,0003: detections only).
  evaluator.reset()
  assert math.isnan(evaluator.result([1])['mAP'])
  with pytest.raises(ValueError):
    ava_metrics.AvaEvaluator(class_ids=[1]).result([1, 2])


def test_official_metric_names():
  result = {'mAP': 0.75, 'per_class_ap': {1: 1.0, 2: float('nan')},
            'iou_threshold': 0.5}
  names = ava_metrics.official_metric_names(
      result, [{'id': 1, 'name': 'stand'}, {'id': 2, 'name': 'sit'}])
  assert names['PascalBoxes_Precision/mAP@0.5IOU'] == 0.75
  assert names['PascalBoxes_PerformanceByCategory/AP@0.5IOU/stand'] == 1.0
  assert math.isnan(names['PascalBoxes_PerformanceByCategory/AP@0.5IOU/sit'])


def test_command_line_prints_map_and_class_names(tmp_path, capsys):
  labelmap = _write(tmp_path / 'labels.pbtxt', 'item {\n  name: "still"\n'
                    '  id: 1\n}\nitem {\n  name: "jump"\n  id: 2\n}\n')
  gt = _write(tmp_path / 'gt.csv', 'v,0001,0.0,0.0,0.5,1.0,1,0\n')
  det = _write(tmp_path / 'det.csv', 'v,0001,0.0,0.0,0.5,1.0,1,0.5\n')
  assert ava_map.main([f'--groundtruth={gt}', f'--detections={det}',
                       f'--labelmap={labelmap}']) == 0
  printed = capsys.readouterr().out
  assert 'frame-mAP@0.5IOU: 1.000000' in printed
  assert re.search(r'^\s+1\s+1\.000000\s+1\s+1\s+still$', printed, re.M)
  assert re.search(r'^\s+2\s+n/a\s+0\s+0\s+jump$', printed, re.M)


# ----------------------------------------------------------------------------
# The two protocols ('2018': SlowFast / MMAction2; 'current': ActivityNet's
# get_ava_performance.py since 2020) and the command line's messages.


def test_protocols_differ_on_keyframes_without_a_groundtruth_row():
  a = _xbox(0, .5)
  gt = {'v,0001': _gt([a], [1]),
        'v,0002': _gt([], [])}  # A `v,0002` row: a keyframe without actions.
  det = {'v,0001': _det([a], [1], [.6]),   # TP.
         'v,0002': _det([a], [1], [.8]),   # No box on an evaluated keyframe.
         'v,0003': _det([a], [1], [.9])}   # v,0003: no ground-truth row.
  # 2018: every detection counts. Ranked .9 FP, .8 FP, .6 TP; 1 GT:
  # precision 0, 0, 1/3 at recall 0, 0, 1 -> AP = 1 * 1/3.
  old = ava_metrics.frame_map(gt, det, {1})
  assert old['mAP'] == pytest.approx(1 / 3)
  assert old['per_class_num_detections'] == {1: 3}
  assert old['num_ignored_detections'] == 0
  assert old['num_keyframes'] == 3 and old['protocol'] == '2018'
  # current: v,0003 is ignored. Ranked .8 FP, .6 TP: precision 0, 1/2 at
  # recall 0, 1 -> AP = 1/2.
  new = ava_metrics.frame_map(gt, det, {1}, protocol='current')
  assert new['mAP'] == pytest.approx(1 / 2)
  assert new['per_class_num_detections'] == {1: 1 + 1}
  assert new['num_ignored_detections'] == 1
  assert new['num_keyframes'] == 2 and new['protocol'] == 'current'
  # Without the v,0002 row its detection is ignored too: .6 TP alone -> 1.
  only_boxes = {'v,0001': gt['v,0001']}
  assert ava_metrics.frame_map(only_boxes, det, {1},
                               protocol='current')['mAP'] == 1.0
  assert ava_metrics.frame_map(only_boxes, det, {1})['mAP'] == pytest.approx(
      1 / 3)  # 2018: the same as with the row (no box either way).
  # An excluded keyframe is dropped under both (v,0002 out: .9 FP, .6 TP
  # -> 1/2 under 2018; current: .6 TP -> 1).
  assert ava_metrics.frame_map(gt, det, {1}, ['v,0002'])['mAP'] == (
      pytest.approx(1 / 2))
  assert ava_metrics.frame_map(gt, det, {1}, ['v,0002'],
                               protocol='current')['mAP'] == 1.0
  with pytest.raises(ValueError, match="one of \\['2018', 'current'\\]"):
    ava_metrics.frame_map(gt, det, {1}, protocol='2020')

  # The streaming evaluator: add_groundtruth without boxes marks v,0002.
  evaluator = ava_metrics.AvaEvaluator(class_ids=[1])
  for key, frame in gt.items():
    evaluator.add_groundtruth(key, frame.boxes, frame.labels)
  for key, frame in det.items():
    evaluator.add_detections(key, frame.boxes, frame.labels, frame.scores)
  assert evaluator.result()['mAP'] == pytest.approx(1 / 3)
  assert evaluator.result(protocol='current')['mAP'] == pytest.approx(1 / 2)


_PROTOCOL_LABELS = 'item { name: "stand" id: 1 }\nitem { name: "sit" id: 2 }\n'
# Keyframes: 1 has a box of class 1; 2 has no actions (two-column row); 4
# has only a class outside the label map; 3 is not in the ground truth.
_PROTOCOL_GT = ('v,0001,0.0,0.0,0.5,1.0,1,0\n'
                'v,0002\n'
                'v,0004,0.0,0.0,0.5,1.0,3,0\n')
_PROTOCOL_DET = ('v,0001,0.0,0.0,0.5,1.0,1,0.6\n'
                 'v,0002,0.0,0.0,0.5,1.0,1,0.8\n'
                 'v,0003,0.0,0.0,0.5,1.0,1,0.9\n'
                 'v,0004,0.0,0.0,0.5,1.0,1,0.7\n'
                 'v,0005\n')


def test_read_csv_two_column_rows_by_protocol(tmp_path):
  gt = _write(tmp_path / 'gt.csv', _PROTOCOL_GT)
  frames = ava_io.read_csv(gt, {1, 2}, is_groundtruth=True,
                           protocol='current')
  # Every keyframe named by a row, in file order; 2 and 4 without boxes.
  assert list(frames) == ['v,0001', 'v,0002', 'v,0004']
  assert [f.labels.size for f in frames.values()] == [1, 0, 0]
  assert frames['v,0002'].boxes.shape == (0, 4)
  # '2018' (the default) stops at the row, naming file, line and the fix.
  with pytest.raises(ValueError, match=re.escape(f'{gt}, line 2: a two-column'
                                                 ' row')) as info:
    ava_io.read_csv(gt, {1, 2}, is_groundtruth=True)
  assert '--protocol=current' in str(info.value)
  bad = _write(tmp_path / 'bad.csv', 'v,0001,0.1\n')
  with pytest.raises(ValueError, match=re.escape(
      f'{bad}, line 1: expected 7 or 8 columns')) as info:
    ava_io.read_csv(bad, protocol='current')
  assert '(or 2: video_id,timestamp)' in str(info.value)
  with pytest.raises(ValueError, match=re.escape(f'{bad}, line 1')):
    ava_io.read_csv(_write(tmp_path / 'bad.csv', 'v,t1\n'), protocol='current')


def test_command_line_protocols_on_files(tmp_path, capsys, cli_error):
  labels = _write(tmp_path / 'labels.pbtxt', _PROTOCOL_LABELS)
  gt = _write(tmp_path / 'gt.csv', _PROTOCOL_GT)
  gt_boxes_only = _write(tmp_path / 'gt_boxes.csv',
                         'v,0001,0.0,0.0,0.5,1.0,1,0\n'
                         'v,0004,0.0,0.0,0.5,1.0,3,0\n')
  det = _write(tmp_path / 'det.csv', _PROTOCOL_DET)
  # The same without the two-column row (which '2018' rejects).
  det_boxes_only = _write(tmp_path / 'det_boxes.csv',
                          _PROTOCOL_DET.replace('v,0005\n', ''))
  # 1 GT box of class 1 (v,0001, matched by the .6 detection); class 3 is
  # not in the label map and class 2 has no ground truth.
  # current, gt.csv: v,0003 ignored; ranked .8 FP (v,0002), .7 FP (v,0004:
  # listed, its class-3 row whitelisted out), .6 TP -> AP = 1/3.
  # current, gt_boxes.csv: v,0002 and v,0003 ignored; .7 FP, .6 TP -> 1/2.
  # 2018, gt_boxes.csv: all four count; .9, .8, .7 FP, .6 TP -> 1/4.
  for gt_file, det_file, protocol, want, ignored in (
      (gt, det, 'current', 1 / 3, 1),
      (gt_boxes_only, det, 'current', 1 / 2, 2),
      (gt_boxes_only, det_boxes_only, '2018', 1 / 4, 0)):
    result = ava_map.evaluate_files(gt_file, det_file, labels,
                                    protocol=protocol)
    assert result['mAP'] == pytest.approx(want), (gt_file, protocol)
    assert result['num_ignored_detections'] == ignored
    capsys.readouterr()
    assert ava_map.main([f'-g={gt_file}', f'-d={det_file}', f'-l={labels}',
                         f'--protocol={protocol}']) == 0
    printed = capsys.readouterr().out
    assert f'frame-mAP@0.5IOU: {want:.6f}' in printed
    assert f'protocol {protocol})' in printed
    row_s = 'row' if ignored == 1 else 'rows'
    assert (f'{ignored} detection {row_s} on keyframes without a ground-truth '
            'row ignored (protocol current)' in printed) == bool(ignored)
  # The cap: 50 misses at .95 on v,0001 push its .6 TP out of the 50 rows
  # (AP 0); without a cap (SlowFast / MMAction2) the TP ranks 51st -> 1/51.
  crowded = _write(tmp_path / 'crowded.csv', 'v,0001,0.5,0.0,1.0,1.0,1,0.95\n'
                   * 50 + 'v,0001,0.0,0.0,0.5,1.0,1,0.6\n')
  assert ava_map.evaluate_files(gt_boxes_only, crowded, labels)['mAP'] == 0.0
  capsys.readouterr()
  assert ava_map.main([f'-g={gt_boxes_only}', f'-d={crowded}', f'-l={labels}',
                       '--max_detections_per_keyframe=0']) == 0
  assert (f'frame-mAP@0.5IOU: {1 / 51:.6f}' in capsys.readouterr().out)


def _cli_error(cli_error, *args):
  """Runs the ava_map command line; returns its one ERROR line (exit 2)."""
  return cli_error(ava_map.console_main, ['ava_map', *args])


def test_command_line_user_errors_name_the_file(tmp_path, capsys, monkeypatch,
                                                cli_error):
  monkeypatch.delenv('CONST_CL_DEBUG', raising=False)
  labels = _write(tmp_path / 'labels.pbtxt', _PROTOCOL_LABELS)
  gt = _write(tmp_path / 'gt.csv', _PROTOCOL_GT)
  det = _write(tmp_path / 'det.csv', _PROTOCOL_DET)
  # A two-column row under the default protocol.
  line = _cli_error(cli_error, '-g', gt, '-d', det, '-l', labels)
  assert line.startswith(f'ERROR: {gt}, line 2: a two-column row')
  assert '--protocol=current' in line
  # An empty label map (only a commented-out item): its file, not
  # "class_ids is empty".
  empty = _write(tmp_path / 'empty.pbtxt', '# item { name: "a" id: 1 }\n')
  line = _cli_error(cli_error, '-g', gt, '-d', det, '-l', empty,
                    '--protocol=current')
  assert line == (f'ERROR: Label map {empty} has no class: no top-level '
                  '"item { name: ... id: ... }" block (the evaluated classes).')
  # A binary file, an over-long field (csv.Error), a bad row, a bad
  # exclusion row, a missing file.
  png = tmp_path / 'det.png'
  png.write_bytes(b'\x89PNG\r\n\x1a\n\xff\xfe')
  line = _cli_error(cli_error, '-g', gt, '-d', str(png), '-l', labels,
                    '--protocol=current')
  assert line.startswith(f'ERROR: {png} is not UTF-8 text')
  huge = _write(tmp_path / 'huge.csv', 'v,0001,0,0,1,1,1,0.5\n'
                'v,' + 'x' * 200_000 + '\n')
  line = _cli_error(cli_error, '-g', gt, '-d', huge, '-l', labels,
                    '--protocol=current')
  assert line.startswith(f'ERROR: {huge}, line 2: not a CSV row (field '
                         'larger than field limit')
  bad = _write(tmp_path / 'bad.csv', 'v,0001,0,0,1,1,1,0.5\nv,0002,0,0,1,1,x\n')
  line = _cli_error(cli_error, '-g', gt, '-d', bad, '-l', labels,
                    '--protocol=current')
  assert line == (f"ERROR: {bad}, line 2: action_id 'x' is not an integer")
  excl = _write(tmp_path / 'excl.csv', 'v,0001\nv\n')
  line = _cli_error(cli_error, '-g', gt, '-d', det, '-l', labels, '-e', excl,
                    '--protocol=current')
  assert line.startswith(f'ERROR: {excl}, line 2: expected 2 columns')
  line = _cli_error(cli_error, '-g', gt, '-d', str(tmp_path / 'none.csv'), '-l',
                    labels, '--protocol=current')
  assert 'none.csv' in line
  line = _cli_error(cli_error, '-g', gt, '-d', det, '-l', labels,
                    '--protocol=2020')
  assert line == ('ERROR: flag --protocol=2020: value should be one of '
                  '<2018|current>')
