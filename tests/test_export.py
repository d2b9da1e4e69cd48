"""SavedModel export: reloaded signatures match the Keras backbone."""

import os

import numpy as np
import pytest
import tensorflow as tf

from official_projects_const_cl import errors
from official_projects_const_cl.modeling import export_module
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import pretrained_model
from official_projects_const_cl.tools import export_saved_model

EXPERIMENT = 'const_cl_pretrain_demo'
# 8 frames of 32^2: T' = 4, res5 1x1 with the demo backbone.
OVERRIDE = 'task.train_data.feature_shape=[8,32,32,3]'
T, S = 8, 32


def randomize(model, seed):
  """Random values in every variable (BN statistics too), as after training."""
  rng = np.random.default_rng(seed)
  for var in model.weights:
    value = rng.normal(0.0, 0.1, var.shape)
    if 'moving_variance' in var.name:
      value = rng.uniform(0.5, 1.5, var.shape)
    var.assign(value.astype(var.dtype.as_numpy_dtype))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A pretraining checkpoint as the trainer writes it, and its model."""
  params = experiment_runner.experiment_config(EXPERIMENT, OVERRIDE)
  model, _ = pretrained_model.build_pretrained_model(params, None)
  randomize(model, 0)
  model_dir = str(tmp_path_factory.mktemp('pretrain'))
  tf.train.Checkpoint(model=model, **model.checkpoint_items).save(
      os.path.join(model_dir, 'ckpt'))
  return model, model_dir


def test_reloaded_saved_model_matches_keras(trained, tmp_path):
  model, model_dir = trained
  path, spec = export_saved_model.export_saved_model(
      EXPERIMENT, model_dir, str(tmp_path / 'sm'), input_type='float32',
      params_override=OVERRIDE)
  assert spec.shape.as_list() == [None, T, S, S, 3]
  assert spec.dtype == tf.float32
  loaded = tf.saved_model.load(path)
  assert sorted(loaded.signatures) == ['serving_default', 'serving_float32',
                                       'serving_uint8']
  rng = np.random.default_rng(1)
  pixels = rng.integers(0, 256, (2, T, S, S, 3)).astype(np.uint8)
  endpoints = model.backbone(tf.constant(pixels / np.float32(255)),
                             training=False)
  fresh, _ = pretrained_model.build_pretrained_model(
      experiment_runner.experiment_config(EXPERIMENT, OVERRIDE), None)
  fresh_g = fresh.backbone(tf.constant(pixels / np.float32(255)),
                           training=False)['res5_g'].numpy().mean((1, 2, 3))
  for name, clips in (('serving_uint8', tf.constant(pixels)),
                      ('serving_float32', tf.constant(pixels / np.float32(
                          255))),
                      ('serving_default', tf.constant(pixels / np.float32(
                          255)))):
    got = loaded.signatures[name](clips=clips)
    assert sorted(got) == sorted(
        ['res2', 'res3', 'res4', 'res5_g', 'res5_r', 'pooled_res5_g',
         'pooled_res5_r'])
    for key, value in endpoints.items():
      np.testing.assert_allclose(got[key].numpy(), value.numpy(), atol=1e-5,
                                 rtol=1e-5)
    for key in ('res5_g', 'res5_r'):
      pooled = endpoints[key].numpy().mean(axis=(1, 2, 3))
      assert got['pooled_' + key].shape == (2, pooled.shape[-1])
      np.testing.assert_allclose(got['pooled_' + key].numpy(), pooled,
                                 atol=1e-5, rtol=1e-5)
    # The restored weights, not a fresh initialization, were exported.
    assert np.abs(fresh_g - got['pooled_res5_g'].numpy()).max() > 1e-3
  with pytest.raises(tf.errors.InvalidArgumentError, match='uint8'):
    loaded.signatures['serving_default'](clips=tf.constant(pixels))


def test_fixed_batch_size_and_uint8_scaling(tmp_path):
  params = experiment_runner.experiment_config(EXPERIMENT, OVERRIDE)
  model, _ = pretrained_model.build_pretrained_model(params, None)
  module = export_module.BackboneExportModule(
      params, model.backbone, (T, S, S), 'uint8', batch_size=3)
  assert module.input_signature.shape.as_list() == [3, T, S, S, 3]
  assert module.input_signature.dtype == tf.uint8
  assert module.function_keys == {'clips': 'serving_default',
                                  'clips_uint8': 'serving_uint8',
                                  'clips_float32': 'serving_float32'}
  np.testing.assert_allclose(
      export_module.clips_to_float(tf.constant([0, 51, 255], tf.uint8)),
      [0.0, 0.2, 1.0], atol=1e-7)
  with pytest.raises(ValueError, match='input_type'):
    export_module.BackboneExportModule(params, model.backbone, (T, S, S),
                                       'int32')


def test_checkpoint_of_another_model_is_one_user_error(trained, tmp_path,
                                                       capsys):
  _, model_dir = trained
  with pytest.raises(SystemExit) as e:
    export_saved_model.main(
        ['export_saved_model', '--experiment=cvrl_pretrain_demo',
         f'--checkpoint={model_dir}', f'--export_dir={tmp_path / "sm"}',
         f'--params_override={OVERRIDE}'])
  assert e.value.code == errors.EXIT_USER_ERROR
  err = capsys.readouterr().err
  assert 'Traceback' not in err
  assert err.startswith('ERROR: --checkpoint: ')
  assert 'does not fit' in err and 'branch_res5=true' in err
  with pytest.raises(SystemExit) as e:
    export_saved_model.main(
        ['export_saved_model', f'--checkpoint={tmp_path / "none"}',
         f'--export_dir={tmp_path / "sm"}'])
  assert e.value.code == errors.EXIT_USER_ERROR
  assert 'none' in capsys.readouterr().err
