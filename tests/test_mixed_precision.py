"""Mixed precision as docs/recipes.md states it, on the demo experiment.

`runtime.mixed_precision_dtype=bfloat16` / `float16` (Model Garden's
spellings) set the Keras policy as `experiment_runner.run` does; the demo
then trains through Model Garden's trainer (`train_utils.create_trainer`,
whose optimizer comes from `Task.create_optimizer(..., params.runtime)`).
The backbone computes in the half type; head outputs and loss terms must be
float32, and `float16` must train through a `LossScaleOptimizer`.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import task_factory
from official.core import train_utils
from official.modeling import performance
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl import errors
from official_projects_const_cl.ops import cpu_kernels
from official_projects_const_cl.tasks import experiment_runner

STEPS = 3
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def tiny_demo(tmp_path_factory):
  out = tmp_path_factory.mktemp('demo')
  return demo_data.generate_demo_dataset(
      str(out), num_train=4, num_val=2, num_shards=1, write_ava=False)


def _params(dtype, data, extra=()):
  override = ','.join([
      f'runtime.mixed_precision_dtype={dtype}',
      f"task.train_data.input_path={data['train_pattern']}",
      f"task.validation_data.input_path={data['val_pattern']}",
      'task.train_data.demo_data_dir=', 'task.validation_data.demo_data_dir=',
      'task.train_data.cache=false', 'task.knn.enabled=false',
      'task.train_data.global_batch_size=4',
      'task.train_data.num_examples=4',
      'task.train_data.feature_shape=[8,32,32,3]',
      'task.validation_data.feature_shape=[8,32,32,3]',
      f'trainer.train_steps={STEPS}', 'trainer.steps_per_loop=1',
      'trainer.summary_interval=1', *extra])
  return experiment_runner.experiment_config('const_cl_pretrain_demo',
                                             override, 'train')


def _train(dtype, data):
  """(trainer, head outputs, loss terms, per-step logs, weights before)."""
  params = _params(dtype, data)
  performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
  try:
    task = task_factory.get_task(params.task)
    trainer = train_utils.create_trainer(params, task, train=True,
                                         evaluate=False)
    model = trainer.model
    batch = next(iter(task.build_inputs(params.task.train_data)))
    outputs = model(task._model_inputs(batch), training=False)  # pylint: disable=protected-access
    terms = task.compute_losses(outputs)
    before = [v.numpy() for v in model.trainable_variables]
    logs = [trainer.train(tf.constant(1, tf.int32)) for _ in range(STEPS)]
    return trainer, outputs, terms, logs, before
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')


def _check_float32_heads_and_finite_training(dtype, trainer, outputs, terms,
                                             logs, before):
  model = trainer.model
  assert model.backbone.compute_dtype == dtype
  assert model.backbone.variable_dtype == 'float32'
  assert set(outputs) >= {'global_embeddings', 'region_predictions',
                          'region_targets', 'region_features'}
  for key, value in outputs.items():
    assert value.dtype == tf.float32, key
  for key, value in terms.items():
    assert value.dtype == tf.float32, key
    assert np.isfinite(value.numpy()), key
  for step_logs in logs:
    for key in ('training_loss', 'global_loss', 'region_loss'):
      assert np.isfinite(float(step_logs[key])), (key, step_logs)
    assert float(step_logs['region_loss']) > 0
  after = [v.numpy() for v in model.trainable_variables]
  assert all(np.isfinite(a).all() for a in after)
  # The steps were applied (a loss-scale overflow would skip one).
  assert any(not np.array_equal(a, b) for a, b in zip(after, before))
  assert int(trainer.global_step.numpy()) == STEPS


def test_bfloat16_trains_with_float32_heads_and_losses(tiny_demo,
                                                      bfloat16_kernels):
  if not bfloat16_kernels:
    return  # Passed with Eigen's kernels in a subprocess (conftest).
  run = _train('bfloat16', tiny_demo)
  _check_float32_heads_and_finite_training('bfloat16', *run)
  # bfloat16 has float32's range: no loss scaling.
  assert not isinstance(run[0].optimizer,
                        tf_keras.mixed_precision.LossScaleOptimizer)


def _float16_kernel_problem():
  """Why this machine cannot run the float16 backbone, or None if it can.

  TensorFlow's CPU build registers MaxPool3D (the stem pool) for float32
  and bfloat16 only; its GPU build also for float16.
  """
  try:
    tf.nn.max_pool3d(tf.zeros([1, 1, 2, 2, 1], tf.float16), 1, 1, 'SAME')
  except tf.errors.NotFoundError:
    return (f'TensorFlow {tf.__version__} has no float16 MaxPool3D kernel on '
            'this machine (CPU kernels: float32, bfloat16); the float16 '
            'forward needs a GPU. Loss scaling is checked on CPU by '
            'test_loss_scaled_train_step_equals_the_unscaled_one.')
  return None


def test_float16_trains_through_a_loss_scale_optimizer(tiny_demo):
  problem = _float16_kernel_problem()
  if problem:
    pytest.skip(problem)
  run = _train('float16', tiny_demo)
  trainer = run[0]
  assert isinstance(trainer.optimizer,
                    tf_keras.mixed_precision.LossScaleOptimizer)
  _check_float32_heads_and_finite_training('float16', *run)
  assert np.isfinite(float(trainer.optimizer.loss_scale))


def test_float16_config_builds_loss_scale_optimizers(tiny_demo):
  for loss_scale, dynamic, scale in ((None, True, 2.0**15),
                                     (128.0, False, 128.0)):
    params = _params('float16', tiny_demo,
                     [f'runtime.loss_scale={loss_scale}'] if loss_scale else [])
    task = task_factory.get_task(params.task)
    optimizer = task.create_optimizer(params.trainer.optimizer_config,
                                      params.runtime)
    assert isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
    assert optimizer.dynamic == dynamic
    assert float(optimizer.loss_scale) == scale
  bf16 = _params('bfloat16', tiny_demo)
  optimizer = task_factory.get_task(bf16.task).create_optimizer(
      bf16.trainer.optimizer_config, bf16.runtime)
  assert not isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer)


def test_loss_scaled_train_step_equals_the_unscaled_one(tiny_demo):
  """The task's train step with float16's LossScaleOptimizer, in float32.

  The loss is scaled up by 2**15 before differentiation and the gradients
  scaled back down (powers of two: exact unless they overflow), so the steps
  must give the same losses and weights as the plain optimizer (the first
  step's learning rate is 0: warm-up).
  """
  params = _params('float16', tiny_demo)  # Float32 policy: runs on CPU.
  task = task_factory.get_task(params.task)
  model = task.build_model()
  batch = next(iter(task.build_inputs(params.task.train_data)))
  model(task._model_inputs(batch), training=False)  # pylint: disable=protected-access
  initial = [v.numpy() for v in model.variables]
  weights, losses = {}, {}
  for name, runtime in (('scaled', params.runtime), ('plain', None)):
    for variable, value in zip(model.variables, initial):
      variable.assign(value)
    optimizer = task.create_optimizer(params.trainer.optimizer_config,
                                      runtime)
    step = tf.function(lambda b, o=optimizer: task.train_step(b, model, o))
    losses[name] = [float(step(batch)[task.loss]) for _ in range(3)]
    weights[name] = [v.numpy() for v in model.trainable_variables]
    if runtime is not None:
      assert isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
      assert float(optimizer.loss_scale) == 2.0**15  # No overflow, no skip.
  assert all(np.isfinite(losses['scaled']))
  np.testing.assert_allclose(losses['scaled'], losses['plain'], rtol=1e-6)
  assert losses['scaled'][2] != losses['scaled'][1]  # The 2nd LR is > 0.
  for scaled, plain in zip(weights['scaled'], weights['plain']):
    np.testing.assert_allclose(scaled, plain, rtol=1e-5, atol=1e-7)


def test_bfloat16_on_a_cpu_without_bfloat16_kernels_is_a_clear_error():
  # oneDNN capped at AVX2 has no bfloat16 convolution on any x86 CPU: what
  # a user of an AVX2-only host (most AMD hosts before Zen 4) gets.
  command = [sys.executable, 'train.py', '--experiment=const_cl_pretrain_demo',
             '--mode=train', '--model_dir=/nonexistent/not/created',
             '--params_override=runtime.mixed_precision_dtype=bfloat16']
  env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS='1', ONEDNN_MAX_CPU_ISA='AVX2',
             CONST_CL_DEMO_DATA_DIR='/nonexistent/demo/not/created')
  result = subprocess.run(command, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 2, result.stderr[-3000:]
  message = result.stderr
  assert 'runtime.mixed_precision_dtype=bfloat16' in message, message[-3000:]
  assert 'TF_ENABLE_ONEDNN_OPTS=0' in message
  assert 'AVX-512' in message
  assert 'Traceback' not in message
  assert not os.path.exists('/nonexistent/demo/not/created')


def test_mixed_precision_kernel_check(monkeypatch):
  runtime = experiment_runner.experiment_config(
      'const_cl_pretrain_demo', 'runtime.mixed_precision_dtype=bfloat16',
      'train').runtime
  monkeypatch.setattr(cpu_kernels, 'bfloat16_cpu_problem',
                      lambda: 'no bfloat16 convolution here')
  monkeypatch.setattr(tf.config, 'list_physical_devices', lambda *_: [])
  with pytest.raises(errors.UserError, match='no bfloat16 convolution here'):
    experiment_runner.check_mixed_precision_kernels(runtime)
  # float32, float16 and TPU runs are not asked about CPU bfloat16 kernels.
  for dtype in ('float32', 'float16'):
    runtime.mixed_precision_dtype = dtype
    experiment_runner.check_mixed_precision_kernels(runtime)
  runtime.mixed_precision_dtype = 'bfloat16'
  runtime.distribution_strategy = 'tpu'
  experiment_runner.check_mixed_precision_kernels(runtime)
  # The real probe agrees with a bfloat16 convolution on this CPU.
  monkeypatch.undo()
  problem = cpu_kernels.bfloat16_cpu_problem()
  try:
    tf.nn.conv3d(tf.ones([1, 2, 4, 4, 2], tf.bfloat16),
                 tf.ones([1, 3, 3, 2, 3], tf.bfloat16), [1] * 5, 'SAME')
    ran = True
  except tf.errors.OpError:
    ran = False
  assert ran == (problem is None), problem
