"""The VCLR model, task and experiments (modeling/vclr_model.py,
tasks/vclr_pretrain.py, configs/vclr.py).

Tiny shapes: clips [4, 32, 32, 3], K = 3, batch 2, on the demo backbone.
"""

import os

from absl import flags
import numpy as np
import pytest
import tensorflow as tf

import train
from official.core import exp_factory
from official.core import task_factory
from official.modeling import optimization
from official_projects_const_cl.configs import validation
from official_projects_const_cl.configs import vclr as vclr_cfg
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.losses import vclr
from official_projects_const_cl.modeling import vclr_model
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import gradient_step
from official_projects_const_cl.tasks import vclr_pretrain

FLAGS = flags.FLAGS
SHAPE = (4, 32, 32, 3)
K = 3
BATCH = 2


def _params(**losses):
  params = exp_factory.get_exp_config('vclr_pretrain_demo')
  for data in (params.task.train_data, params.task.validation_data):
    data.feature_shape = SHAPE
    data.vclr_num_segments = K
  params.task.losses.override(losses)
  return params


def _features(seed=0, batch=BATCH):
  """A batch as the parser gives it: random clips and orders."""
  rng = np.random.default_rng(seed)
  clips = lambda *lead: tf.constant(rng.uniform(size=lead + SHAPE),
                                    tf.float32)
  perms = np.stack([[rng.permutation(K), rng.permutation(K)]
                    for _ in range(batch)]).astype(np.int32)
  shuffled = (perms != np.arange(K)).any(-1).astype(np.int32)  # [B, 2]
  return {
      'anchor': clips(batch, K), 'positive': clips(batch, K),
      'anchor_second_view': clips(batch),
      'order_permutation': tf.constant(perms),
      'order_label': tf.constant(shuffled[:, 0] + 2 * shuffled[:, 1]),
      'num_corrupt_frames': tf.zeros([batch], tf.int32),
  }


@pytest.fixture(scope='module')
def task_and_model():
  task = task_factory.get_task(_params().task)
  return task, task.build_model()


def test_anchor_slot_by_hand():
  perm = tf.constant([[[2, 0, 1], [0, 1, 2]], [[0, 2, 1], [1, 0, 2]],
                      [[1, 2, 0], [2, 1, 0]]])
  np.testing.assert_array_equal(vclr_model.anchor_slot(perm), [1, 0, 2])


def _dense(layer, x):
  kernel, bias = (w.numpy() for w in layer.weights)
  return x @ kernel + bias


def _head(head, x):
  """FC -> ReLU -> FC with the head's own weights (NumPy)."""
  w1, b1, w2, b2 = (w.numpy() for w in head.weights)
  return np.maximum(x @ w1 + b1, 0.0) @ w2 + b2


def test_outputs_equal_a_numpy_reference(task_and_model):
  """Each clip alone through the backbone, then the heads in NumPy."""
  _, model = task_and_model
  features = _features(1)
  inputs = vclr_pretrain.model_inputs(features)
  out = model(inputs, training=False)

  def pooled(clips):  # [N, T, H, W, 3] one at a time (inference BN).
    return np.stack([
        np.mean(model.backbone(c[None], training=False)['res5'].numpy(),
                axis=(1, 2, 3))[0] for c in clips])

  anchor = pooled(tf.reshape(features['anchor'], (-1,) + SHAPE)).reshape(
      BATCH, K, -1)
  positive = pooled(tf.reshape(features['positive'], (-1,) + SHAPE)).reshape(
      BATCH, K, -1)
  second = pooled(features['anchor_second_view'])
  heads = model.heads
  np.testing.assert_allclose(out['video_features'], anchor.mean(1),
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(
      out['anchor_clips'][:, 0], _head(heads['video_head'], anchor.mean(1)),
      rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(
      out['positive_clips'][:, 0],
      _head(heads['video_head'], positive.mean(1)), rtol=1e-4, atol=1e-5)
  perm = features['order_permutation'].numpy()
  for b in range(BATCH):
    slot = list(perm[b, 0]).index(0)
    others = [(slot + 1 + i) % K for i in range(K - 1)]
    frames = np.stack([anchor[b, slot], second[b]] +
                      [anchor[b, j] for j in others])
    inter = _head(heads['inter_head'], frames)
    intra = _head(heads['intra_head'], frames)
    tol = dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out['inter_anchor'][b], inter[0], **tol)
    np.testing.assert_allclose(out['inter_positives'][b], inter[1:], **tol)
    np.testing.assert_allclose(out['intra_anchor'][b], intra[0], **tol)
    np.testing.assert_allclose(out['intra_positive'][b], intra[1], **tol)
    np.testing.assert_allclose(out['intra_negatives'][b], intra[2:], **tol)
    order = _head(heads['order_head'],
                  np.concatenate([anchor[b], positive[b]]))
    order /= np.linalg.norm(order, axis=-1, keepdims=True)
    np.testing.assert_allclose(
        out['order_logits'][b],
        _dense(heads['order_classifier'], order.reshape(1, -1))[0], **tol)
  assert out['inter_positives'].shape == (BATCH, K, 64)
  assert out['intra_negatives'].shape == (BATCH, K - 1, 64)
  assert out['order_logits'].shape == (BATCH, vclr.NUM_ORDER_CLASSES)


def test_build_heads_names_equal_a_forward_pass(monkeypatch):
  task = task_factory.get_task(_params().task)
  built = task.build_model()
  names = [v.name for v in built.variables]
  built.build_heads()  # Idempotent.
  assert [v.name for v in built.variables] == names
  monkeypatch.setattr(vclr_model.VclrModel, 'build_heads', lambda self: None)
  called = task.build_model()
  assert len(called.variables) < len(built.variables)
  called(vclr_pretrain.model_inputs(_features()), training=False)
  assert ([(v.name, v.shape) for v in built.variables] ==
          [(v.name, v.shape) for v in called.variables])
  assert any('order_classifier' in n for n in names)


@pytest.mark.parametrize('losses', [{}, {'use_intra': False},
                                    {'use_video': False, 'use_order': False,
                                     'intra_separate_negatives': True}])
def test_task_losses_equal_vclr_loss(task_and_model, losses):
  """The validation step's metrics are `vclr_loss` of the model outputs."""
  _, model = task_and_model
  task = task_factory.get_task(_params(**losses).task)
  cfg = task.task_config.losses
  features = _features(2)
  out = model(vclr_pretrain.model_inputs(features), training=False)
  expected = vclr.vclr_loss(
      *[out[k] for k in vclr_model.LOSS_INPUTS[:-1]],
      order_logits=out['order_logits'], order_labels=features['order_label'],
      use_video=cfg.use_video, use_inter=cfg.use_inter,
      use_intra=cfg.use_intra, use_order=cfg.use_order,
      intra_separate_negatives=cfg.intra_separate_negatives)
  metrics = task.build_metrics(training=False)
  logs = task.validation_step(features, model, metrics)
  results = {m.name: float(m.result()) for m in metrics}
  for key in vclr_pretrain.LOSS_KEYS:
    assert results[key] == pytest.approx(float(expected[key]), rel=1e-5,
                                         abs=1e-6), key
  assert float(logs[task.loss]) == pytest.approx(
      float(expected['total_loss']), rel=1e-5)
  on = [t for t in vclr_pretrain.TERMS if getattr(cfg, f'use_{t}')]
  assert results['total_loss'] == pytest.approx(
      sum(results[f'{t}_loss'] for t in on), rel=1e-5)
  for t in set(vclr_pretrain.TERMS) - set(on):
    assert results[f'{t}_loss'] == 0.0
  assert all(results[f'{t}_loss'] > 0 for t in on)


def test_two_train_steps_change_weights_and_create_no_variable():
  params = _params()
  task = task_factory.get_task(params.task)
  model = task.build_model()
  optimizer = task.create_optimizer(params.trainer.optimizer_config,
                                    params.runtime)
  gradient_step.create_optimizer_variables(model, optimizer)
  before = [v.numpy() for v in model.trainable_variables]
  num_optimizer_variables = len(optimizer.variables())
  metrics = task.build_metrics()

  @tf.function
  def step(features):
    return task.train_step(features, model, optimizer, metrics)

  created = []

  def creator(next_creator, **kwargs):
    variable = next_creator(**kwargs)
    created.append(variable.name)
    return variable

  with tf.variable_creator_scope(creator):
    first = step(_features(3))
  assert created == []
  assert len(optimizer.variables()) == num_optimizer_variables
  second = step(_features(4))
  assert step.experimental_get_tracing_count() == 1
  for logs in (first, second):
    assert np.isfinite(float(logs[task.loss]))
  for m in metrics:
    assert np.isfinite(float(m.result())), m.name
  after = model.trainable_variables
  assert all(np.isfinite(v.numpy()).all() for v in model.variables)
  unchanged = [v.name for v, b in zip(after, before)
               if np.array_equal(v.numpy(), b)]
  assert unchanged == []
  # The FLOPs signature of train.py is a valid model input.
  signature = experiment_runner.flops_inputs(params.task)['inputs']
  assert signature['anchor'].shape == (1, K) + SHAPE


@pytest.fixture(scope='module')
def tiny_demo(tmp_path_factory):
  out = tmp_path_factory.mktemp('vclr_demo')
  return demo_data.generate_demo_dataset(
      str(out), num_train=8, num_val=4, num_shards=2, write_ava=False)


def _run(mode, model_dir, data, extra=''):
  overrides = ','.join([
      f"task.train_data.input_path={data['train_pattern']}",
      f"task.validation_data.input_path={data['val_pattern']}",
      'task.train_data.demo_data_dir=',
      'task.validation_data.demo_data_dir=',
      'task.train_data.global_batch_size=4',
      'task.validation_data.global_batch_size=4',
      'task.train_data.num_examples=8',
      'task.validation_data.num_examples=4',
      'trainer.validation_interval=2',
      'trainer.steps_per_loop=1',
      'trainer.summary_interval=1',
      'trainer.checkpoint_interval=1',
      'trainer.train_steps=2',
  ] + ([extra] if extra else []))
  if not FLAGS.is_parsed() and 'experiment' not in FLAGS:
    train.define_flags()
  FLAGS.unparse_flags()
  FLAGS(['train.py', '--experiment=vclr_pretrain_demo', f'--mode={mode}',
         f'--model_dir={model_dir}', f'--params_override={overrides}'])
  return train.main(None)


def test_demo_trains_two_steps_with_train_py(tiny_demo, tmp_path):
  model_dir = str(tmp_path / 'run')
  _run('train', model_dir, tiny_demo)
  assert os.path.exists(os.path.join(model_dir, 'ckpt-2.index'))
  logs = {k: float(v) for k, v in _run('eval', model_dir, tiny_demo).items()}
  for term in vclr_pretrain.TERMS:
    assert np.isfinite(logs[f'{term}_loss']) and logs[f'{term}_loss'] > 0
    assert 0.0 <= logs[f'{term}_accuracy'] <= 1.0
  assert logs['total_loss'] == pytest.approx(
      sum(logs[f'{t}_loss'] for t in vclr_pretrain.TERMS), rel=1e-4)


# ---------------------------------------------------------------- configs --


def _lr(exp):
  return optimization.OptimizerFactory(
      exp.trainer.optimizer_config).build_learning_rate()


def test_k400_config_has_the_paper_numbers():
  exp = exp_factory.get_exp_config('vclr_pretrain_k400')
  data, losses = exp.task.train_data, exp.task.losses
  assert data.global_batch_size == 512  # A.1.
  assert data.vclr_num_segments == 3  # §4.2.
  assert data.clip_sampling == exp.task.validation_data.clip_sampling == (
      'vclr_segments')
  assert tuple(data.feature_shape) == (1, 224, 224, 3)
  steps_per_epoch = 240_000 // 512
  assert exp.trainer.train_steps == 400 * steps_per_epoch  # A.1.
  assert (losses.video_temperature, losses.inter_temperature,
          losses.intra_temperature) == (0.1, 0.1, 0.1)
  assert losses.l2_weight_decay == 1e-4
  assert losses.negatives == 'in_batch'
  assert all((losses.use_video, losses.use_inter, losses.use_intra,
              losses.use_order))
  assert not exp.task.model.backbone.resnet_3d_y.branch_res5
  assert exp.task.model.head.num_output_channels == 128
  opt = exp.trainer.optimizer_config
  assert opt.optimizer.type == 'sgd' and opt.optimizer.sgd.momentum == 0.9
  lr = _lr(exp)
  warmup = 5 * steps_per_epoch
  assert float(lr(0)) == pytest.approx(0.2 / 100)
  assert float(lr(warmup)) == pytest.approx(0.2)
  assert float(lr(exp.trainer.train_steps)) == pytest.approx(0.0, abs=1e-6)
  validation.validate_experiment(exp, 'train')


def test_ucf101_3d_config_has_the_paper_numbers():
  exp = exp_factory.get_exp_config('vclr_r3d_pretrain_ucf101')
  data = exp.task.train_data
  assert data.global_batch_size == 64
  assert data.feature_shape[0] == 32 and data.vclr_num_segments == 3
  steps_per_epoch = 9_537 // 64
  assert exp.trainer.train_steps == 300 * steps_per_epoch
  lr = _lr(exp)
  base = 64 / 256 * 0.1
  for step, value in ((0, base), (250 * steps_per_epoch - 1, base),
                      (250 * steps_per_epoch + 1, base / 10),
                      (280 * steps_per_epoch + 1, base / 100)):
    assert float(lr(step)) == pytest.approx(value), step
  validation.validate_experiment(exp, 'train')


def test_demo_config_copies_cvrl_demo():
  vclr_exp = exp_factory.get_exp_config('vclr_pretrain_demo')
  cvrl = exp_factory.get_exp_config('cvrl_pretrain_demo')
  assert vclr_exp.trainer.as_dict() == cvrl.trainer.as_dict()
  assert (vclr_exp.task.model.backbone.as_dict() ==
          cvrl.task.model.backbone.as_dict())
  for name in ('train_data', 'validation_data'):
    v, c = getattr(vclr_exp.task, name), getattr(cvrl.task, name)
    for field in ('input_path', 'feature_shape', 'temporal_stride',
                  'global_batch_size', 'num_examples', 'demo_data_dir'):
      assert getattr(v, field) == getattr(c, field), (name, field)
    assert v.clip_sampling == 'vclr_segments' and v.vclr_num_segments == 3
  assert vclr_exp.task.losses.use_intra  # The parser gives the second view.
  validation.validate_experiment(vclr_exp, 'train')


@pytest.mark.parametrize('override,key', [
    ({'train_data': {'clip_sampling': 'two_clips'}},
     'task.train_data.clip_sampling'),
    ({'losses': {'negatives': 'queue'}}, 'task.losses.negatives'),
    ({'validation_data': {'vclr_num_segments': 4}},
     'task.validation_data.vclr_num_segments'),
    ({'losses': {'use_video': False, 'use_inter': False, 'use_intra': False,
                 'use_order': False}}, 'task.losses.use_video'),
    ({'model': {'backbone': {'resnet_3d_y': {'branch_res5': True}}}},
     'task.model.backbone.resnet_3d_y.branch_res5'),
])
def test_bad_configs_are_rejected_naming_the_key(override, key):
  exp = exp_factory.get_exp_config('vclr_pretrain_demo')
  exp.override({'task': override})
  with pytest.raises(validation.ConfigError, match=key.replace('.', r'\.')):
    validation.validate_experiment(exp, 'train')


def test_vclr_config_is_the_task_config():
  assert isinstance(exp_factory.get_exp_config('vclr_pretrain_k400').task,
                    vclr_cfg.VclrPretrainTask)


def test_restore_backbone_of_the_pretraining_tasks(tmp_path):
  """`pretrain.restore_backbone`, shared by the ConST-CL/CVRL and VCLR tasks:
  the backbone's values come back, a folder without a checkpoint is an
  error, '' does nothing."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl.tasks import pretrain  # pylint: disable=g-import-not-at-top

  class _Holder(tf_keras.Model):

    def __init__(self):
      super().__init__()
      self.backbone = tf_keras.Sequential([tf_keras.layers.Dense(2)])
      self.backbone.build((None, 3))

  saved, fresh = _Holder(), _Holder()
  saved.backbone.layers[0].kernel.assign(np.arange(6.0).reshape(3, 2))
  tf.train.Checkpoint(backbone=saved.backbone).save(str(tmp_path / 'ckpt'))
  before = fresh.backbone.layers[0].kernel.numpy()
  pretrain.restore_backbone(fresh, '')
  np.testing.assert_array_equal(fresh.backbone.layers[0].kernel, before)
  pretrain.restore_backbone(fresh, str(tmp_path))
  np.testing.assert_array_equal(fresh.backbone.layers[0].kernel,
                                np.arange(6.0).reshape(3, 2))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(FileNotFoundError, match='holds no checkpoint'):
    pretrain.restore_backbone(fresh, str(tmp_path / 'empty'))
