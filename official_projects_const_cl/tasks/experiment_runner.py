"""Runs a Model Garden experiment and returns its last evaluation logs.

`official.core.train_lib.run_experiment` returns evaluation logs only for
`train_and_post_eval`; the driver and the demo need the final kNN top-1 of
`eval` and `train_and_eval` runs too. An Orbit eval action (called with the
output of every evaluation) captures them. Model Garden's FLOPs counter cannot
guess the models' inputs, so it is given a batch-1 signature here.
"""

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import tensorflow as tf
import tf_keras

from official.common import distribute_utils
from official.core import base_task
from official.core import config_definitions as cfg
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import performance
from official_projects_const_cl.tasks import progress


def flops_input_signature(feature_shape: Sequence[int], num_boxes: int
                          ) -> Dict[str, Dict[str, tf.TensorSpec]]:
  """A batch-1 input signature of the pretraining model (for FLOPs).

  Args:
    feature_shape: (T, H, W, C) of one clip.
    num_boxes: N, region boxes per frame.

  Returns:
    `inputs_kwargs` for `train_utils.try_count_flops`.
  """
  t, h, w, c = feature_shape
  n = num_boxes
  return {'inputs': {
      'image': tf.TensorSpec([1, t, h, w, c], tf.float32),
      'boxes': tf.TensorSpec([1, t, n, 4], tf.float32),
      'boxes_mask': tf.TensorSpec([1, t, n], tf.float32),
      'region_time_index': tf.TensorSpec([1], tf.int32),
  }}


def flops_inputs(task_config: cfg.TaskConfig
                 ) -> Dict[str, Dict[str, tf.TensorSpec]]:
  """Batch-1 FLOPs signature (one training clip) of a task config's model."""
  shape = list(getattr(task_config.train_data, 'feature_shape', ()))
  if 'num_boxes' in task_config.model.as_dict():  # Pretraining.
    return flops_input_signature(shape, task_config.model.num_boxes)
  if 'siamfc' in task_config.model.as_dict():  # Tracking: a pair.
    sf = task_config.model.siamfc
    frames = 2 * sf.num_neighbors + 1
    crop = lambda s: tf.TensorSpec([1, frames, s, s, 3], tf.float32)
    return {'inputs': {'exemplar': crop(sf.exemplar_size),
                       'search': crop(sf.train_instance_size)}}
  image = tf.TensorSpec([1] + shape, tf.float32)
  if 'max_num_boxes' in task_config.train_data.as_dict():  # Localization.
    boxes = tf.TensorSpec([1, task_config.train_data.max_num_boxes, 4],
                          tf.float32)
    return {'inputs': {'image': image, 'boxes': boxes}}
  return {'inputs': image}


def run_experiment(distribution_strategy: tf.distribute.Strategy,
                   task: base_task.Task, mode: str,
                   params: cfg.ExperimentConfig, model_dir: str,
                   count_flops: Optional[bool] = None
                   ) -> Tuple[tf_keras.Model, Mapping[str, Any]]:
  """Like `train_lib.run_experiment`, but returns the last eval logs.

  Training runs print progress lines with an ETA (`progress.TrainProgress`).
  The FLOPs of one clip are logged once per model: by default for training
  runs that start from scratch (counting takes seconds of CPU).
  """
  if count_flops is None:
    count_flops = ('train' in mode and
                   tf.train.latest_checkpoint(model_dir) is None)
  evaluations: List[Mapping[str, Any]] = []
  with distribution_strategy.scope():
    trainer = train_utils.create_trainer(
        params, task, train='train' in mode,
        evaluate='eval' in mode,
        checkpoint_exporter=train_lib.maybe_create_best_ckpt_exporter(
            params, model_dir))
  train_actions, eval_actions = [], [evaluations.append]
  if 'train' in mode:
    reporter = progress.TrainProgress(
        params.trainer.train_steps,
        get_step=lambda: int(trainer.global_step.numpy()),
        name=os.path.basename(os.path.normpath(model_dir)) or mode,
        evaluation_interval=(params.trainer.validation_interval
                             if 'eval' in mode else None))
    train_actions.append(reporter)
    eval_actions.append(reporter.eval_action)
  model, post_eval_logs = train_lib.run_experiment(
      distribution_strategy=distribution_strategy, task=task, mode=mode,
      params=params, model_dir=model_dir, trainer=trainer,
      train_actions=train_actions, eval_actions=eval_actions)
  flops = (train_utils.try_count_flops(
      model, inputs_kwargs=flops_inputs(params.task)) if count_flops else None)
  if flops is not None:
    logging.info('FLOPs (multiply-adds) of one clip forward: %f Billions.',
                 flops / 1e9 / 2)
  logs = post_eval_logs or (evaluations[-1] if evaluations else {})
  return model, dict(logs)


def run(params: cfg.ExperimentConfig, mode: str, model_dir: str,
        count_flops: Optional[bool] = None) -> Mapping[str, Any]:
  """Runs a resolved experiment config as `train.py` does; returns eval logs.

  Writes `params.yaml` for training modes, sets the mixed-precision policy,
  builds the strategy of `params.runtime` and the task inside its scope.
  """
  if 'train' in mode:
    train_utils.serialize_config(params, model_dir)
  if params.runtime.mixed_precision_dtype:
    performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
  strategy = distribute_utils.get_distribution_strategy(
      distribution_strategy=params.runtime.distribution_strategy,
      all_reduce_alg=params.runtime.all_reduce_alg,
      num_gpus=params.runtime.num_gpus,
      tpu_address=params.runtime.tpu)
  with strategy.scope():
    task = task_factory.get_task(params.task, logging_dir=model_dir)
  logging.info('Running mode %s; model_dir=%s', mode, model_dir)
  _, logs = run_experiment(distribution_strategy=strategy, task=task,
                           mode=mode, params=params, model_dir=model_dir,
                           count_flops=count_flops)
  return logs
