"""Tracking (supplementary §3.3): embedder, pairs, task, toolkit run."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official_projects_const_cl.dataloaders import tracking_datasets
from official_projects_const_cl.modeling import siamfc_model
from official_projects_const_cl.modeling import tracking_embedder
from official_projects_const_cl.ops import temporal


def test_neighbor_indices_repeat_edge_frames():
  np.testing.assert_array_equal(temporal.neighbor_indices(0, 10),
                                [0, 0, 0, 1, 2])
  np.testing.assert_array_equal(temporal.neighbor_indices(5, 10),
                                [3, 4, 5, 6, 7])
  np.testing.assert_array_equal(temporal.neighbor_indices(9, 10),
                                [7, 8, 9, 9, 9])
  np.testing.assert_array_equal(temporal.neighbor_indices(0, 1),
                                [0, 0, 0, 0, 0])
  with pytest.raises(ValueError, match='outside'):
    temporal.neighbor_indices(10, 10)


def _embedder():
  model_cfg = exp_factory.get_exp_config('const_cl_pretrain_demo').task.model
  specs = tf_keras.layers.InputSpec(shape=[None, 5, None, None, 3])
  return tracking_embedder.build_tracking_embedder(specs, model_cfg)


def test_embedding_is_the_center_slice_at_stride_8():
  embedder = _embedder()
  assert embedder.backbone.get_config()['tracking_dilation']
  assert not embedder.backbone.get_config()['branch_res5']
  frames = tf.random.uniform([2, 5, 64, 48, 3], seed=3)
  out = embedder(frames, training=False)
  assert out.shape == (2, 8, 6, 512)  # Demo res5: 4 x 128 channels.
  res5 = embedder.backbone(frames, training=False)['res5']
  assert res5.shape[1] == 3  # 5 frames, stem temporal stride 2.
  np.testing.assert_allclose(out.numpy(), res5[:, 1].numpy(), atol=1e-6)
  # The neighbours matter: changing the first frame changes the embedding.
  other = tf.concat([tf.zeros_like(frames[:, :1]), frames[:, 1:]], axis=1)
  assert not np.allclose(embedder(other, training=False).numpy(), out.numpy())


@pytest.fixture(scope='module')
def demo_tracking(tmp_path_factory):
  from official_projects_const_cl.dataloaders import demo_data  # pylint: disable=g-import-not-at-top
  return demo_data.ensure_demo_tracking(
      str(tmp_path_factory.mktemp('demo')), num_train=3, num_val=2,
      num_shards=1, write_ava=False)


def test_demo_tracking_sequences_match_the_records(demo_tracking):
  from official_projects_const_cl.dataloaders import features  # pylint: disable=g-import-not-at-top
  names = tracking_datasets.list_got10k_sequences(demo_tracking['tracking_train'])
  assert names == ['demo-train-00000', 'demo-train-00001', 'demo-train-00002']
  assert len(tracking_datasets.list_otb_sequences(demo_tracking['tracking_val'])) == 2
  seq = tracking_datasets.read_got10k_sequence(demo_tracking['tracking_train'], names[0])
  record = next(iter(tf.data.TFRecordDataset(demo_tracking['train'][0])))
  example = tf.train.SequenceExample.FromString(record.numpy())
  lists = example.feature_lists.feature_list
  # Object 0 of every frame, normalized -> pixels (64 x 64), (x, y, w, h).
  ymin, xmin, ymax, xmax = (
      np.array([f.float_list.value[0] for f in lists[k].feature])
      for k in features.BBOX_KEYS)
  expected = np.stack([xmin, ymin, xmax - xmin, ymax - ymin], 1) * 64
  np.testing.assert_allclose(seq.boxes, expected, atol=1e-3)
  assert len(seq.img_files) == len(expected) == 32


def test_training_pairs_crop_the_target_at_the_center(demo_tracking):
  from official_projects_const_cl.dataloaders import tracking_input  # pylint: disable=g-import-not-at-top
  settings = tracking_input.PairSettings(
      exemplar_size=31, instance_size=63, train_instance_size=55,
      max_frame_gap=5, num_neighbors=2, stretch=0.0)
  pairs = tracking_input.TrainingPairs(demo_tracking['tracking_train'],
                                       settings, seed=0)
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for _ in range(3):
    pair = pairs.sample()
    assert pair['exemplar'].shape == (5, 31, 31, 3)
    assert pair['search'].shape == (5, 55, 55, 3)
    # The same crops, recomputed from the files: the stacks are the frame
    # and its clamped neighbours, all cut with the center frame's box.
    name, t_z, t_x = pairs.last_pair
    assert abs(t_x - t_z) <= 5
    seq = tracking_datasets.read_got10k_sequence(demo_tracking['tracking_train'], name)
    frames = lambda t: [  # pylint: disable=g-long-lambda
        np.asarray(Image.open(seq.img_files[i]).convert('RGB'),
                   np.float32) / 255.0
        for i in temporal.neighbor_indices(t, len(seq.img_files))]
    want = tracking_input.crop_pair(frames(t_z), seq.boxes[t_z], frames(t_x),
                                    seq.boxes[t_x], settings)
    np.testing.assert_allclose(pair['exemplar'], want['exemplar'], atol=1e-6)
    np.testing.assert_allclose(pair['search'], want['search'], atol=1e-6)
  # Annotations were read once per sequence, not once per pair.
  assert len(pairs._sequences) <= 3  # pylint: disable=protected-access


def test_sample_pair_respects_gap_and_visibility():
  from official_projects_const_cl.dataloaders import tracking_input  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  valid = np.array([False, True, True, False, True, False, False, False,
                    False, True])
  for _ in range(200):
    t_z, t_x = tracking_input.sample_pair(valid, 3, rng)
    assert valid[t_z] and valid[t_x] and abs(t_x - t_z) <= 3
  assert tracking_input.sample_pair(np.zeros(4, bool), 3, rng) is None


def test_crop_pair_geometry_on_a_known_box():
  from official_projects_const_cl.dataloaders import tracking_input  # pylint: disable=g-import-not-at-top
  frame = np.zeros((100, 100, 3), np.float32)
  frame[40:60, 30:50] = 1.0  # Target (x, y, w, h) = (30, 40, 20, 20).
  box = np.array([30.0, 40.0, 20.0, 20.0])
  settings = tracking_input.PairSettings(exemplar_size=40, instance_size=80,
                                         train_instance_size=80)
  out = tracking_input.crop_pair([frame], box, [frame], box, settings)
  # p = 0.5 * 40 = 20, s_z = sqrt(40 * 40) = 40 px -> 40 crop px: 1:1, the
  # 20 px target spans crop pixels 10..29.
  z = out['exemplar'][0, ..., 0]
  assert z[10:30, 10:30].min() > 0.99 and z[:9].max() < 0.01
  # Search window s_x = 40 * 80 / 40 = 80 px -> 80 crop px: target at 30..49.
  x = out['search'][0, ..., 0]
  assert x[30:50, 30:50].min() > 0.99 and x[:29].max() < 0.5


def _tiny_tracking_params(demo_tracking, steps=2):
  from official.modeling import hyperparams  # pylint: disable=g-import-not-at-top
  params = exp_factory.get_exp_config('const_cl_tracking_demo')
  params = hyperparams.override_params_dict(params, ','.join([
      f"task.train_data.input_path={demo_tracking['tracking_train']}",
      f"task.validation_data.input_path={demo_tracking['tracking_val']}",
      'task.train_data.demo_data_dir=', 'task.validation_data.demo_data_dir=',
      'task.train_data.global_batch_size=2', 'task.train_data.seed=0',
      'task.validation_data.max_sequences=2',
      'task.model.siamfc.exemplar_size=31',
      'task.model.siamfc.instance_size=63',
      'task.model.siamfc.train_instance_size=55',
      'task.model.siamfc.response_size=5',
      'task.model.siamfc.response_up=4',
      f'trainer.train_steps={steps}', f'trainer.validation_interval={steps}',
      'trainer.steps_per_loop=1', 'trainer.summary_interval=1',
      f'trainer.checkpoint_interval={steps}']), is_strict=True)
  params.validate()
  return params


def test_two_training_steps_then_tracking_evaluation(demo_tracking, tmp_path):
  from official_projects_const_cl.tasks import experiment_runner  # pylint: disable=g-import-not-at-top
  model_dir = tmp_path / 'run'
  logs = experiment_runner.run(_tiny_tracking_params(demo_tracking), 'train_and_eval',
                               str(model_dir))
  assert logs['num_sequences'] == 2
  for key in ('precision_score', 'success_score', 'success_rate'):
    assert 0.0 <= logs[key] <= 1.0
  assert (model_dir / 'ckpt-2.index').exists()
  out = model_dir / 'tracking_eval'
  assert (out / 'success_plots.png').exists()
  assert (out / 'precision_plots.png').exists()
  results = sorted(p.name for p in (out / 'ConST-CL').iterdir())
  assert results == ['demo-val-00000.txt', 'demo-val-00001.txt']
  # The trained tracker, restored for the toolkit, reproduces those boxes.
  from official_projects_const_cl.tasks import tracking  # pylint: disable=g-import-not-at-top
  tracker = tracking.tracker_from_checkpoint(
      _tiny_tracking_params(demo_tracking), str(model_dir))
  seq = tracking_datasets.read_otb_sequence(demo_tracking['tracking_val'], 'demo-val-00000')
  boxes, _ = tracker.track(seq.img_files, seq.boxes[0])
  saved = np.loadtxt(out / 'ConST-CL' / 'demo-val-00000.txt', delimiter=',')
  np.testing.assert_allclose(boxes, saved, atol=2e-3)


def test_the_toolkit_runs_our_tracker_and_agrees(demo_tracking, tmp_path):
  """got10k's ExperimentOTB drives the tracker; its report equals ours."""
  experiment_otb = pytest.importorskip('got10k.experiments.otb')
  from got10k.datasets.otb import OTB  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl.evaluation import otb  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl.tasks import tracking  # pylint: disable=g-import-not-at-top
  params = _tiny_tracking_params(demo_tracking)
  task = tracking.TrackingTask(params.task)
  model = task.build_model()
  tracker = siamfc_model.make_tracker(model, params.task.model.siamfc)
  exp = experiment_otb.ExperimentOTB.__new__(experiment_otb.ExperimentOTB)
  # __init__ would download OTB. The toolkit's own OTB reader lists only
  # OTB2015 names, so the demo's two OTB-layout sequences stand in for two
  # of them (sequences without special frame ranges).
  root = tmp_path / 'OTB2015'
  root.mkdir()
  for otb_name, demo_name in (('Basketball', 'demo-val-00000'),
                              ('Biker', 'demo-val-00001')):
    (root / otb_name).symlink_to(
        os.path.join(demo_tracking['tracking_val'], demo_name))
  exp.dataset = OTB(str(root), version=2015, download=False)
  assert exp.dataset.seq_names == ['Basketball', 'Biker']
  exp.result_dir = str(tmp_path / 'results')
  exp.report_dir = str(tmp_path / 'reports')
  exp.nbins_iou, exp.nbins_ce = 21, 51
  exp.plot_curves = lambda names: None
  exp.run(tracker)
  theirs = exp.report([tracker.name])[tracker.name]['overall']
  gt = tracking_datasets.load_ground_truth(str(root))
  ours = otb.evaluate_results_dir(str(tmp_path / 'results' / tracker.name),
                                  gt)
  for key in ('success_score', 'precision_score', 'success_rate'):
    assert ours[key] == pytest.approx(theirs[key], abs=1e-6)
  boxes = np.loadtxt(tmp_path / 'results' / tracker.name /
                     'Basketball.txt', delimiter=',')
  assert boxes.shape == (32, 4) and np.isfinite(boxes).all()


def test_got10k_recipe():
  exp = exp_factory.get_exp_config('const_cl_tracking_got10k')
  t = exp.task
  assert t.train_data.global_batch_size == 256
  assert t.losses.l2_weight_decay == 1e-4
  opt = exp.trainer.optimizer_config
  assert opt.optimizer.sgd.momentum == 0.9
  assert opt.learning_rate.cosine.initial_learning_rate == 0.1
  assert exp.trainer.train_steps == 20 * (9335 // 256)
  assert t.model.res5_branch == 'res5_r'
  sf = t.model.siamfc
  assert sf.num_neighbors == 2
  assert (sf.exemplar_size, sf.instance_size, sf.response_size) == (127, 255,
                                                                    17)
  assert (sf.scale_num, sf.scale_step, sf.scale_penalty, sf.scale_lr,
          sf.window_influence, sf.response_up) == (3, 1.0375, 0.9745, 0.59,
                                                   0.176, 16)
  assert t.validation_data.layout == 'otb'
