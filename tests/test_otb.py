"""Tests of the OTB one-pass evaluation (evaluation/otb*.py, dataloaders/tracking_datasets.py).

Three kinds: hand-computed worked examples (no toolkit needed), agreement
with the GOT-10k toolkit (got10k==0.1.3; skipped when it is not installed)
on random predictions and on a fake OTB folder read by both, and the readers
(OTB delimiters / multi-target / frame ranges, GOT-10k, the demo world).
"""

import json
import os
import re

import numpy as np
from PIL import Image
import pytest

from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.dataloaders import demo_world
from official_projects_const_cl.dataloaders import demo_writers
from official_projects_const_cl.dataloaders import tracking_datasets
from official_projects_const_cl.evaluation import otb
from official_projects_const_cl.evaluation import otb_metrics
from official_projects_const_cl.evaluation import otb_plots


def _toolkit_metrics():
  return pytest.importorskip('got10k.utils.metrics')


def _toolkit_experiment():
  return pytest.importorskip('got10k.experiments.otb').ExperimentOTB


# ----------------------------------------------------------------------------
# Hand-computed worked examples.


def test_box_centers_use_w_minus_1_over_2():
  # A box at x = 0 that is 10 px wide covers pixels 0..9: center 4.5.
  np.testing.assert_array_equal(
      otb_metrics.box_centers([[0, 0, 10, 10], [1, 1, 1, 1], [5, 2, 4, 7]]),
      [[4.5, 4.5], [1.0, 1.0], [6.5, 5.0]])


def test_center_errors_and_iou_by_hand():
  gt = [[10, 10, 20, 20]] * 4
  pred = [[20, 10, 20, 20],   # 10 px right: error 10; IoU 200/600 = 1/3.
          [22, 26, 20, 20],   # (12, 16) px: error exactly 20; IoU 32/768.
          [10, 10, 10, 10],   # Inside, half width and height: centers
                              # (14.5, 14.5) vs (19.5, 19.5): error 5*sqrt2;
                              # IoU 100/400.
          [40, 10, 20, 20]]   # Touching edges: IoU 0; error 30.
  np.testing.assert_allclose(otb_metrics.center_errors(pred, gt),
                             [10, 20, 5 * np.sqrt(2), 30], atol=1e-12)
  # Areas are w * h (no +1 pixel term): a +1 convention would give
  # 11*21/(2*441-231), 5*5/(2*441-25), 121/441 and 0.
  np.testing.assert_allclose(otb_metrics.iou(pred, gt),
                             [1 / 3, 8 * 4 / 768, 0.25, 0.0], atol=1e-12)
  assert otb_metrics.center_errors(pred, gt)[1] == 20.0  # An exact tie below.


def test_worked_example_three_frames():
  # One 3-frame sequence.
  #   frame 1: the prediction is garbage, but OPE replaces it with the
  #            ground truth: IoU 1 (up to eps), center error 0.
  #   frame 2: gt (10, 10, 20, 20), pred 10 px to the right: intersection
  #            10 x 20 = 200, union 400 + 400 - 200 = 600, IoU 1/3; error 10.
  #   frame 3: gt (0, 0, 10, 10), pred shifted by (30, 40): IoU 0; error 50.
  # Precision(t) = #{error <= t} / 3:
  #   t = 0..9: 1/3 (frame 1), t = 10..49: 2/3, t = 50: 3/3 (<= includes 50).
  #   precision_score = precision(20) = 2/3.
  # Success(t) = #{IoU > t} / 3 for t = 0, 0.05, ..., 1:
  #   t = 0 .. 0.30 (7 thresholds): frames 1, 2 -> 2/3 (frame 3 has IoU 0,
  #     which is not > 0);
  #   t = 0.35 .. 0.95 (13 thresholds): frame 1 -> 1/3;
  #   t = 1: nothing is > 1 -> 0.
  #   AUC = (7 * 2/3 + 13 * 1/3 + 0) / 21 = (14/3 + 13/3) / 21 = 9/21 = 3/7.
  #   success_rate = success(0.5) = 1/3.
  # (With >= instead of > the AUC would be (1 + 6*2/3 + 13/3 + 1/3)/21 =
  # 29/63; without the first-frame replacement frame 1 would fail.)
  gt = np.array([[5, 5, 10, 10], [10, 10, 20, 20], [0, 0, 10, 10]], float)
  pred = np.array([[300, 300, 5, 5], [20, 10, 20, 20], [30, 40, 10, 10]],
                  float)
  ious, errors = otb_metrics.frame_metrics(pred, gt)
  np.testing.assert_allclose(ious, [1, 1 / 3, 0], atol=1e-12)
  np.testing.assert_allclose(errors, [0, 10, 50], atol=1e-12)

  result = otb_metrics.evaluate_sequences({'seq': (pred, gt)})
  expected_prec = np.array([1 / 3] * 10 + [2 / 3] * 40 + [1.0])
  expected_succ = np.array([2 / 3] * 7 + [1 / 3] * 13 + [0.0])
  np.testing.assert_allclose(result['precision_curve'], expected_prec,
                             atol=1e-12)
  np.testing.assert_allclose(result['success_curve'], expected_succ,
                             atol=1e-12)
  assert result['precision_score'] == pytest.approx(2 / 3, abs=1e-12)
  assert result['success_score'] == pytest.approx(3 / 7, abs=1e-12)
  assert result['success_rate'] == pytest.approx(1 / 3, abs=1e-12)
  assert result['num_sequences'] == 1
  seq = result['per_sequence']['seq']
  assert seq['success_score'] == pytest.approx(3 / 7, abs=1e-12)
  assert seq['num_frames'] == 3
  assert result['iou_thresholds'][10] == 0.5
  assert result['center_error_thresholds'][20] == 20
  # The input was not modified by the first-frame replacement.
  assert pred[0, 0] == 300
  # Without OPE initialisation (not the toolkit's protocol), frame 1 fails.
  raw = otb_metrics.evaluate_sequences({'seq': (pred, gt)}, init_with_gt=False)
  assert raw['precision_score'] == pytest.approx(1 / 3, abs=1e-12)


def test_precision_counts_ties_and_success_is_strict():
  # Error exactly 20 passes 20 px; IoU exactly 0 fails threshold 0.
  np.testing.assert_array_equal(
      otb_metrics.precision_curve([20.0, 21.0], [19, 20, 21]), [0.0, 0.5, 1.0])
  np.testing.assert_array_equal(
      otb_metrics.success_curve([0.0, 0.5, 1.0], [0.0, 0.5, 1.0]), [2 / 3, 1 / 3, 0])


def test_scores_read_20px_and_iou_half():
  # frame 1: init (IoU 1, error 0);
  # frame 2: 200 x 200 box shifted by (12, 16): error exactly 20,
  #   IoU 188*184 / (80000 - 188*184) = 0.762;
  # frame 3: height 52 instead of 100, same top-left: centers differ by
  #   (100 - 52) / 2 = 24 px; IoU 5200 / 10000 = 0.52.
  # precision(19) = 1/3, precision(20) = 2/3: the score is read at 20 px.
  # success(0.5) = 3/3, success(0.55) = 2/3: success_rate is read at 0.5.
  gt = [[0, 0, 200, 200], [0, 0, 200, 200], [0, 0, 100, 100]]
  pred = [[0, 0, 200, 200], [12, 16, 200, 200], [0, 0, 100, 52]]
  result = otb_metrics.evaluate_sequences({'s': (pred, gt)})
  assert result['precision_curve'][19:22] == pytest.approx([1 / 3, 2 / 3,
                                                            2 / 3])
  assert result['precision_score'] == pytest.approx(2 / 3)
  assert result['success_curve'][10:12] == pytest.approx([1, 2 / 3])
  assert result['success_rate'] == 1.0


def test_speed_like_the_toolkit():
  # Per sequence mean(1 / t) over t > 0; overall mean over the sequences
  # that have a speed; -1 where none.
  box = [[0, 0, 5, 5]] * 3
  result = otb_metrics.evaluate_sequences(
      {'a': (box, box), 'b': (box, box), 'c': (box, box)},
      times={'a': [0, 0.1, 0.05], 'b': [0.25, 0.5, 0.25]})
  assert result['per_sequence']['a']['speed_fps'] == pytest.approx(15)
  assert result['per_sequence']['b']['speed_fps'] == pytest.approx(10 / 3)
  assert result['per_sequence']['c']['speed_fps'] == -1
  assert result['speed_fps'] == pytest.approx((15 + 10 / 3) / 2)


def test_curves_are_averaged_per_sequence():
  # Sequence a (2 frames): frame 1 = gt, frame 2 lost -> precision(20) 1/2.
  # Sequence b (4 frames): all within 20 px -> 1.
  # Mean over sequences: (1/2 + 1) / 2 = 0.75 (pooling the 6 frames would
  # give 5/6). Success at 0.5: a 1/2, b 1 (frames 2-4 shifted by 1 px of
  # 20: IoU 19*20/(800-380) = 0.905) -> 0.75 as well.
  box = [0, 0, 20, 20]
  near = [1, 0, 20, 20]
  far = [100, 100, 20, 20]
  result = otb_metrics.evaluate_sequences({
      'a': ([box, far], [box, box]),
      'b': ([box, near, near, near], [box] * 4)})
  assert result['precision_score'] == pytest.approx(0.75, abs=1e-12)
  assert result['success_rate'] == pytest.approx(0.75, abs=1e-12)
  assert result['per_sequence']['a']['precision_score'] == 0.5
  assert result['per_sequence']['b']['precision_score'] == 1.0
  # The overall AUC is the plain mean of the two sequences' AUCs.
  assert result['success_score'] == pytest.approx(
      (result['per_sequence']['a']['success_score'] +
       result['per_sequence']['b']['success_score']) / 2, abs=1e-12)


def test_invalid_ground_truth_frames_count_as_failures():
  # 4 frames, frame 3 has NaN ground truth and frame 4 a zero-width one; the
  # predictions are perfect. NaN: IoU NaN and error NaN -> fails everything
  # but stays in the denominator. Zero width: IoU 0 (fails success), error
  # 0 (passes precision).
  gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4, [5, 5, 0, 8]])
  pred = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10],
                   [5, 5, 0, 8]])
  ious, errors = otb_metrics.frame_metrics(pred, gt)
  assert np.isnan(ious[2]) and np.isnan(errors[2])
  assert ious[3] == 0.0 and errors[3] == 0.0
  result = otb_metrics.evaluate_sequences({'s': (pred, gt)})
  assert result['precision_score'] == pytest.approx(3 / 4)
  assert result['success_rate'] == pytest.approx(2 / 4)
  # Success: frames 1, 2 pass every threshold but 1 -> 20 * 2/4 / 21.
  assert result['success_score'] == pytest.approx(20 * 0.5 / 21)


def test_perfect_tracker_scores_20_over_21():
  gt = np.array([[3, 4, 30, 40], [5, 6, 31, 41], [7, 8, 29, 39]], float)
  result = otb_metrics.evaluate_sequences({'s': (gt, gt)})
  assert result['success_score'] == pytest.approx(20 / 21, abs=1e-12)
  assert result['precision_score'] == 1.0 and result['success_rate'] == 1.0


def test_single_frame_sequence():
  # Only the initialisation frame: it is the ground truth, so it succeeds.
  # (The toolkit itself cannot read a 1-line result file: np.loadtxt gives
  # a 1-D array.)
  result = otb_metrics.evaluate_sequences({'s': ([0, 0, 1, 1], [[4, 5, 6, 7]])})
  assert result['precision_score'] == 1.0
  assert result['success_score'] == pytest.approx(20 / 21)
  assert tracking_datasets.parse_boxes('1,2,3,4').shape == (1, 4)


def test_errors():
  with pytest.raises(ValueError, match='differ in number'):
    otb_metrics.iou(np.zeros([3, 4]), np.zeros([2, 4]))
  with pytest.raises(ValueError, match=r'\[N, 4\]'):
    otb_metrics.as_boxes(np.zeros([3, 5]))
  with pytest.raises(ValueError, match='No sequences'):
    otb_metrics.evaluate_sequences({})
  with pytest.raises(ValueError, match='at least one frame'):
    otb_metrics.evaluate_sequences({'s': (np.zeros([0, 4]), np.zeros([0, 4]))})


# ----------------------------------------------------------------------------
# Agreement with the GOT-10k toolkit.


def _synthetic_sequences(seed):
  """Random (pred, gt) pairs with the awkward cases the toolkit meets."""
  rng = np.random.default_rng(seed)
  sequences = {}
  # No 1-frame sequence: the toolkit's np.loadtxt reads a 1-line result file
  # as a 1-D array and its report crashes on it (ours handles it).
  for k, length in enumerate([2, 3, 5, 17, 60, 151]):
    xy = rng.uniform(0, 300, [length, 2])
    wh = rng.uniform(1, 80, [length, 2])
    # Quarter pixels: exact in binary and in the toolkit's '%.3f' result
    # files, so the exact ties below survive the round trip.
    gt = np.round(np.concatenate([xy, wh], 1) * 4) / 4
    scale = [0.5, 3, 8, 15, 40, 100][k]
    pred = np.round((gt + rng.normal(0, scale, gt.shape)) * 4) / 4
    pred[:, 2:] = np.abs(pred[:, 2:])
    if length >= 3:
      pred[0] = [999, 999, 3, 3]  # Replaced by OPE.
      pred[1] = gt[1] + [500, 500, 0, 0]  # No overlap.
    if length >= 17:
      gt[3] = np.nan  # Missing annotation.
      gt[4, 2] = 0  # Zero-size ground truth.
      gt[5, 2:] = 0
      pred[6] = gt[6] + [12, 16, 0, 0]  # Center error exactly 20.
      pred[7] = gt[7] + [30, 40, 0, 0]  # Exactly 50.
      pred[8] = gt[8]  # Same box.
      pred[9, 2] = 0  # Zero-size prediction.
      pred[10] = [gt[10, 0] + gt[10, 2], gt[10, 1], 5, 5]  # Touching.
      gt[11, 2:] = [30, 12]
      pred[11] = gt[11] + [10, 0, 0, 0]  # IoU 240 / 480: exactly 0.5.
    sequences[f'seq{k}'] = (pred, gt)
  return sequences


def test_frame_metrics_match_toolkit():
  metrics = _toolkit_metrics()
  for pred, gt in _synthetic_sequences(0).values():
    np.testing.assert_allclose(otb_metrics.iou(pred, gt),
                               metrics.rect_iou(pred.copy(), gt.copy()),
                               rtol=0, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(otb_metrics.center_errors(pred, gt),
                               metrics.center_error(pred, gt),
                               rtol=0, atol=1e-12, equal_nan=True)


class _FakeDataset:
  """The part of got10k.datasets.OTB that ExperimentOTB.report uses."""

  def __init__(self, annos):
    self.seq_names = list(annos)
    self._annos = [annos[n] for n in self.seq_names]

  def __len__(self):
    return len(self._annos)

  def __iter__(self):
    return iter([([], anno) for anno in self._annos])


def _toolkit_report(tmp_path, dataset, results_root, tracker):
  experiment_cls = _toolkit_experiment()
  # Bypass __init__, which would try to download OTB.
  exp = experiment_cls.__new__(experiment_cls)
  exp.dataset = dataset
  exp.result_dir = str(results_root)
  exp.report_dir = str(tmp_path / 'toolkit_reports')
  exp.nbins_iou, exp.nbins_ce = 21, 51
  exp.plot_curves = lambda names: None  # Its 300-dpi plots are slow.
  return exp.report([tracker])[tracker]


def _assert_same_scores(ours, theirs, tol=1e-6):
  for key in ('success_score', 'precision_score', 'success_rate',
              'speed_fps'):
    assert ours[key] == pytest.approx(theirs[key], abs=tol), key
  for key in ('success_curve', 'precision_curve'):
    np.testing.assert_allclose(ours[key], theirs[key], rtol=0, atol=tol)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_evaluate_sequences_matches_toolkit_report(tmp_path, seed):
  sequences = _synthetic_sequences(seed)
  rng = np.random.default_rng(seed)
  results = tmp_path / 'results' / 'T'
  times = {}
  for name, (pred, _) in sequences.items():
    (results / 'times').mkdir(parents=True, exist_ok=True)
    # The toolkit's record format (3 decimals); read back for both.
    np.savetxt(results / f'{name}.txt', pred, fmt='%.3f', delimiter=',')
    if name != 'seq2':  # One sequence without times.
      times[name] = rng.uniform(0, 0.1, len(pred))
      times[name][0] = 0  # Skipped.
      np.savetxt(results / 'times' / f'{name}_time.txt', times[name],
                 fmt='%.8f')
  theirs = _toolkit_report(
      tmp_path, _FakeDataset({n: gt for n, (_, gt) in sequences.items()}),
      tmp_path / 'results', 'T')
  ours = otb.evaluate_results_dir(
      str(results), {n: gt for n, (_, gt) in sequences.items()})
  _assert_same_scores(ours, theirs['overall'])
  assert list(ours['per_sequence']) == list(theirs['seq_wise'])
  for name, seq in ours['per_sequence'].items():
    _assert_same_scores(seq, theirs['seq_wise'][name])
  # The scores are not trivial (the cases above do bite).
  assert 0.1 < ours['success_score'] < 0.9
  assert 0.1 < ours['precision_score'] < 0.99


# ----------------------------------------------------------------------------
# Readers.


def _touch_frames(seq_dir, numbers, digits=4):
  img = seq_dir / 'img'
  img.mkdir(parents=True, exist_ok=True)
  for i in numbers:
    (img / f'{i:0{digits}d}.jpg').write_bytes(b'')


def _random_gt(rng, n):
  xy = np.round(rng.uniform(0, 200, [n, 2]))
  wh = np.round(rng.uniform(5, 60, [n, 2]))
  return np.concatenate([xy, wh], 1)


def _write_gt(path, boxes, sep):
  seps = sep if isinstance(sep, list) else [sep] * len(boxes)
  path.write_text(''.join(s.join(f'{v:g}' for v in b) + '\n'
                          for b, s in zip(boxes, seps)))


def _fake_otb_root(tmp_path):
  """An OTB folder with the distribution's quirks; returns (root, gt)."""
  rng = np.random.default_rng(7)
  root = tmp_path / 'OTB100'
  gt = {}

  def add(folder, frames, n_boxes, files, digits=4):
    _touch_frames(root / folder, frames, digits)
    for fname, sep in files:
      boxes = _random_gt(rng, n_boxes) if sep is not None else None
      path = root / folder / fname
      if boxes is None:
        path.write_text('\n')  # Empty annotation (Human4's .1).
      else:
        _write_gt(path, boxes, sep)
      yield boxes

  def register(name, boxes):
    gt[name] = boxes

  register('Basketball', *add('Basketball', range(1, 31), 30,
                              [('groundtruth_rect.txt', '\t')]))
  b1, b2 = add('Jogging', range(1, 26), 25,
               [('groundtruth_rect.1.txt', ','),
                ('groundtruth_rect.2.txt', ' ')])
  register('Jogging.1', b1)
  register('Jogging.2', b2)
  b1, b2 = add('Skating2', range(1, 13), 12,
               [('groundtruth_rect.1.txt', ', '),
                ('groundtruth_rect.2.txt', '\t')])
  register('Skating2.1', b1)
  register('Skating2.2', b2)
  _, b2 = add('Human4', range(1, 21), 20,
              [('groundtruth_rect.1.txt', None),
               ('groundtruth_rect.2.txt', ',')])
  register('Human4', b2)
  # David: 770 images, boxes for frames 300..770 only.
  register('David', *add('David', range(1, 771), 471,
                         [('groundtruth_rect.txt', ',')]))
  register('Freeman4', *add('Freeman4', range(1, 298), 283,
                            [('groundtruth_rect.txt', ',')]))
  # BlurCar1: frames 0247..0300 only; mixed tab / space delimiters.
  seps = ['\t'] * 54
  seps[10] = ' '
  register('BlurCar1', *add('BlurCar1', range(247, 301), 54,
                            [('groundtruth_rect.txt', seps)]))
  register('Board', *add('Board', range(1, 41), 40,
                         [('groundtruth_rect.txt', ',')], digits=5))
  # Tiger1: no special range in the toolkit; one missing annotation.
  boxes, = add('Tiger1', range(1, 16), 15, [('groundtruth_rect.txt', ',')])
  boxes[4] = np.nan
  _write_gt(root / 'Tiger1' / 'groundtruth_rect.txt', boxes, ',')
  register('Tiger1', boxes)
  return root, gt


def test_otb_reader_layout_and_quirks(tmp_path):
  root, gt = _fake_otb_root(tmp_path)
  names = tracking_datasets.list_otb_sequences(str(root))
  assert names == ['Basketball', 'BlurCar1', 'Board', 'David', 'Freeman4',
                   'Human4', 'Jogging.1', 'Jogging.2', 'Skating2.1',
                   'Skating2.2', 'Tiger1']
  assert tracking_datasets.list_otb_sequences(str(root), ['Jogging', 'David']) == [
      'David', 'Jogging.1', 'Jogging.2']
  for name in names:
    seq = tracking_datasets.read_otb_sequence(str(root), name)
    np.testing.assert_array_equal(seq.boxes, gt[name])
    assert len(seq.img_files) == len(gt[name])
  david = tracking_datasets.read_otb_sequence(str(root), 'David')
  assert os.path.basename(david.img_files[0]) == '0300.jpg'
  assert os.path.basename(david.img_files[-1]) == '0770.jpg'
  freeman4 = tracking_datasets.read_otb_sequence(str(root), 'Freeman4')
  assert os.path.basename(freeman4.img_files[-1]) == '0283.jpg'
  assert os.path.basename(
      tracking_datasets.read_otb_sequence(str(root), 'BlurCar1').img_files[0]) == '0247.jpg'
  jog2 = tracking_datasets.read_otb_sequence(str(root), 'Jogging.2')
  assert os.path.dirname(os.path.dirname(jog2.img_files[0])).endswith(
      'Jogging')
  with pytest.raises(KeyError, match='Jogging.1'):
    tracking_datasets.read_otb_sequence(str(root), 'Jogging')


def test_parse_boxes_delimiters():
  text = '1,2,3,4\n5\t6\t7\t8\n\n9 10  11 12\n13, 14,\t15 16\nNaN,NaN,NaN,NaN\n'
  boxes = tracking_datasets.parse_boxes(text)
  np.testing.assert_array_equal(boxes[:4], np.arange(1, 17).reshape(4, 4))
  assert np.isnan(boxes[4]).all()
  assert tracking_datasets.parse_boxes('').shape == (0, 4)
  with pytest.raises(ValueError, match='Line 2'):
    tracking_datasets.parse_boxes('1,2,3,4\n1,2,3\n')


def test_otb_reader_and_cli_match_toolkit_end_to_end(tmp_path, capsys):
  _toolkit_experiment()
  from got10k.datasets.otb import OTB  # pylint: disable=g-import-not-at-top
  root, gt = _fake_otb_root(tmp_path)
  dataset = OTB(str(root), version=2015, download=False)
  assert dataset.seq_names == tracking_datasets.list_otb_sequences(str(root))
  for s, name in enumerate(dataset.seq_names):
    img_files, anno = dataset[s]
    seq = tracking_datasets.read_otb_sequence(str(root), name)
    assert seq.img_files == img_files
    np.testing.assert_array_equal(seq.boxes, anno)

  rng = np.random.default_rng(3)
  results = tmp_path / 'results'
  for tracker, scale in (('Good', 3.0), ('Poor', 25.0)):
    (results / tracker).mkdir(parents=True)
    for name, boxes in gt.items():
      pred = boxes + rng.normal(0, scale, boxes.shape)
      np.savetxt(results / tracker / f'{name}.txt', pred, fmt='%.3f',
                 delimiter=',')
  capsys.readouterr()
  out = otb.main(['--root', str(root),
                  '--results', str(results / 'Good'), str(results / 'Poor'),
                  '--report_dir', str(tmp_path / 'ours')])
  printed = json.loads(capsys.readouterr().out)
  assert printed == out
  with open(tmp_path / 'ours' / 'performance.json') as f:
    ours = json.load(f)
  for tracker in ('Good', 'Poor'):
    theirs = _toolkit_report(tmp_path, dataset, results, tracker)
    _assert_same_scores(ours[tracker]['overall'], theirs['overall'])
    assert list(ours[tracker]['seq_wise']) == list(theirs['seq_wise'])
    for name in theirs['seq_wise']:
      _assert_same_scores(ours[tracker]['seq_wise'][name],
                          theirs['seq_wise'][name])
    assert out['trackers'][tracker]['success_score'] == pytest.approx(
        theirs['overall']['success_score'], abs=1e-6)
  assert (out['trackers']['Good']['success_score'] >
          out['trackers']['Poor']['success_score'])
  for path in out['files'][1:]:
    assert _is_png(path)


def test_missing_results_are_reported(tmp_path, cli_error):
  gt = {'a': np.ones([2, 4]), 'b': np.ones([2, 4])}
  (tmp_path / 'r').mkdir()
  np.savetxt(tmp_path / 'r' / 'a.txt', np.ones([2, 4]), delimiter=',')
  with pytest.raises(FileNotFoundError, match=r"\['b'\]"):
    otb.evaluate_results_dir(str(tmp_path / 'r'), gt)
  result = otb.evaluate_results_dir(str(tmp_path / 'r'), gt,
                                    skip_missing=True)
  assert list(result['per_sequence']) == ['a']
  with pytest.raises(ValueError, match=re.escape(
      f"a: {tmp_path / 'r' / 'a.txt'} has 2 boxes but the ground truth has 3 "
      'frames')):
    otb.evaluate_results_dir(str(tmp_path / 'r'), {'a': np.ones([3, 4])})


def _tiny_otb_root(tmp_path, num_frames=30):
  """An OTB root with one sequence, Basketball, of `num_frames` frames."""
  seq = tmp_path / 'OTB' / 'Basketball'
  (seq / 'img').mkdir(parents=True)
  for k in range(1, num_frames + 1):
    (seq / 'img' / f'{k:04d}.jpg').write_bytes(b'')  # Only listed, not read.
  boxes = np.tile([[10.0, 20.0, 30.0, 40.0]], [num_frames, 1])
  np.savetxt(seq / 'groundtruth_rect.txt', boxes, fmt='%g', delimiter=',')
  return str(tmp_path / 'OTB'), boxes


def _otb_cli_error(cli_error, *args):
  """Runs the otb command line; returns its one ERROR line (exit 2)."""
  return cli_error(otb.console_main, ['otb', *args])


def test_command_line_user_errors_name_sequence_and_file(tmp_path, capsys,
                                                         monkeypatch, cli_error):
  monkeypatch.delenv('CONST_CL_DEBUG', raising=False)
  root, boxes = _tiny_otb_root(tmp_path)
  results = tmp_path / 'predictions'
  results.mkdir()
  pred = results / 'Basketball.txt'
  np.savetxt(pred, boxes[:25], fmt='%g', delimiter=',')
  assert _otb_cli_error(cli_error, '--root', root, '--results', str(results)) == (
      f'ERROR: Basketball: {pred} has 25 boxes but the ground truth has 30 '
      'frames (one box per frame, the first included)')
  pred.write_text('1,2,3,4\n1,2,3,4\n1,2,x,4\n')
  assert _otb_cli_error(cli_error, '--root', root, '--results', str(results)) == (
      f"ERROR: {pred}: Line 3: expected 4 numbers (x, y, w, h), got "
      "'1,2,x,4'.")
  pred.write_bytes(b'\xff\xfe\x00')
  assert _otb_cli_error(cli_error, '--root', root, '--results',
                        str(results)).startswith(
                            f'ERROR: {pred}: not a text file')
  np.savetxt(pred, boxes, fmt='%g', delimiter=',')
  (results / 'times').mkdir()
  times = results / 'times' / 'Basketball_time.txt'
  times.write_text('0.1\nfast\n')
  assert _otb_cli_error(cli_error, '--root', root, '--results', str(results)) == (
      f"ERROR: {times}, line 2: expected numbers, got 'fast'.")
  times.unlink()
  # An unknown sequence (a KeyError of the reader) and a bad --names.
  assert _otb_cli_error(cli_error, '--root', root, '--results', str(results),
                        '--sequences', 'Nope') == (
                            f"ERROR: Unknown sequences under {root!r}: "
                            "['Nope'].")
  assert _otb_cli_error(cli_error, '--root', root, '--results', str(results),
                        '--names', 'a,b').startswith(
                            'ERROR: Need one distinct tracker name per '
                            '--results folder')
  # The same files, corrected, score: all 30 boxes equal the ground truth.
  capsys.readouterr()
  out = otb.main(['--root', root, '--results', str(results)])
  assert out['trackers']['predictions']['success_rate'] == 1.0


# ----------------------------------------------------------------------------
# Plots.


def _is_png(path):
  with open(path, 'rb') as f:
    if f.read(8) != b'\x89PNG\r\n\x1a\n':
      return False
  with Image.open(path) as image:
    image.verify()
  with Image.open(path) as image:
    image.load()
    return image.format == 'PNG' and min(image.size) > 100


def test_plot_curves_writes_valid_pngs(tmp_path):
  sequences = _synthetic_sequences(0)
  good = otb_metrics.evaluate_sequences(sequences)
  perfect = otb_metrics.evaluate_sequences({n: (gt, gt)
                                    for n, (_, gt) in sequences.items()})
  paths = otb_plots.plot_curves({'Ours': good, 'Oracle': perfect},
                          str(tmp_path / 'plots'), dpi=80)
  assert [os.path.basename(p) for p in paths] == ['success_plots.png',
                                                  'precision_plots.png']
  for path in paths:
    assert _is_png(path)
  with pytest.raises(ValueError):
    otb_plots.plot_curves({}, str(tmp_path / 'none'))


# ----------------------------------------------------------------------------
# GOT-10k layout and the demo world.


def _demo_videos(num):
  cfg = demo_world.DemoWorldConfig(num_frames=6, height=40, width=48)
  return list(demo_data.iter_demo_videos(0, 'trk', num, cfg))


def test_reads_demo_world_otb_output_and_scores_it(tmp_path, capsys):
  videos = _demo_videos(2)
  root = tmp_path / 'otb_val'
  names = demo_writers.write_tracking_sequences(videos, str(root), layout='otb')
  assert tracking_datasets.list_otb_sequences(str(root)) == names
  for name, (_, video) in zip(names, videos):
    seq = tracking_datasets.read_otb_sequence(str(root), name)
    assert len(seq.img_files) == 6 == len(seq.boxes)
    with Image.open(seq.img_files[0]) as image:
      assert image.size == (48, 40)
    np.testing.assert_array_equal(
        seq.boxes, np.loadtxt(root / name / 'groundtruth_rect.txt',
                              delimiter=','))
    # 1-based (x, y, w, h) of the main object.
    px = video.boxes_pixels[:, 0]
    np.testing.assert_allclose(seq.boxes[:, 0], px[:, 1] + 1, atol=1e-3)
  # A perfect tracker (its results are the ground truth) through the CLI.
  results = tmp_path / 'results' / 'Oracle'
  results.mkdir(parents=True)
  for name in names:
    np.savetxt(results / f'{name}.txt',
               tracking_datasets.read_otb_sequence(str(root), name).boxes, delimiter=',')
  capsys.readouterr()
  out = otb.main(['--root', str(root), '--results', str(results)])
  summary = out['trackers']['Oracle']
  assert summary['success_score'] == pytest.approx(20 / 21, abs=1e-9)
  assert summary['precision_score'] == 1.0
  assert summary['success_rate'] == 1.0
  assert summary['num_sequences'] == 2 and summary['speed_fps'] == -1
  assert out['files'] == []


def test_got10k_reader_matches_toolkit_on_demo_output(tmp_path):
  videos = _demo_videos(2)
  root = tmp_path / 'GOT-10k'
  names = demo_writers.write_tracking_sequences(
      videos, str(root / 'train'), layout='got10k', objects='all')
  assert tracking_datasets.list_got10k_sequences(str(root), 'train') == names
  # Without subset, root is the subset folder itself (demo_data's layout).
  assert tracking_datasets.list_got10k_sequences(str(root / 'train')) == names
  seq = tracking_datasets.read_got10k_sequence(str(root / 'train'), names[0])
  assert len(seq.img_files) == 6 and seq.boxes.shape == (6, 4)
  vis = videos[0][1].visibility[:, 0]
  np.testing.assert_array_equal(seq.absence, (vis <= 0).astype(float))
  np.testing.assert_array_equal(seq.cover, np.round(vis * 8))
  assert seq.cut_by_image is None and seq.meta is None
  # 0-based pixels.
  np.testing.assert_allclose(seq.boxes[:, 0],
                             videos[0][1].boxes_pixels[:, 0, 1], atol=1e-3)

  got10k_datasets = pytest.importorskip('got10k.datasets.got10k')
  # Complete one sequence's metadata as in the real dataset.
  seq_dir = root / 'train' / names[0]
  (seq_dir / 'cut_by_image.label').write_text('0\n1\n0\n0\n0\n0\n')
  (seq_dir / 'meta_info.ini').write_text(
      '[METAINFO]\nobject_class: demo\nmotion_adverb: slowly\n')
  dataset = got10k_datasets.GOT10k(str(root), subset='train',
                                   return_meta=True)
  assert dataset.seq_names == names
  img_files, anno, meta = dataset[names[0]]
  ours = tracking_datasets.read_got10k_sequence(str(root), names[0], subset='train')
  assert ours.img_files == img_files
  np.testing.assert_array_equal(ours.boxes, anno)
  for key in ('absence', 'cover', 'cut_by_image'):
    np.testing.assert_array_equal(getattr(ours, key), meta[key])
  assert ours.meta == {'object_class': 'demo', 'motion_adverb': 'slowly'}


def test_got10k_count_errors_name_the_file(tmp_path):
  seq = tmp_path / 'val' / 'GOT-10k_Val_000001'
  seq.mkdir(parents=True)
  for k in range(1, 4):
    (seq / f'{k:08d}.jpg').write_bytes(b'')
  (seq / 'groundtruth.txt').write_text('1,2,3,4\n1,2,3,4\n')
  with pytest.raises(ValueError, match=re.escape(
      f"3 frames but 2 boxes in {seq / 'groundtruth.txt'}.")):
    tracking_datasets.read_got10k_sequence(str(tmp_path), seq.name, 'val')
  (seq / 'groundtruth.txt').write_text('1,2,3,4\n1,2,3,4\n1,2,3,4\n')
  (seq / 'absence.label').write_text('0\n0\n')
  with pytest.raises(ValueError, match=re.escape(
      f"3 frames but 2 absence labels in {seq / 'absence.label'}.")):
    tracking_datasets.read_got10k_sequence(str(tmp_path), seq.name, 'val')
  (seq / 'absence.label').write_text('0\n0\nyes\n')
  with pytest.raises(ValueError, match=re.escape(
      f"{seq / 'absence.label'}, line 3: expected numbers, got 'yes'.")):
    tracking_datasets.read_got10k_sequence(str(tmp_path), seq.name, 'val')
