"""Tests of the "Y" ResNet3D backbone (supplementary Table 1)."""

import json
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.vision.configs import common
from official.vision.modeling.backbones import factory
from official.vision.modeling.layers import nn_blocks_3d
from official_projects_const_cl.modeling import variable_paths
from official_projects_const_cl.modeling.backbones import resnet_3d_y

TINY_SPECS = ((8, 1, (1,)), (16, 1, (1,)), (32, 1, (3,)), (64, 1, (3,)))
R3D50_PARAMS = 31_725_248  # Plain R3D-50 of Table 1 (count_params).
RES5_PARAMS = 20_230_144   # One res5 block group.


def _tiny(branch_res5=True, frames=8, size=32, **kwargs):
  return resnet_3d_y.ResNet3DY(
      block_specs=TINY_SPECS, stem_filters=8, branch_res5=branch_res5,
      input_specs=tf_keras.layers.InputSpec(
          shape=[None, frames, size, size, 3]),
      **kwargs)


def test_endpoints_and_shapes():
  model = _tiny()
  out = model(tf.random.uniform([2, 8, 32, 32, 3]), training=False)
  expected = {
      'res2': [2, 4, 8, 8, 32],
      'res3': [2, 4, 4, 4, 64],
      'res4': [2, 4, 2, 2, 128],
      'res5_g': [2, 4, 1, 1, 256],
      'res5_r': [2, 4, 1, 1, 256],
  }
  assert {k: v.shape.as_list() for k, v in out.items()} == expected
  assert {k: v.as_list() for k, v in model.output_specs.items()} == {
      k: [None] + v[1:] for k, v in expected.items()}
  assert model.temporal_downsampling == 2


def test_plain_variant_and_pool_stride():
  model = _tiny(branch_res5=False, stem_pool_temporal_stride=2)
  assert sorted(model.output_specs) == ['res2', 'res3', 'res4', 'res5']
  # Stem conv stride 2 and pool stride 2: 8 frames -> 2 slices.
  assert model.output_specs['res5'].as_list() == [None, 2, 1, 1, 256]
  assert model.temporal_downsampling == 4


def test_branches_have_separate_weights_and_identical_structure():
  model = _tiny()
  g = [l for l in model.layers if l.name.startswith('res5_g_')]
  r = [l for l in model.layers if l.name.startswith('res5_r_')]
  assert len(g) == len(r) == 1
  g_ids = {id(v) for v in g[0].weights}
  assert g_ids.isdisjoint({id(v) for v in r[0].weights})
  assert [v.shape for v in g[0].weights] == [v.shape for v in r[0].weights]
  x = tf.random.uniform([1, 8, 32, 32, 3])
  out = model(x, training=False)
  assert not np.allclose(out['res5_g'], out['res5_r'])  # Different init.
  r[0].set_weights(g[0].get_weights())
  out = model(x, training=False)
  np.testing.assert_allclose(out['res5_g'], out['res5_r'], rtol=1e-5, atol=1e-6)
  # Branch minus plain = exactly one res5 group.
  assert (model.count_params() - _tiny(branch_res5=False).count_params()
          == g[0].count_params())


def test_paper_parameter_counts():
  spec = tf_keras.layers.InputSpec(shape=[None, 16, 224, 224, 3])
  plain = resnet_3d_y.ResNet3DY(input_specs=spec, branch_res5=False)
  assert plain.count_params() == R3D50_PARAMS
  y = resnet_3d_y.ResNet3DY(input_specs=spec)
  assert y.count_params() == R3D50_PARAMS + RES5_PARAMS
  # Table 1 output sizes: 8 x 7^2 x 2048 from 16 x 224^2.
  assert y.output_specs['res5_g'].as_list() == [None, 8, 7, 7, 2048]
  assert y.output_specs['res4'].as_list() == [None, 8, 14, 14, 1024]


def test_config_round_trip():
  model = _tiny(kernel_regularizer=tf_keras.regularizers.L2(1e-6))
  config = model.get_config()
  restored = resnet_3d_y.ResNet3DY.from_config(json.loads(json.dumps(config)))
  assert restored.get_config() == config
  assert restored.count_params() == model.count_params()
  assert restored.output_specs == model.output_specs
  assert len(restored.losses) == len(model.losses) > 0


def test_bad_block_specs():
  with pytest.raises(ValueError, match=r'block_specs\[2\].*repeats=2'):
    resnet_3d_y.ResNet3DY(block_specs=((8, 1, (1,)), (8, 1, (1,)),
                                       (8, 2, (3,)), (8, 1, (3,))))
  with pytest.raises(ValueError, match='4 block groups'):
    resnet_3d_y.ResNet3DY(block_specs=TINY_SPECS[:3])


@pytest.mark.parametrize('branch', ['res5_g', 'res5_r'])
def test_transfer_branch_into_plain_backbone(branch):
  source = _tiny()
  target = _tiny(branch_res5=False)
  copied = resnet_3d_y.transfer_backbone_weights(source, target, branch)
  assert copied == len([l for l in target.layers if l.weights])
  x = tf.random.uniform([1, 8, 32, 32, 3])
  src, dst = source(x, training=False), target(x, training=False)
  np.testing.assert_allclose(dst['res5'], src[branch], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(dst['res4'], src['res4'], rtol=1e-5, atol=1e-6)


def test_transfer_fails_loudly_on_mismatch():
  source = _tiny(branch_res5=False)
  target = _tiny()
  with pytest.raises(ValueError, match='res5_g_block_0'):
    resnet_3d_y.transfer_backbone_weights(source, target)


def test_registered_builder_reads_project_config():
  const_cl_cfg = pytest.importorskip(
      'official_projects_const_cl.configs.const_cl')
  backbone_cfg = const_cl_cfg.Backbone3D()
  backbone_cfg.resnet_3d_y.block_specs = const_cl_cfg.DEMO_BLOCK_SPECS
  backbone_cfg.resnet_3d_y.stem_filters = 16
  backbone_cfg.resnet_3d_y.branch_res5 = False
  model = factory.build_backbone(
      input_specs=tf_keras.layers.InputSpec(shape=[None, 8, 32, 32, 3]),
      backbone_config=backbone_cfg,
      norm_activation_config=common.NormActivation(
          use_sync_bn=False, norm_momentum=0.9, norm_epsilon=1e-3),
      l2_regularizer=tf_keras.regularizers.L2(1e-6))
  assert isinstance(model, resnet_3d_y.ResNet3DY)
  config = model.get_config()
  assert config['block_specs'][3] == [128, 1, [3]]
  assert config['stem_filters'] == 16
  assert not config['branch_res5']
  assert config['norm_momentum'] == 0.9
  assert config['kernel_regularizer'] is not None
  assert model.output_specs['res5'].as_list() == [None, 4, 1, 1, 512]


def test_tracking_dilation_keeps_weights_and_output_stride_8():
  plain = _tiny(branch_res5=False, frames=5, size=64)
  tracking = _tiny(branch_res5=False, frames=5, size=64,
                   tracking_dilation=True)
  out = tracking(tf.random.uniform([1, 5, 64, 64, 3]), training=False)
  # Stem /4, res3 /2; res4 and res5 keep the resolution: stride 8.
  assert out['res4'].shape[2:4] == (8, 8) and out['res5'].shape[2:4] == (8, 8)
  assert plain.output_specs['res5'][2:4] == (2, 2)
  for name, dilation in (('res4_block_0', 2), ('res5_block_0', 4)):
    conv = tracking.get_layer(name)._spatial_conv  # pylint: disable=protected-access
    assert tuple(conv.dilation_rate) == (1, dilation, dilation)
    assert tuple(conv.strides) == (1, 1, 1)
  assert tuple(tracking.get_layer('res3_block_0')._spatial_conv.strides) == (  # pylint: disable=protected-access
      1, 2, 2)
  # Same variables (structural paths and shapes): pretrained weights load.
  from official_projects_const_cl.modeling import variable_paths  # pylint: disable=g-import-not-at-top
  shapes = lambda m: {p: tuple(v.shape) for p, v in
                      variable_paths.variable_paths(m).items()}
  assert shapes(tracking) == shapes(plain)
  resnet_3d_y.transfer_backbone_weights(plain, tracking)
  np.testing.assert_array_equal(
      tracking.get_layer('res5_block_0')._spatial_conv.kernel.numpy(),  # pylint: disable=protected-access
      plain.get_layer('res5_block_0')._spatial_conv.kernel.numpy())  # pylint: disable=protected-access
  # The dilated 3x3 taps really are 4 pixels apart: a single bright pixel
  # through res5_block_0's spatial conv alone lights a 9-tap grid of step 4.
  conv = tracking.get_layer('res5_block_0')._spatial_conv  # pylint: disable=protected-access
  x = np.zeros([1, 1, 17, 17, conv.kernel.shape[3]], np.float32)
  x[0, 0, 8, 8, :] = 1.0
  y = conv(tf.constant(x)).numpy()[0, 0].any(axis=-1)
  assert sorted(zip(*np.nonzero(y))) == [(r, c) for r in (4, 8, 12)
                                         for c in (4, 8, 12)]
  config = tracking.get_config()
  assert config['tracking_dilation']
  assert resnet_3d_y.ResNet3DY.from_config(
      json.loads(json.dumps(config))).output_specs['res5'][2:4] == (8, 8)


def test_batch_norm_5d_as_4d_equals_keras_batch_norm():
  """Same outputs, gradients and moving statistics as Keras' 5D kernel."""
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(2.0, 3.0, size=(3, 4, 5, 6, 7)), tf.float32)
  upstream = tf.constant(rng.normal(size=x.shape), tf.float32)
  ours = resnet_3d_y.BatchNormalization(momentum=0.8, epsilon=1e-5)
  keras = tf_keras.layers.BatchNormalization(momentum=0.8, epsilon=1e-5)
  gamma, beta = rng.uniform(0.5, 2.0, size=7), rng.normal(size=7)
  for layer in (ours, keras):
    layer.build(x.shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
  assert [v.shape for v in ours.weights] == [v.shape for v in keras.weights]
  results = []
  for layer in (ours, keras):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x, training=True)
      loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x] + layer.trainable_variables)
    results.append([y, *grads, layer.moving_mean, layer.moving_variance,
                    layer(x, training=False)])
  for got, want in zip(*results):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4,
                               atol=1e-4)
  # The training output is normalized per channel over B, T, H and W.
  y = results[0][0].numpy()
  normalized = (y - ours.beta.numpy()) / ours.gamma.numpy()
  np.testing.assert_allclose(normalized.mean(axis=(0, 1, 2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(normalized.std(axis=(0, 1, 2, 3)), 1, atol=1e-3)
  # Checkpoints are interchangeable.
  ckpt = tf.train.Checkpoint(bn=keras)
  path = ckpt.write(os.path.join(tempfile.mkdtemp(), 'bn'))
  fresh = resnet_3d_y.BatchNormalization()
  fresh.build(x.shape)
  tf.train.Checkpoint(bn=fresh).read(path).assert_consumed()
  np.testing.assert_array_equal(fresh.moving_mean.numpy(),
                                keras.moving_mean.numpy())


def test_backbone_batch_norms_are_ours_with_keras_names():
  model = _tiny()
  norms = [l for block in model.layers for l in block._flatten_layers()  # pylint: disable=protected-access
           if isinstance(l, tf_keras.layers.BatchNormalization)]
  assert norms and all(isinstance(l, resnet_3d_y.BatchNormalization)
                       for l in norms)
  names = {v.name.split('/')[-2] for l in norms for v in l.weights}
  assert 'stem_bn' in names and 'batch_normalization_3' in names


@pytest.mark.parametrize('spatial_strides,in_channels', [(2, 16), (1, 16),
                                                         (1, 32)])
def test_bottleneck_block_equals_model_garden_block(spatial_strides,
                                                    in_channels):
  """Our block computes Model Garden's block: outputs and every gradient."""
  rng = np.random.default_rng(1)
  x = tf.constant(rng.normal(size=(2, 4, 8, 8, in_channels)), tf.float32)
  args = dict(filters=8, temporal_kernel_size=3, temporal_strides=1,
              spatial_strides=spatial_strides, norm_momentum=0.9)
  ours = resnet_3d_y.BottleneckBlock3D(**args)
  theirs = nn_blocks_3d.BottleneckBlock3D(**args)
  ours(x, training=False)
  theirs(x, training=False)
  # Same variables at the same checkpoint paths, in the same order.
  ours_vars = variable_paths.variable_paths(ours)
  theirs_vars = variable_paths.variable_paths(theirs)
  assert list(ours_vars) == list(theirs_vars)
  assert [v.shape for v in ours.weights] == [v.shape for v in theirs.weights]
  for path, var in ours_vars.items():
    var.assign(theirs_vars[path])
  upstream = tf.constant(rng.normal(size=ours(x).shape), tf.float32)
  results = []
  for block in (ours, theirs):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = block(x, training=True)
      loss = tf.reduce_sum(y * upstream)
    results.append([y, *tape.gradient(loss, [x] + block.trainable_variables)])
  for got, want in zip(*results):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4,
                               atol=1e-4)
