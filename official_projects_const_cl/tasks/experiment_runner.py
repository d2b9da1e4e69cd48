"""Model Garden's Orbit experiment runner, returning the evaluation logs.

`official.core.train_lib.OrbitExperimentRunner.run` returns eval logs only for
`train_and_post_eval`; the driver and the demo need the final kNN top-1 of
`eval` and `train_and_eval` runs too, and the FLOPs count needs the two-view
model's input signature. Both are added here by subclassing (the runner's
documented customization point); everything else is Model Garden's.
"""

from typing import Any, Dict, Mapping, Tuple

from absl import logging
import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import config_definitions as cfg
from official.core import train_lib
from official.core import train_utils


def flops_input_signature(params: cfg.ExperimentConfig
                          ) -> Dict[str, Dict[str, tf.TensorSpec]]:
  """A batch-1 input signature of the pretraining model (for FLOPs)."""
  t, h, w, c = params.task.train_data.feature_shape
  n = params.task.model.num_boxes
  return {'inputs': {
      'image': tf.TensorSpec([1, t, h, w, c], tf.float32),
      'boxes': tf.TensorSpec([1, t, n, 4], tf.float32),
      'boxes_mask': tf.TensorSpec([1, t, n], tf.float32),
      'region_time_index': tf.TensorSpec([1], tf.int32),
  }}


class ExperimentRunner(train_lib.OrbitExperimentRunner):
  """Runs a mode and returns (model, final evaluation logs)."""

  def run(self) -> Tuple[tf_keras.Model, Mapping[str, Any]]:
    mode, params = self._mode, self.params
    logging.info('Starts to execute mode: %s', mode)
    logs = None
    with self.strategy.scope():
      if mode in ('train', 'train_and_post_eval'):
        self.controller.train(steps=params.trainer.train_steps)
      elif mode == 'train_and_eval':
        logs = self.controller.train_and_evaluate(
            train_steps=params.trainer.train_steps,
            eval_steps=params.trainer.validation_steps,
            eval_interval=params.trainer.validation_interval)
      elif mode == 'eval':
        logs = self.controller.evaluate(steps=params.trainer.validation_steps)
      elif mode == 'continuous_eval':
        def timeout_fn():
          return self.trainer.global_step.numpy() >= params.trainer.train_steps
        logs = self.controller.evaluate_continuously(
            steps=params.trainer.validation_steps,
            timeout=params.trainer.continuous_eval_timeout,
            timeout_fn=timeout_fn)
      else:
        raise ValueError(f'Unknown --mode {mode!r}: use train, eval, '
                         'train_and_eval, train_and_post_eval or '
                         'continuous_eval.')
      if mode == 'train_and_post_eval' or (self._run_post_eval and
                                           mode == 'train'):
        logs = self.controller.evaluate(steps=params.trainer.validation_steps)

    num_params = train_utils.try_count_params(self.trainer.model)
    if num_params is not None:
      logging.info('Number of trainable params in model: %f Millions.',
                   num_params / 1e6)
    flops = train_utils.try_count_flops(
        self.trainer.model, inputs_kwargs=flops_input_signature(params))
    if flops is not None:
      logging.info('FLOPs (multiply-adds) of one clip forward: %f Billions.',
                   flops / 1e9 / 2)
    return self.trainer.model, dict(logs or {})


def run_experiment(distribution_strategy: tf.distribute.Strategy,
                   task: base_task.Task, mode: str,
                   params: cfg.ExperimentConfig, model_dir: str
                   ) -> Tuple[tf_keras.Model, Mapping[str, Any]]:
  """Like `train_lib.run_experiment`, but returns eval logs of every mode."""
  runner = ExperimentRunner(
      distribution_strategy=distribution_strategy, task=task, mode=mode,
      params=params, model_dir=model_dir)
  return runner.run()
