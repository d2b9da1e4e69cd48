"""Every task's model and optimizer exist in full before the first step.

A `tf.function` that creates variables on its first call is traced twice;
the training loop's trace is the costliest part of a short run. So each
task's `build_model` creates every weight (`build_heads`), and
`gradient_step.create_optimizer_variables` every slot, before the loop.
"""

import numpy as np
import pytest
import tensorflow as tf

from official.core import exp_factory
from official.core import task_factory
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import gradient_step

EXPERIMENTS = ['const_cl_pretrain_demo', 'cvrl_pretrain_demo',
               'const_cl_linear_eval_demo', 'const_cl_finetune_demo',
               'const_cl_action_localization_demo', 'const_cl_tracking_demo',
               'vclr_pretrain_demo']


def _zeros(specs):
  return tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), specs)


class _Created:
  """Names of the variables created inside the `with` block."""

  def __init__(self):
    self.names = []

  def __call__(self, next_creator, **kwargs):
    variable = next_creator(**kwargs)
    self.names.append(variable.name)
    return variable


@pytest.mark.parametrize('experiment', EXPERIMENTS)
def test_first_step_creates_no_variable(experiment):
  params = exp_factory.get_exp_config(experiment)
  task = task_factory.get_task(params.task)
  model = task.build_model()
  inputs = _zeros(experiment_runner.flops_inputs(params.task)['inputs'])
  optimizer = task.create_optimizer(params.trainer.optimizer_config,
                                    params.runtime)
  gradient_step.create_optimizer_variables(model, optimizer)
  before = len(optimizer.variables())
  assert before >= len(model.trainable_variables) + 1  # Slots + step.

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      outputs = model(inputs, training=True)
      loss = tf.add_n([tf.reduce_sum(tf.cast(x, tf.float32))
                       for x in tf.nest.flatten(outputs)
                       if x.dtype.is_floating]) * 0.0
    gradient_step.apply_gradients(tape, loss, model, optimizer)

  created = _Created()
  with tf.variable_creator_scope(created):
    step()
  assert created.names == []
  assert len(optimizer.variables()) == before
  assert int(optimizer.iterations.numpy()) == 1
  # One trace: the second call reuses the first concrete function.
  step()
  assert step.experimental_get_tracing_count() == 1


def test_build_heads_is_idempotent():
  params = exp_factory.get_exp_config('const_cl_pretrain_demo')
  model = task_factory.get_task(params.task).build_model()
  names = [v.name for v in model.variables]
  values = [v.numpy() for v in model.variables]
  model.build_heads()
  assert [v.name for v in model.variables] == names
  for a, v in zip(values, model.variables):
    np.testing.assert_array_equal(a, v.numpy())


@pytest.mark.parametrize('experiment,context_length',
                         [(e, None) for e in EXPERIMENTS] +
                         [('const_cl_pretrain_demo', 0)])
def test_built_weights_are_those_of_a_forward_pass(experiment, context_length,
                                                   monkeypatch):
  """Same names and shapes as the weights that a first call creates."""
  params = exp_factory.get_exp_config(experiment)
  if context_length is not None:  # The MLP region head (paper Table 6).
    params.override({'task': {'model': {'context_length': context_length}}})
  task = task_factory.get_task(params.task)
  built = task.build_model()
  monkeypatch.setattr(type(built), 'build_heads', lambda self: None)
  called = task.build_model()
  assert len(called.variables) < len(built.variables)
  called(_zeros(experiment_runner.flops_inputs(params.task)['inputs']),
         training=False)
  assert ([(v.name, v.shape) for v in built.variables] ==
          [(v.name, v.shape) for v in called.variables])
