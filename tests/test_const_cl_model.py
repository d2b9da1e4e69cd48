"""Tests of the two-view ConST-CL / CVRL pretraining model."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import train_utils
from official.vision.modeling import factory_3d
from official_projects_const_cl.modeling import const_cl_model
from official_projects_const_cl.ops import roi_align
from official_projects_const_cl.modeling.backbones import resnet_3d_y
from official_projects_const_cl.modeling.heads import instance_reconstructor
from official_projects_const_cl.modeling.heads import mlp
from official_projects_const_cl.tasks import experiment_runner

ConstClModel = const_cl_model.ConstClModel
TINY_SPECS = ((8, 1, (1,)), (16, 1, (1,)), (32, 1, (3,)), (64, 1, (3,)))
B, T, S, N = 2, 8, 64, 3  # Pairs, frames, pixels, boxes; T' = 4, res5 2x2.


def _backbone(branch=True, frames=T, size=S):
  return resnet_3d_y.ResNet3DY(
      block_specs=TINY_SPECS, stem_filters=8, branch_res5=branch,
      input_specs=tf_keras.layers.InputSpec(shape=[None, frames, size, size,
                                                   3]))


def _reconstructor(output_channels=256):
  return instance_reconstructor.InstanceReconstructor(
      num_layers=1, num_heads=2, hidden_channels=16, ffn_channels=32,
      output_channels=output_channels)


def _model(context_length=3, loss_endpoint='res5_g+res5_r', region='auto'):
  branch = loss_endpoint == 'res5_g+res5_r'
  if region == 'auto':
    channels = 128 if loss_endpoint == 'res4_pooled' else 256
    region = (mlp.MLPHead(1, 32, 16) if context_length == 0 else
              _reconstructor(channels))
  return ConstClModel(_backbone(branch), mlp.MLPHead(1, 32, 16), region,
                      context_length=context_length,
                      loss_endpoint=loss_endpoint, num_boxes=N)


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  corners = rng.uniform(0.0, 0.5, size=(2 * B, T, N, 2))
  sizes = rng.uniform(0.1, 0.5, size=(2 * B, T, N, 2))
  mask = (rng.uniform(size=(2 * B, T, N)) > 0.3).astype(np.float32)
  return {
      'image': tf.constant(rng.uniform(size=(2 * B, T, S, S, 3)), tf.float32),
      'boxes': tf.constant(np.concatenate([corners, corners + sizes], -1),
                           tf.float32),
      'boxes_mask': tf.constant(mask),
      'region_time_index': tf.constant([2, 1, 3, 0], tf.int32),
  }


def test_forward_outputs_and_values():
  model = _model()
  inputs = _inputs()
  out = model(inputs, training=False, return_attention_scores=True)
  shapes = {k: v.shape.as_list() for k, v in out.items()}
  assert shapes == {
      'global_features': [4, 256], 'global_embeddings': [4, 16],
      'region_features': [4, N, 256], 'region_mask': [4, N],
      'region_predictions': [4, N, 256], 'region_targets': [4, N, 256],
      'attention_scores': [4, 1, 2, N, 3 * 2 * 2],  # M = L x H' x W'.
  }
  assert all(v.dtype == tf.float32 for v in out.values())

  endpoints = model.backbone(inputs['image'], training=False)
  np.testing.assert_allclose(
      out['global_features'],
      tf.reduce_mean(endpoints['res5_g'], axis=[1, 2, 3]), atol=1e-5)
  # Slice s of T' = 4 takes the boxes of input frame floor((s + .5) * 8 / 4).
  time_index = inputs['region_time_index'].numpy()
  frames = (2 * time_index + 1) * T // (2 * 4)
  np.testing.assert_array_equal(frames, [5, 3, 7, 1])
  rows = np.arange(4)
  boxes = inputs['boxes'].numpy()[rows, frames]
  np.testing.assert_array_equal(out['region_mask'],
                                inputs['boxes_mask'].numpy()[rows, frames])
  expected_h = roi_align.roi_pool_mean(
      endpoints['res5_r'].numpy()[rows, time_index], boxes)
  np.testing.assert_allclose(out['region_features'], expected_h, atol=1e-5)
  np.testing.assert_allclose(out['region_targets'], out['region_features'])
  np.testing.assert_allclose(tf.reduce_sum(out['attention_scores'], -1), 1.0,
                             atol=1e-5)
  assert 'attention_scores' not in model(inputs, training=False)


def test_predictions_use_the_other_views_context():
  model = _model()
  inputs = _inputs()
  base = model(inputs, training=False)
  # Change only the clip of row 2 (view b of pair 0).
  image = inputs['image'].numpy()
  image[2] = np.random.default_rng(5).uniform(size=image[2].shape)
  changed = model(dict(inputs, image=tf.constant(image)), training=False)

  def diff(key):
    return np.abs(changed[key] - base[key]).reshape(4, -1).max(1)

  # Region features change only in row 2; predictions of row 0 (view a of
  # pair 0, whose context is row 2) and row 2 (its own h) change.
  np.testing.assert_array_equal(diff('region_features') > 1e-6,
                                [False, False, True, False])
  np.testing.assert_array_equal(diff('region_predictions') > 1e-6,
                                [True, False, True, False])


def test_context_zero_mlp_variant():
  model = _model(context_length=0)
  out = model(_inputs(), training=False)
  assert out['region_predictions'].shape == (4, N, 16)
  np.testing.assert_allclose(out['region_predictions'], out['region_targets'])
  np.testing.assert_allclose(
      out['region_predictions'],
      model.region_head(out['region_features'], training=False), atol=1e-5)


def test_cvrl_needs_no_boxes():
  model = ConstClModel(_backbone(branch=False), mlp.MLPHead(1, 32, 16))
  out = model({'image': _inputs()['image']}, training=True)
  assert sorted(out) == ['global_embeddings', 'global_features']
  assert model.checkpoint_items == {'backbone': model.backbone}


@pytest.mark.parametrize('loss_endpoint,channels,tokens', [
    ('res5', 256, 3 * 2 * 2), ('res4_pooled', 128, 3 * 2 * 2)])
def test_single_branch_loss_endpoints(loss_endpoint, channels, tokens):
  model = _model(loss_endpoint=loss_endpoint)
  inputs = _inputs()
  out = model(inputs, training=False, return_attention_scores=True)
  assert out['global_features'].shape == (4, 256)  # Global on res5.
  assert out['region_features'].shape == (4, N, channels)
  assert out['attention_scores'].shape[-1] == tokens
  # Regions are ROI-pooled from res5, or from res4 2x2-average-pooled (C4p).
  endpoints = model.backbone(inputs['image'], training=False)
  local = endpoints['res5' if loss_endpoint == 'res5' else 'res4']
  if loss_endpoint == 'res4_pooled':
    local = tf.nn.avg_pool3d(local, [1, 2, 2], [1, 2, 2], 'VALID')
  np.testing.assert_allclose(
      out['global_features'],
      tf.reduce_mean(endpoints['res5'], axis=[1, 2, 3]), atol=1e-5)
  s = inputs['region_time_index']
  frames = (2 * s + 1) * T // (2 * local.shape[1])
  expected = roi_align.roi_pool_mean(
      tf.gather(local, s, axis=1, batch_dims=1),
      tf.gather(inputs['boxes'], frames, axis=1, batch_dims=1))
  np.testing.assert_allclose(out['region_features'], expected, atol=1e-5)


def test_graph_mode_and_gradients():
  model = _model()
  inputs = _inputs()

  @tf.function
  def step(inputs):
    with tf.GradientTape() as tape:
      out = model(inputs, training=True)
      loss = (tf.reduce_sum(out['global_embeddings'] ** 2) +
              tf.reduce_sum(out['region_predictions'] ** 2) +
              tf.reduce_sum(out['region_targets'] ** 2))
    return tape.gradient(loss, model.trainable_variables)

  grads = step(inputs)
  assert all(g is not None for g in grads)


def test_bad_inputs_and_configs():
  model = _model()
  inputs = _inputs()
  with pytest.raises(KeyError, match='region_time_index'):
    model({k: v for k, v in inputs.items() if k != 'region_time_index'})
  with pytest.raises(ValueError, match='odd batch 3'):
    model({k: v[:3] for k, v in inputs.items()})
  with pytest.raises(ValueError, match='must be odd'):
    _model(context_length=2)
  with pytest.raises(ValueError, match="T'=4.*exceeds"):
    _model(context_length=5)
  with pytest.raises(ValueError, match='output_channels=100'):
    ConstClModel(_backbone(), mlp.MLPHead(1, 8, 4), _reconstructor(100),
                 context_length=1)
  with pytest.raises(ValueError, match='branch_res5=False'):
    ConstClModel(_backbone(), mlp.MLPHead(1, 8, 4), _reconstructor(),
                 context_length=1, loss_endpoint='res5')
  with pytest.raises(ValueError, match='needs an MLPHead'):
    ConstClModel(_backbone(), mlp.MLPHead(1, 8, 4), _reconstructor(),
                 context_length=0)


def test_config_round_trip():
  model = _model()
  inputs = _inputs()
  out = model(inputs, training=False)
  config = json.loads(json.dumps(model.get_config()))
  restored = ConstClModel.from_config(config)
  restored(inputs, training=False)
  assert restored.count_params() == model.count_params()
  assert json.loads(json.dumps(restored.get_config())) == config
  restored.set_weights(model.get_weights())
  again = restored(inputs, training=False)
  for key in out:
    np.testing.assert_allclose(again[key], out[key], atol=1e-5)


@pytest.mark.parametrize('variant,expected,paper', [
    ('const_cl', 71_956_032, 71.7e6),
    ('cvrl', 44_601_152, 44.6e6),
    ('mlp', 77_707_200, 77.7e6),
])
def test_paper_parameter_counts(variant, expected, paper):
  spec = tf_keras.layers.InputSpec(shape=[None, 16, 224, 224, 3])
  backbone = resnet_3d_y.ResNet3DY(input_specs=spec,
                                   branch_res5=variant != 'cvrl')
  region = {'const_cl': instance_reconstructor.InstanceReconstructor(),
            'cvrl': None, 'mlp': mlp.MLPHead()}[variant]
  model = ConstClModel(backbone, mlp.MLPHead(), region,
                       context_length=0 if variant == 'mlp' else 5)
  model.build_heads()  # No forward pass at 224 px.
  assert model.count_params() == expected
  assert abs(expected - paper) / paper < 0.005


# ------------------------------------------------- builder (project config).


def _project_config(const_cl_cfg, method='const_cl'):
  exp = const_cl_cfg.const_cl_pretrain_demo() if method == 'const_cl' else (
      const_cl_cfg.cvrl_pretrain_demo())
  cfg = exp.task.model
  cfg.norm_activation.use_sync_bn = False
  return cfg


def test_builder_from_project_config():
  const_cl_cfg = pytest.importorskip(
      'official_projects_const_cl.configs.const_cl')
  cfg = _project_config(const_cl_cfg)
  spec = tf_keras.layers.InputSpec(shape=[None, 8, 32, 32, 3])
  model = factory_3d.build_model('const_cl', spec, cfg, num_classes=4,
                                 l2_regularizer=tf_keras.regularizers.L2(1e-6))
  assert isinstance(model, ConstClModel)
  channels = model.backbone.output_specs['res5_r'][-1]
  assert model.region_head.output_channels == channels  # -1 -> inferred.
  direct = const_cl_model.build_const_cl_model(spec, cfg)
  model.build_heads()
  direct.build_heads()
  assert model.count_params() == direct.count_params()
  assert model.global_head.dtype_policy.name == 'float32'

  cfg.loss_endpoint = 'res4_pooled'
  with pytest.raises(ValueError, match='branch_res5'):
    const_cl_model.build_const_cl_model(spec, cfg)
  cfg.backbone.resnet_3d_y.branch_res5 = False
  model = const_cl_model.build_const_cl_model(spec, cfg)
  assert model.region_head.output_channels == (
      model.backbone.output_specs['res4'][-1])

  cfg.context_length = 4
  with pytest.raises(ValueError, match='must be odd'):
    const_cl_model.build_const_cl_model(spec, cfg)

  cvrl = _project_config(const_cl_cfg, 'cvrl')
  model = const_cl_model.build_const_cl_model(spec, cvrl)
  assert model.region_head is None
  cvrl.backbone.resnet_3d_y.branch_res5 = True
  with pytest.raises(ValueError, match='use_region_loss=False'):
    const_cl_model.build_const_cl_model(spec, cvrl)


def test_mixed_precision_heads_and_outputs_stay_float32(bfloat16_kernels):
  if not bfloat16_kernels:
    return  # Passed with Eigen's kernels in a subprocess (conftest).
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    model = ConstClModel(
        _backbone(), mlp.MLPHead(1, 32, 16, dtype='float32'),
        instance_reconstructor.InstanceReconstructor(
            1, 2, 16, 32, 256, dtype='float32'),
        context_length=3, num_boxes=N)
    out = model(_inputs(), training=True, return_attention_scores=True)
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  assert model.backbone.compute_dtype == 'bfloat16'
  assert model.region_head._attention[0]._softmax.compute_dtype == 'float32'
  assert all(v.dtype == tf.float32 for v in out.values())
  assert all(np.isfinite(v.numpy()).all() for v in out.values())


def test_batch_of_one_for_flops_counters():
  # FLOPs counters trace with a batch of 1: the clip is its own "other view".
  model = _model()
  out = model({k: v[:1] for k, v in _inputs().items()}, training=False)
  assert out['region_predictions'].shape == (1, N, 256)
  # Model Garden's counter, given the batch-1 signature the runner passes.
  signature = experiment_runner.flops_input_signature((T, S, S, 3), N)
  flops = train_utils.try_count_flops(model, inputs_kwargs=signature)
  assert flops is not None and flops > 0
