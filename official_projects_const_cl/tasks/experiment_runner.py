"""Runs a Model Garden experiment safely and returns its last eval logs.

`official.core.train_lib.run_experiment` returns evaluation logs only for
`train_and_post_eval`; the driver and the demo need the final kNN top-1 of
`eval` and `train_and_eval` runs too. An Orbit eval action (called with the
output of every evaluation) captures them. Model Garden's FLOPs counter cannot
guess the models' inputs, so it is given a batch-1 signature here.

Before anything runs or is written (`run`):

1. the config is checked (`configs/validation.py`: types, then ranges);
2. a `model_dir` that holds a checkpoint is resumed only if its
   `params.yaml` agrees on every key that changes the model or the data
   shape (`MODEL_KEY_PREFIXES`, `DATA_SHAPE_FIELDS`); otherwise the run
   refuses to start, listing the differing keys, unless
   `allow_config_change`. Other differences are logged;
3. training modes then remove the `ckpt-*_temp` folders that a process
   killed while writing a checkpoint leaves behind, and write `params.yaml`
   (atomically; every worker of a multi-worker run writes the same file).

In a multi-worker run every worker gets the same `model_dir`; Model Garden
has the chief save there and the other workers into a temporary folder
(saving is collective), from which they would also "resume": a fresh
initialization at step 0 beside a chief restored at step N.
`ExperimentRunner` restores those workers from the chief's latest
checkpoint in `model_dir` instead (docs/recipes.md, Multi-worker).
"""

import os
import pprint
import re
import socket
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import tensorflow as tf
import tf_keras
import yaml

from official.common import distribute_utils
from official.core import base_task
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import hyperparams
from official.modeling import performance
from official_projects_const_cl import errors
from official_projects_const_cl.configs import validation
from official_projects_const_cl.ops import cpu_kernels
from official_projects_const_cl.tasks import gradient_step
from official_projects_const_cl.tasks import progress

PARAMS_FILE = 'params.yaml'
# Keys that change the model's variables or the shapes of its inputs (the
# models are built from the training data config; validation may use other
# clip sizes).
MODEL_KEY_PREFIXES = ('task.model.',)
DATA_SHAPE_FIELDS = ('feature_shape', 'num_classes', 'num_boxes',
                     'max_num_boxes')
DATA_CONFIGS = ('task.train_data.',)
# What overriding a config with a bad yaml file / string, key or value
# raises (`hyperparams.override_params_dict`).
CONFIG_ERRORS = (KeyError, ValueError, TypeError, AttributeError,
                 yaml.YAMLError, tf.errors.NotFoundError)
# What tf.train.Checkpoint leaves when killed while writing <prefix>.
_TEMP_CHECKPOINT = re.compile(r'.+-\d+_temp$')


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
  if getattr(task_config.train_data, 'clip_sampling', '') == 'vclr_segments':
    k = task_config.train_data.vclr_num_segments  # VCLR: one tuple pair.
    return {'inputs': {
        'anchor': tf.TensorSpec([1, k] + shape, tf.float32),
        'positive': tf.TensorSpec([1, k] + shape, tf.float32),
        'anchor_second_view': tf.TensorSpec([1] + shape, tf.float32),
        'anchor_slot': tf.TensorSpec([1], tf.int32)}}
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


class ExperimentRunner(train_lib.OrbitExperimentRunner):
  """Model Garden's runner; non-chief workers resume from `model_dir`."""

  def _maybe_build_checkpoint_manager(
      self) -> Optional[tf.train.CheckpointManager]:
    manager = super()._maybe_build_checkpoint_manager()
    if manager is None or manager.directory == self.model_dir:
      return manager
    latest = tf.train.latest_checkpoint(self.model_dir)
    if latest is None:
      return manager
    checkpoint = self.trainer.checkpoint

    def restore_from_chief():
      checkpoint.restore(latest).assert_existing_objects_matched()
      logging.info('Non-chief worker: restored %s (saving to %s).', latest,
                   manager.directory)

    # The same manager (temporary folder, max_to_keep=1), initialized from
    # the chief's checkpoint instead of `trainer.initialize`.
    return tf.train.CheckpointManager(
        checkpoint, directory=manager.directory, max_to_keep=1,
        step_counter=self.trainer.global_step,
        checkpoint_interval=self.params.trainer.checkpoint_interval,
        init_fn=restore_from_chief)


def run_experiment(distribution_strategy: tf.distribute.Strategy,
                   task: base_task.Task, mode: str,
                   params: cfg.ExperimentConfig, model_dir: str,
                   count_flops: Optional[bool] = None
                   ) -> Tuple[tf_keras.Model, Mapping[str, Any]]:
  """Like `train_lib.run_experiment`, but returns the last eval logs.

  Runs `ExperimentRunner` (non-chief workers resume from `model_dir`).

  Training runs print progress lines with an ETA (`progress.TrainProgress`).
  The FLOPs of one clip are logged once per model: by default for training
  runs that start from scratch, by the chief (counting takes seconds of
  CPU).
  """
  if count_flops is None:  # Not on non-chief workers: the chief logs it.
    count_flops = ('train' in mode and
                   distribution_strategy.extended.should_checkpoint and
                   tf.train.latest_checkpoint(model_dir) is None)
  evaluations: List[Mapping[str, Any]] = []
  with distribution_strategy.scope():
    trainer = train_utils.create_trainer(
        params, task, train='train' in mode,
        evaluate='eval' in mode,
        checkpoint_exporter=train_lib.maybe_create_best_ckpt_exporter(
            params, model_dir))
    if 'train' in mode:  # The training loop is then traced once, not twice.
      gradient_step.create_optimizer_variables(trainer.model,
                                               trainer.optimizer)
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
  model, post_eval_logs = ExperimentRunner(
      distribution_strategy=distribution_strategy, task=task, mode=mode,
      params=params, model_dir=model_dir, trainer=trainer,
      train_actions=train_actions, eval_actions=eval_actions).run()
  flops = (train_utils.try_count_flops(
      model, inputs_kwargs=flops_inputs(params.task)) if count_flops else None)
  if flops is not None:
    logging.info('FLOPs (multiply-adds) of one clip forward: %f Billions.',
                 flops / 1e9 / 2)
  logs = post_eval_logs or (evaluations[-1] if evaluations else {})
  return model, dict(logs)


def check_config(params: cfg.ExperimentConfig,
                 mode: Optional[str] = None) -> None:
  """`validation.validate_experiment`, raising a UserError naming each key."""
  with errors.reraise_as_user_error((validation.ConfigError,)):
    validation.validate_experiment(params, mode)


def project_experiments() -> List[str]:
  """Names of this project's registered experiments, sorted."""
  # pylint: disable=protected-access
  return sorted(name for name, fn in exp_factory._REGISTERED_CONFIGS.items()
                if fn.__module__.startswith('official_projects_const_cl'))


def check_experiment_name(name: str) -> None:
  """Raises a UserError listing the registered experiments for a bad name."""
  known = exp_factory._REGISTERED_CONFIGS  # pylint: disable=protected-access
  if name in known:
    return
  ours = project_experiments()
  what = 'missing' if not name else f'unknown: {name!r}'
  raise errors.UserError(
      f'--experiment is {what}. Registered ConST-CL experiments:\n  ' +
      '\n  '.join(ours) +
      f'\n({len(known) - len(ours)} Model Garden experiments are also '
      'registered.)')


def experiment_config(experiment: str, params_override: str = '',
                      mode: Optional[str] = None,
                      config_files: Sequence[str] = ()
                      ) -> cfg.ExperimentConfig:
  """A registered experiment with Model Garden overrides, checked, locked.

  Args:
    experiment: a registered experiment name.
    params_override: yaml string or 'a.b=c,...' (applied last).
    mode: the mode it will run in, for `validation.validate_experiment`.
    config_files: yaml files applied in order before `params_override`
      (train.py's --config_file).

  Raises:
    errors.UserError: an unknown experiment, an override with an unknown
      key or unparsable value, or an invalid config (every key named).
  """
  check_experiment_name(experiment)
  params = exp_factory.get_exp_config(experiment)
  for path in config_files or ():
    with errors.reraise_as_user_error(CONFIG_ERRORS,
                                      f'invalid config file {path}: '):
      if not tf.io.gfile.exists(path):
        raise errors.UserError(f'config file {path}: no such file.')
      params = hyperparams.override_params_dict(params, path, is_strict=True)
  with errors.reraise_as_user_error(CONFIG_ERRORS,
                                    'invalid params_override: '):
    if params_override:
      params = hyperparams.override_params_dict(params, params_override,
                                                is_strict=True)
    params.validate()
  check_config(params, mode)
  params.lock()
  return params


def _flatten(value: Any, prefix: str = '') -> Dict[str, Any]:
  """{'a.b[0].c': leaf} of nested dicts / lists (tuples read as lists)."""
  if isinstance(value, Mapping):
    out = {}
    for key, item in value.items():
      out.update(_flatten(item, f'{prefix}.{key}' if prefix else str(key)))
    return out
  if isinstance(value, (list, tuple)) and any(
      isinstance(v, (Mapping, list, tuple)) for v in value):
    out = {}
    for i, item in enumerate(value):
      out.update(_flatten(item, f'{prefix}[{i}]'))
    return out
  return {prefix: list(value) if isinstance(value, tuple) else value}


def is_model_key(key: str) -> bool:
  """Whether a flat config key changes the model or the data shape."""
  if key.startswith(MODEL_KEY_PREFIXES):
    return True
  return any(key.startswith(d) and key[len(d):].split('[')[0] in
             DATA_SHAPE_FIELDS for d in DATA_CONFIGS)


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]
                       ) -> List[Tuple[str, Any, Any]]:
  """(key, old value, new value) of every differing leaf, sorted by key."""
  missing = '(absent)'
  old, new = _flatten(old), _flatten(new)
  return [(k, old.get(k, missing), new.get(k, missing))
          for k in sorted(set(old) | set(new))
          if old.get(k, missing) != new.get(k, missing)]


def check_resume(params: cfg.ExperimentConfig, model_dir: str,
                 allow_config_change: bool = False) -> None:
  """Refuses to resume a checkpoint whose model differs from `params`'.

  Args:
    params: the config of this run.
    model_dir: the run's model_dir.
    allow_config_change: resume anyway (the differing keys are logged).

  Raises:
    errors.UserError: `model_dir` has a checkpoint and a params.yaml that
      differs in a key that changes the model or the data shape; the message
      lists them.
  """
  path = os.path.join(model_dir, PARAMS_FILE)
  if not (tf.io.gfile.exists(path) and tf.train.latest_checkpoint(model_dir)):
    return
  saved = hyperparams.read_yaml_to_params_dict(path).as_dict()
  changes = config_differences(saved, params.as_dict())
  model_changes = [c for c in changes if is_model_key(c[0])]
  if model_changes and not allow_config_change:
    listing = '\n  '.join(f'{k}: {old!r} (params.yaml) -> {new!r} (this run)'
                          for k, old, new in model_changes)
    raise errors.UserError(
        f'{model_dir} holds a checkpoint of a different model or data shape; '
        f'{path} differs from this run in:\n  {listing}\nUse a new '
        '--model_dir, or pass --allow_config_change to resume anyway.')
  if model_changes:
    logging.warning('allow_config_change: resuming %s although %d model / '
                    'data-shape keys changed: %s', model_dir,
                    len(model_changes), ', '.join(c[0] for c in model_changes))
  for key, old, new in changes:
    logging.info('Resuming %s with a changed setting: %s: %r -> %r',
                 model_dir, key, old, new)


def remove_temporary_checkpoints(model_dir: str) -> List[str]:
  """Deletes `ckpt-N_temp/` folders (in model_dir and one level below).

  A process killed while `tf.train.Checkpoint` writes `ckpt-N` leaves
  `ckpt-N_temp/`; the checkpoint itself was never completed, so resuming
  uses the previous one and the folder is garbage.

  Returns:
    The removed folders.
  """
  def subfolders(folder):
    if not tf.io.gfile.isdir(folder):
      return []
    return [os.path.join(folder, name.rstrip('/'))
            for name in sorted(tf.io.gfile.listdir(folder))
            if tf.io.gfile.isdir(os.path.join(folder, name))]

  removed = []
  for folder in subfolders(model_dir):
    for candidate in [folder] + subfolders(folder):
      if _TEMP_CHECKPOINT.match(os.path.basename(candidate)):
        try:
          tf.io.gfile.rmtree(candidate)
        except tf.errors.NotFoundError:  # Another worker removed it.
          continue
        removed.append(candidate)
        logging.warning('Removed %s: a checkpoint write that did not finish '
                        '(the process was killed while saving).', candidate)
  return removed


def write_params(params: cfg.ExperimentConfig, model_dir: str) -> str:
  """Writes `<model_dir>/params.yaml` through a temporary file.

  The temporary file is this process's own: the workers of a multi-worker
  run write the same params.yaml at the same time.
  """
  tf.io.gfile.makedirs(model_dir)
  path = os.path.join(model_dir, PARAMS_FILE)
  temp = f'{path}.tmp-{socket.gethostname()}-{os.getpid()}'
  hyperparams.save_params_dict_to_yaml(params, temp)
  tf.io.gfile.rename(temp, path, overwrite=True)
  logging.info('Saved the experiment configuration to %s', path)
  return path


def prepare_model_dir(params: cfg.ExperimentConfig, mode: str,
                      model_dir: str,
                      allow_config_change: bool = False) -> None:
  """Validates, checks the resume, then cleans and writes (module doc).

  Raises:
    errors.UserError: an invalid config (every offending key named), or a
      resume into a checkpoint of a different model; nothing was written.
  """
  if not model_dir:
    raise errors.UserError('model_dir is required (checkpoints, summaries, '
                           'params.yaml).')
  check_config(params, mode)
  check_resume(params, model_dir, allow_config_change)
  if mode in validation.TRAIN_MODES:
    remove_temporary_checkpoints(model_dir)
    write_params(params, model_dir)


def check_mixed_precision_kernels(runtime: cfg.RuntimeConfig) -> None:
  """Stops a bfloat16 run on a CPU that cannot run it, with what to do.

  Only when the model would run on the host CPU: no TPU strategy and no
  visible GPU (`cpu_kernels.bfloat16_cpu_problem`).

  Raises:
    errors.UserError: runtime.mixed_precision_dtype=bfloat16 and this CPU's
      oneDNN kernels have no bfloat16 convolution.
  """
  if runtime.mixed_precision_dtype != 'bfloat16':
    return
  if (runtime.distribution_strategy == 'tpu' or
      tf.config.list_physical_devices('GPU')):
    return
  problem = cpu_kernels.bfloat16_cpu_problem()
  if problem:
    raise errors.UserError(f'runtime.mixed_precision_dtype=bfloat16: {problem}')


def run(params: cfg.ExperimentConfig, mode: str, model_dir: str,
        allow_config_change: bool = False,
        count_flops: Optional[bool] = None) -> Mapping[str, Any]:
  """Runs a resolved experiment config as `train.py` does; returns eval logs.

  `prepare_model_dir` first (validation, resume check, clean-up,
  params.yaml); then sets the mixed-precision policy, builds the strategy of
  `params.runtime` and the task inside its scope.

  Args:
    params: the experiment config after every override.
    mode: a Model Garden mode (train, eval, train_and_eval, ...).
    model_dir: checkpoints, summaries and params.yaml.
    allow_config_change: resume a checkpoint even if the model changed.
    count_flops: log the FLOPs of one clip (None: in training runs that
      start from scratch).

  Returns:
    The last evaluation logs ({} if nothing was evaluated).

  Raises:
    errors.UserError: see `prepare_model_dir`.
  """
  prepare_model_dir(params, mode, model_dir, allow_config_change)
  logging.info('Final experiment parameters:\n%s',
               pprint.pformat(params.as_dict()))
  check_mixed_precision_kernels(params.runtime)
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
