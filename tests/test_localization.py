"""Action localization: keyframe input, localizer head, loss, experiments."""

import numpy as np
import pytest
import tensorflow as tf

from official.core import exp_factory
from official_projects_const_cl.configs import localization as loc_cfg
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.dataloaders import localization_input as li
from official_projects_const_cl.modeling import action_localizer
from official_projects_const_cl.tasks import localization
from test_pretrain_input import _coded_frame, _level  # pylint: disable=g-multiple-import


def _keyframe_example(num_stored=8, keyframe=4, gt=(), labels=(), dets=(),
                      scores=(), media_id=b'vid', timestamp=902):
  """A keyframe SequenceExample with frames coding their stored position."""
  seq = tf.train.SequenceExample()
  ctx = seq.context.feature
  ctx[features.MEDIA_ID_KEY].bytes_list.value[:] = [media_id]
  ctx[features.KEYFRAME_TIMESTAMP_KEY].int64_list.value[:] = [timestamp]
  ctx[features.KEYFRAME_INDEX_KEY].int64_list.value[:] = [keyframe]
  gt = np.asarray(gt, np.float32).reshape(-1, 4)
  dets = np.asarray(dets, np.float32).reshape(-1, 4)
  for i, key in enumerate(features.GT_BBOX_KEYS):
    ctx[key].float_list.value[:] = gt[:, i].tolist()
  for i, key in enumerate(features.DET_BBOX_KEYS):
    ctx[key].float_list.value[:] = dets[:, i].tolist()
  ctx[features.DET_SCORE_KEY].float_list.value[:] = list(scores)
  ctx[features.GT_LABEL_BOX_KEY].int64_list.value[:] = [b for b, _ in labels]
  ctx[features.GT_LABEL_KEY].int64_list.value[:] = [l for _, l in labels]
  frames = seq.feature_lists.feature_list[features.IMAGE_KEY]
  for k in range(num_stored):
    frames.feature.add().bytes_list.value[:] = [_coded_frame(k)]
  return seq.SerializeToString()


def _parse(record, training=False, source='ava.tfrecord', **kwargs):
  args = dict(num_frames=4, temporal_stride=2, output_size=(16, 16),
              num_classes=5, max_num_boxes=3, flip=False)
  args.update(kwargs)
  parser = li.Parser(**args)
  ds = tf.data.Dataset.from_tensors({'serialized': record, 'source': source})
  ds = ds.map(li.Decoder().decode).map(parser.parse_fn(training))
  return tf.nest.map_structure(lambda t: t.numpy(), ds.get_single_element())


GT = [[0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.9, 0.8]]


def test_clip_is_centered_on_the_keyframe_with_clamping():
  out = _parse(_keyframe_example(num_stored=8, keyframe=1, gt=GT,
                                 labels=[(0, 2)]))
  levels = out['image'].mean(axis=(1, 2, 3)) * 255
  # Positions 1 + (i - 2) * 2 = -3, -1, 1, 3 -> clamped 0, 0, 1, 3.
  np.testing.assert_allclose(levels, [_level(k) for k in (0, 0, 1, 3)],
                             atol=2.0)
  assert out['image'].shape == (4, 16, 16, 3)
  assert out['media_id'] == b'vid' and out['timestamp'] == 902


def test_ground_truth_multi_labels_and_padding():
  out = _parse(_keyframe_example(gt=GT, labels=[(0, 2), (1, 5), (0, 4)]))
  np.testing.assert_allclose(out['gt_boxes'][:2], GT)
  np.testing.assert_array_equal(out['gt_mask'], [1, 1, 0])
  np.testing.assert_array_equal(out['gt_labels'], [[0, 1, 0, 1, 0],
                                                   [0, 0, 0, 0, 1],
                                                   [0, 0, 0, 0, 0]])
  # Evaluation with ground-truth boxes classifies exactly those.
  np.testing.assert_allclose(out['boxes'], out['gt_boxes'])
  np.testing.assert_array_equal(out['labels'], out['gt_labels'])
  assert out['num_dropped_boxes'] == 0


def test_degenerate_and_surplus_boxes_are_dropped_and_counted():
  boxes = GT + [[0.5, 0.5, 0.5, 0.9], [0.0, 0.0, 1.0, 1.0],
                [0.1, 0.1, 0.2, 0.2]]
  out = _parse(_keyframe_example(gt=boxes, labels=[(4, 1)]))
  # One degenerate (zero height) and one beyond max_num_boxes=3.
  assert out['num_dropped_boxes'] == 2
  np.testing.assert_allclose(out['gt_boxes'], GT + [[0.0, 0.0, 1.0, 1.0]])
  assert out['gt_mask'].tolist() == [1, 1, 1]


def test_detected_boxes_above_the_threshold():
  out = _parse(_keyframe_example(gt=GT, labels=[(0, 1)],
                                 dets=[[0.1, 0.1, 0.4, 0.4],
                                       [0.2, 0.2, 0.7, 0.7],
                                       [0.0, 0.5, 0.5, 1.0]],
                                 scores=[0.95, 0.5, 0.8]),
               eval_boxes='detected', detection_score_threshold=0.8)
  np.testing.assert_allclose(out['boxes'][:2], [[0.1, 0.1, 0.4, 0.4],
                                                [0.0, 0.5, 0.5, 1.0]])
  assert out['boxes_mask'].tolist() == [1, 1, 0]
  assert not out['labels'].any()
  np.testing.assert_allclose(out['gt_boxes'][:2], GT)  # For the evaluator.


def test_training_flip_moves_boxes_with_pixels():
  record = _keyframe_example(gt=GT, labels=[(0, 1)])
  # Frames with a horizontal ramp, so that a flip is visible in the pixels.
  ramp = np.tile(np.linspace(0, 255, 40, dtype=np.float32)[None, :, None],
                 (32, 1, 3)).astype(np.uint8)
  seq = tf.train.SequenceExample.FromString(record)
  frames = seq.feature_lists.feature_list[features.IMAGE_KEY].feature
  for f in frames:
    f.bytes_list.value[:] = [tf.io.encode_jpeg(ramp, quality=95).numpy()]
  record = seq.SerializeToString()
  plain = _parse(record, training=True, flip=False)['image']
  seen = set()
  for _ in range(20):
    out = _parse(record, training=True, flip=True)
    box = tuple(round(float(v), 3) for v in out['gt_boxes'][0])
    seen.add(box)
    assert box in {(0.1, 0.2, 0.5, 0.6), (0.1, 0.4, 0.5, 0.8)}
    mirrored = box == (0.1, 0.4, 0.5, 0.8)
    expected = plain[:, :, ::-1] if mirrored else plain
    np.testing.assert_allclose(out['image'], expected, atol=1e-5)
    assert out['gt_boxes'][2].tolist() == [0, 0, 0, 0]  # Padding stays 0.
  assert len(seen) == 2


def test_bad_records_name_the_file():
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'ava\.tfrecord: action label ids 9 must lie in'):
    _parse(_keyframe_example(gt=GT, labels=[(0, 9)]))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'ava\.tfrecord: clip/keyframe/index 12'):
    _parse(_keyframe_example(keyframe=12, gt=GT, labels=[(0, 1)]))


def test_masked_sigmoid_loss_hand_computed():
  logits = tf.constant([[[0.0, 2.0], [5.0, -5.0]]])  # [B=1, N=2, C=2]
  labels = tf.constant([[[1.0, 0.0], [1.0, 1.0]]])
  mask = tf.constant([[1.0, 0.0]])
  # Only box 0: (ln 2 + ln(1 + e^2)) / 2.
  expected = (np.log(2.0) + np.log1p(np.exp(2.0))) / 2
  got = localization.masked_sigmoid_loss(labels, logits, mask)
  assert float(got) == pytest.approx(expected, rel=1e-6)
  assert float(localization.masked_sigmoid_loss(
      labels, logits, tf.zeros([1, 2]))) == 0.0


def _demo_model(num_classes=6):
  exp = exp_factory.get_exp_config('const_cl_action_localization_demo')
  exp.task.train_data.num_classes = num_classes
  exp.task.validation_data.num_classes = num_classes
  return localization.LocalizationTask(exp.task).build_model()


def test_localizer_shapes_and_padded_boxes_do_not_leak():
  model = _demo_model()
  images = tf.random.uniform([2, 8, 32, 32, 3], seed=1)
  boxes = tf.constant([[[0.1, 0.1, 0.6, 0.5], [0.0, 0.0, 0.0, 0.0]],
                       [[0.2, 0.3, 0.9, 0.9], [0.0, 0.0, 0.0, 0.0]]])
  logits = model({'image': images, 'boxes': boxes}, training=False)
  assert logits.shape == (2, 2, 6) and logits.dtype == tf.float32
  # Changing a padded box does not change the real box's scores.
  other = tf.tensor_scatter_nd_update(boxes, [[0, 1], [1, 1]],
                                      [[0.5, 0.5, 1.0, 1.0]] * 2)
  logits2 = model({'image': images, 'boxes': other}, training=False)
  np.testing.assert_allclose(logits2[:, 0], logits[:, 0], atol=1e-5)
  assert not np.allclose(logits2[:, 1], logits[:, 1])
  # Scores depend on where the box is.
  moved = tf.tensor_scatter_nd_update(boxes, [[0, 0]],
                                      [[0.5, 0.5, 0.9, 0.9]])
  logits3 = model({'image': images, 'boxes': moved}, training=False)
  assert not np.allclose(logits3[0, 0], logits[0, 0])


def test_keyframe_slice():
  assert action_localizer.keyframe_slice(32, 16) == 8
  assert action_localizer.keyframe_slice(8, 4) == 2


def test_paper_recipes():
  for name, lr, wd in (('const_cl_ava_v22', 3e-2, 1e-4),
                       ('const_cl_ava_kinetics', 1e-2, 1e-7)):
    exp = exp_factory.get_exp_config(name)
    t = exp.task
    assert t.train_data.feature_shape == (32, 400, 400, 3)
    assert t.train_data.global_batch_size == 256
    assert exp.trainer.train_steps == 50_000
    opt = exp.trainer.optimizer_config
    assert opt.optimizer.sgd.momentum == 0.9
    assert opt.learning_rate.cosine.initial_learning_rate == lr
    assert t.losses.l2_weight_decay == wd
    assert t.model.res5_branch == 'res5_r'
    assert t.validation_data.eval_boxes in loc_cfg.EVAL_BOXES
    assert t.evaluation.iou_threshold == 0.5
    assert t.evaluation.max_detections_per_keyframe == 50


def test_two_steps_then_evaluate_matches_the_official_csv_path(tmp_path):
  from official.modeling import hyperparams  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl.evaluation import ava_map  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl.tasks import experiment_runner  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl.dataloaders import demo_data  # pylint: disable=g-import-not-at-top
  paths = demo_data.ensure_demo_ava_records(
      str(tmp_path / 'demo'), num_train=4, num_val=2, num_shards=1)
  params = exp_factory.get_exp_config('const_cl_action_localization_demo')
  params = hyperparams.override_params_dict(params, ','.join([
      f"task.train_data.input_path={paths['ava_train_records']}",
      f"task.validation_data.input_path={paths['ava_val_records']}",
      f"task.evaluation.label_map_path={paths['ava_label_map']}",
      'task.train_data.demo_data_dir=', 'task.validation_data.demo_data_dir=',
      'task.train_data.global_batch_size=4',
      'task.validation_data.global_batch_size=4',
      'trainer.train_steps=2', 'trainer.validation_interval=2',
      'trainer.steps_per_loop=1', 'trainer.checkpoint_interval=2']),
                                            is_strict=True)
  params.validate()
  model_dir = str(tmp_path / 'run')
  logs = experiment_runner.run(params, 'train_and_eval', model_dir)
  assert logs['num_keyframes'] == 8  # 2 videos x 4 keyframes (0..3 s).
  assert 0.0 < logs['frame_mAP'] <= 1.0
  # The task's mAP equals the official-format files' mAP: the written
  # detections against the demo world's ground-truth CSV.
  csv = tmp_path / 'run' / 'ava_detections.csv'
  result = ava_map.evaluate_files(paths['ava_val_csv'], str(csv),
                                  paths['ava_label_map'])
  assert result['mAP'] == pytest.approx(float(logs['frame_mAP']), abs=1e-6)
  per_class = [k for k in logs if k.startswith('AP/')]
  assert per_class and all(0.0 <= logs[k] <= 1.0 for k in per_class)


class _FixedLogits(tf.keras.layers.Layer):
  """Returns the logits it was given, whatever the input."""

  def __init__(self, logits):
    super().__init__()
    self._logits = tf.constant(logits, tf.float32)

  def call(self, inputs, training=None):
    return self._logits


@pytest.mark.parametrize('protocol', ['2018', 'current'])
def test_detected_box_evaluation_through_the_task(tmp_path, monkeypatch,
                                                  protocol):
  """One keyframe, ground truth box A (class 1); detections B (0.95) and A
  (0.9). Class 1 ranks B (false positive) then A (true positive): precision
  0, 1/2 at recall 0, 1 -> AP 0.5. Class 2 has no ground truth: not
  averaged. The CSV holds the 2 boxes x 2 classes. The keyframe has ground
  truth, so both protocols count both detections."""
  from official_projects_const_cl.evaluation import ava_metrics  # pylint: disable=g-import-not-at-top
  exp = exp_factory.get_exp_config('const_cl_action_localization_demo')
  exp.task.train_data.num_classes = exp.task.validation_data.num_classes = 2
  exp.task.validation_data.eval_boxes = 'detected'
  exp.task.evaluation.label_map_path = ''
  exp.task.evaluation.protocol = protocol
  frame_map, used = ava_metrics.frame_map, []
  def recording_frame_map(*args, **kwargs):
    result = frame_map(*args, **kwargs)
    used.append(result['protocol'])
    return result
  monkeypatch.setattr(ava_metrics, 'frame_map', recording_frame_map)
  task = localization.LocalizationTask(exp.task, logging_dir=str(tmp_path))
  logit = lambda p: float(np.log(p / (1 - p)))
  box_a, box_b = [0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]
  inputs = {
      'boxes': tf.constant([[box_b, box_a, [0, 0, 0, 0]]]),
      'boxes_mask': tf.constant([[1.0, 1.0, 0.0]]),
      'gt_boxes': tf.constant([[box_a, [0, 0, 0, 0], [0, 0, 0, 0]]]),
      'gt_labels': tf.constant([[[1.0, 0.0], [0, 0], [0, 0]]]),
      'gt_mask': tf.constant([[1.0, 0.0, 0.0]]),
      'labels': tf.zeros([1, 3, 2]),
      'media_id': tf.constant([b'vid']), 'timestamp': tf.constant([902]),
      'num_corrupt_frames': tf.constant([0]),
      'num_dropped_boxes': tf.constant([0]),
  }
  model = _FixedLogits([[[logit(0.95), logit(0.3)], [logit(0.9), logit(0.2)],
                         [logit(0.99), logit(0.99)]]])
  logs = task.validation_step(inputs, model)
  assert task.loss not in logs  # No labels for detected boxes.
  state = task.aggregate_logs(None, {k: v for k, v in logs.items()})
  results = task.reduce_aggregated_logs(state)
  assert results['frame_mAP'] == pytest.approx(0.5)
  assert results['num_keyframes'] == 1
  assert used == [protocol]
  lines = (tmp_path / 'ava_detections.csv').read_text().strip().splitlines()
  assert len(lines) == 4 and all(l.startswith('vid,0902,') for l in lines)
