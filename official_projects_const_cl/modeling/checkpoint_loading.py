"""Initializing downstream backbones from pretraining checkpoints.

A pretraining checkpoint (written by Model Garden's trainer) stores the
backbone at the top level as `backbone/...` (the model's `checkpoint_items`).
Keras names a functional model's layers POSITIONALLY in checkpoints
(`backbone/layer_with_weights-12/...`), so restoring into a backbone of a
different structure can "succeed" with the wrong tensors: a single-res5
backbone restored from a two-branch ("Y") checkpoint receives a mixture of
the `res5_g` and `res5_r` layers without any error from TensorFlow. This
module therefore

1. checks the checkpoint against the expected structure variable by variable
   (key and shape) and fails with the lists of missing, mismatched and unused
   variables -- plus a hint when the other res5 layout would fit;
2. restores into a backbone of exactly the pretraining structure;
3. moves the chosen res5 branch into the single `res5` of the downstream
   backbone by layer name (`resnet_3d_y.transfer_backbone_weights`).
"""

import dataclasses
import re
from typing import Dict, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras

from official_projects_const_cl.modeling import variable_paths
from official_projects_const_cl.modeling.backbones import resnet_3d_y

_VALUE_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE'
_MAX_LISTED = 20


class CheckpointMismatchError(ValueError):
  """A checkpoint does not fit the backbone it is restored into."""


@dataclasses.dataclass
class RestoreReport:
  """What `restore_pretrained_backbone` loaded."""
  checkpoint: str
  step: Optional[int]
  num_variables: int
  num_parameters: int
  res5_branch: Optional[str]
  unused_layers: Tuple[str, ...] = ()
  restored: str = 'backbone'  # What was restored: 'backbone' or 'model'.

  def summary(self) -> str:
    step = '' if self.step is None else f' (step {self.step})'
    text = (f'Restored {self.num_variables} {self.restored} variables '
            f'({self.num_parameters:,} values) from {self.checkpoint}{step}')
    if self.res5_branch:
      text += f'; res5 <- pretrained {self.res5_branch}'
    if self.unused_layers:
      text += (f'; not used downstream: {len(self.unused_layers)} layers '
               f'({", ".join(sorted(set(_group(self.unused_layers))))})')
    return text + '.'


def _group(layer_names: Tuple[str, ...]) -> List[str]:
  return [re.sub(r'_block_\d+$', '', name) for name in layer_names]


def resolve_checkpoint(path: str) -> str:
  """A model_dir (its latest checkpoint) or checkpoint prefix -> prefix.

  Raises:
    FileNotFoundError: naming `path`, if it holds no checkpoint.
  """
  if not path:
    raise FileNotFoundError('init_checkpoint is empty.')
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise FileNotFoundError(
          f'init_checkpoint {path!r} is a directory without a checkpoint '
          "(no 'checkpoint' file naming one); give a pretraining model_dir "
          'or a checkpoint prefix such as model_dir/ckpt-200000.')
    return latest
  if tf.io.gfile.exists(path + '.index'):
    return path
  if path.endswith('.index') and tf.io.gfile.exists(path):
    return path[:-len('.index')]
  raise FileNotFoundError(
      f'init_checkpoint {path!r} is neither a directory with checkpoints nor '
      f'a checkpoint prefix (no {path + ".index"!r}).')


def variable_keys(model: tf.Module, prefix: str) -> Dict[str, tf.Variable]:
  """The checkpoint key of every variable of `model` saved as `prefix`.

  e.g. 'backbone/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE'.
  """
  return {path + _VALUE_SUFFIX: var for path, var in
          variable_paths.variable_paths(model, prefix).items()}


def checkpoint_variables(checkpoint: str,
                         prefix: str = 'backbone') -> Dict[str, List[int]]:
  """{key: shape} of the model variables saved under `prefix/`."""
  shapes = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
  return {k: shape for k, shape in shapes.items()
          if k.startswith(prefix + '/') and k.endswith(_VALUE_SUFFIX) and
          '.OPTIMIZER_SLOT' not in k}


def _checkpoint_step(checkpoint: str) -> Optional[int]:
  reader = tf.train.load_checkpoint(checkpoint)
  key = 'global_step' + _VALUE_SUFFIX
  if reader.has_tensor(key):
    return int(reader.get_tensor(key))
  return None


def compare(model: tf.Module, saved: Dict[str, List[int]],
            prefix: str = 'backbone') -> Dict[str, List[str]]:
  """Differences between `model`'s variables and saved {key: shape}.

  Returns:
    'missing': model variables absent from the checkpoint;
    'shape': model variables whose saved shape differs;
    'unused': checkpoint keys no model variable takes.
  """
  return _differences(variable_keys(model, prefix), saved)


def _differences(expected: Dict[str, tf.Variable],
                 saved: Dict[str, List[int]]) -> Dict[str, List[str]]:
  """`compare` of expected {key: variable} and saved {key: shape}."""
  missing, shape = [], []
  for key, var in expected.items():
    if key not in saved:
      missing.append(var.name)
    elif list(saved[key]) != list(var.shape):
      shape.append(f'{var.name}: model {list(var.shape)} vs checkpoint '
                   f'{list(saved[key])}')
  unused = sorted(k[:-len(_VALUE_SUFFIX)] for k in saved if k not in expected)
  return {'missing': missing, 'shape': shape, 'unused': unused}


def _listing(title: str, items: List[str]) -> str:
  if not items:
    return ''
  shown = '\n    '.join(items[:_MAX_LISTED])
  more = (f'\n    ... and {len(items) - _MAX_LISTED} more'
          if len(items) > _MAX_LISTED else '')
  return f'\n  {title} ({len(items)}):\n    {shown}{more}'


def _with_branches(backbone: resnet_3d_y.ResNet3DY,
                   branch_res5: bool) -> resnet_3d_y.ResNet3DY:
  config = backbone.get_config()
  config['branch_res5'] = branch_res5
  config['name'] = f'pretrained_{backbone.name}'
  return resnet_3d_y.ResNet3DY.from_config(config)


def restore_backbone(backbone: tf_keras.Model, checkpoint: str,
                     description: str = 'the backbone') -> int:
  """Restores `backbone` from `checkpoint/backbone`, all or nothing.

  Args:
    backbone: a built backbone of exactly the checkpoint's structure.
    checkpoint: a checkpoint prefix.
    description: how errors name the backbone.

  Returns:
    The number of restored variables.

  Raises:
    CheckpointMismatchError: listing missing / mismatched / unused variables.
  """
  saved = checkpoint_variables(checkpoint)
  if not saved:
    raise CheckpointMismatchError(
        f'{checkpoint} has no backbone variables (no "backbone/..." entries);'
        ' init_checkpoint must be a checkpoint written by a pretraining (or '
        'downstream) run of this project.')
  diff = compare(backbone, saved)
  if any(diff.values()):
    raise CheckpointMismatchError(
        f'{checkpoint} does not fit {description}: it holds {len(saved)} '
        f'backbone variables, the model has {len(backbone.weights)}.' +
        _listing('model variables missing from the checkpoint',
                 diff['missing']) +
        _listing('shape mismatches', diff['shape']) +
        _listing('checkpoint variables the model does not have',
                 diff['unused']))
  status = tf.train.Checkpoint(backbone=backbone).read(checkpoint)
  status.expect_partial().assert_existing_objects_matched()
  return len(backbone.weights)


def restore_model(model: tf_keras.Model, init_checkpoint: str) -> RestoreReport:
  """Restores a whole pretraining model (backbone and heads), all or nothing.

  The trainer saves `tf.train.Checkpoint(model=model, **checkpoint_items)`:
  the backbone's variables under `backbone/` (its shortest path), the heads'
  under `model/`. Every model variable must be there with its shape.

  Args:
    model: a built pretraining model of the checkpoint's structure
      (`ConstClModel.build_heads()` creates the head weights).
    init_checkpoint: a pretraining model_dir or checkpoint prefix.

  Returns:
    A `RestoreReport` (also logged).

  Raises:
    FileNotFoundError: no checkpoint at `init_checkpoint`.
    CheckpointMismatchError: listing missing / mismatched / unused variables.
  """
  checkpoint = resolve_checkpoint(init_checkpoint)
  items = dict(getattr(model, 'checkpoint_items', {}))
  root = tf.train.Checkpoint(model=model, **items)
  saved = {}
  for prefix in ['model'] + sorted(items):
    saved.update(checkpoint_variables(checkpoint, prefix=prefix))
  if not saved:
    raise CheckpointMismatchError(
        f'{checkpoint} has no model variables (no "model/..." entries); it '
        'must be a checkpoint written by a pretraining run of this project.')
  diff = _differences(variable_keys(root, ''), saved)
  if any(diff.values()):
    raise CheckpointMismatchError(
        f'{checkpoint} does not fit the pretraining model of this experiment:'
        f' it holds {len(saved)} model variables, the model has '
        f'{len(model.weights)}.' +
        _listing('model variables missing from the checkpoint',
                 diff['missing']) +
        _listing('shape mismatches', diff['shape']) +
        _listing('checkpoint variables the model does not have',
                 diff['unused']))
  status = root.read(checkpoint)
  status.expect_partial().assert_existing_objects_matched()
  report = RestoreReport(
      checkpoint=checkpoint, step=_checkpoint_step(checkpoint),
      num_variables=len(model.weights),
      num_parameters=int(sum(np.prod(w.shape) for w in model.weights)),
      res5_branch=None, restored='model')
  logging.info('%s', report.summary())
  return report


def restore_pretrained_backbone(backbone: tf_keras.Model, init_checkpoint: str,
                                branch_res5: bool = True,
                                res5_branch: str = 'res5_g'
                               ) -> RestoreReport:
  """Fills a downstream backbone from a pretraining checkpoint.

  Args:
    backbone: the downstream backbone (a single-res5 `ResNet3DY`, or any
      backbone of exactly the checkpoint's structure).
    init_checkpoint: a pretraining model_dir or checkpoint prefix.
    branch_res5: whether the PRETRAINED backbone has res5_g / res5_r
      (ConST-CL) rather than one res5 (CVRL); only for `ResNet3DY`.
    res5_branch: which pretrained branch fills the downstream `res5`.

  Returns:
    A `RestoreReport` (also logged).

  Raises:
    FileNotFoundError: no checkpoint at `init_checkpoint`.
    CheckpointMismatchError: the checkpoint does not fit (lists variables).
  """
  checkpoint = resolve_checkpoint(init_checkpoint)
  transfer = (isinstance(backbone, resnet_3d_y.ResNet3DY) and
              not backbone.branch_res5 and branch_res5)
  source = _with_branches(backbone, True) if transfer else backbone
  layout = ('two-branch res5 (res5_g, res5_r; ConST-CL)' if transfer or (
      isinstance(backbone, resnet_3d_y.ResNet3DY) and backbone.branch_res5)
            else 'single res5 (CVRL)')
  try:
    num_variables = restore_backbone(
        source, checkpoint, description=f'a backbone with a {layout}')
  except CheckpointMismatchError as e:
    hint = ''
    if isinstance(backbone, resnet_3d_y.ResNet3DY):
      other = _with_branches(backbone, not (transfer or backbone.branch_res5))
      if not any(compare(other, checkpoint_variables(checkpoint)).values()):
        hint = ('\n  The checkpoint fits the other res5 layout: set '
                'task.model.backbone.resnet_3d_y.branch_res5='
                f'{str(other.branch_res5).lower()}.')
    raise CheckpointMismatchError(str(e) + hint) from None
  unused = ()
  if transfer:
    resnet_3d_y.transfer_backbone_weights(source, backbone, res5_branch)
    other_branch = [b for b in resnet_3d_y.RES5_BRANCHES if b != res5_branch]
    unused = tuple(layer.name for layer in source.layers
                   if layer.weights and
                   layer.name.startswith(tuple(other_branch)))
  report = RestoreReport(
      checkpoint=checkpoint,
      step=_checkpoint_step(checkpoint),
      num_variables=num_variables,
      num_parameters=int(sum(np.prod(w.shape) for w in source.weights)),
      res5_branch=res5_branch if transfer else None,
      unused_layers=unused)
  logging.info('%s', report.summary())
  return report


def initialize_downstream_backbone(backbone: tf_keras.Model,
                                   init_checkpoint: Optional[str],
                                   model_config) -> Optional[RestoreReport]:
  """A downstream task's `initialize`: the configured branch, or nothing.

  Args:
    backbone: the downstream model's backbone.
    init_checkpoint: a pretraining model_dir / checkpoint, or None / ''.
    model_config: a downstream model config with `backbone` (the PRETRAINING
      backbone config) and `res5_branch`.

  Returns:
    The restore report, or None for a random initialization.
  """
  if not init_checkpoint:
    logging.info('No init_checkpoint: the backbone is randomly initialized.')
    return None
  backbone_cfg = model_config.backbone
  branch_res5 = (backbone_cfg.type == 'resnet_3d_y' and
                 backbone_cfg.resnet_3d_y.branch_res5)
  return restore_pretrained_backbone(backbone, init_checkpoint,
                                     branch_res5=branch_res5,
                                     res5_branch=model_config.res5_branch)
