"""A pretraining experiment's model, restored from its checkpoint.

The shared loading path of the tools that use a pretrained network as it was
trained (export, feature extraction, attention maps): the model is built by
the pretraining task from the experiment config, then restored with the
checked loading of `modeling/checkpoint_loading.py` (every variable compared
by key and shape; a mismatch fails with the listing) -- the backbone alone
(`backbone/` item of the checkpoint) or the whole model with its heads
(`model/`).
"""

from typing import Optional, Tuple

import tf_keras

from official.core import config_definitions as cfg
from official_projects_const_cl import errors
from official_projects_const_cl.configs import const_cl as const_cl_cfg
from official_projects_const_cl.modeling import checkpoint_loading
from official_projects_const_cl.tasks import pretrain

# What a bad --checkpoint raises (user errors of the tools).
CHECKPOINT_ERRORS = (FileNotFoundError,
                     checkpoint_loading.CheckpointMismatchError)


def clip_shape(params: cfg.ExperimentConfig) -> Tuple[int, int, int]:
  """(T, H, W) of the experiment's training clips (the model's input)."""
  t, h, w = params.task.train_data.feature_shape[:3]
  return int(t), int(h), int(w)


def build_pretrained_model(
    params: cfg.ExperimentConfig, checkpoint: Optional[str],
    with_heads: bool = False
) -> Tuple[tf_keras.Model, Optional[checkpoint_loading.RestoreReport]]:
  """Builds the pretraining model of `params` and restores it.

  Args:
    params: a pretraining experiment config (`ConstClPretrainTask`).
    checkpoint: a pretraining model_dir or checkpoint prefix; None or ''
      keeps the random initialization.
    with_heads: restore the heads too (`model/` of the checkpoint), not
      only the backbone.

  Returns:
    (the `ConstClModel`, the restore report or None).

  Raises:
    errors.UserError: `params` is not a pretraining experiment, there is no
      checkpoint at `checkpoint`, or it does not fit (variables listed).
  """
  if not isinstance(params.task, const_cl_cfg.ConstClPretrainTask):
    raise errors.UserError(
        'the experiment must be a pretraining experiment (e.g. '
        'const_cl_pretrain_demo, const_cl_pretrain_k400); its task is '
        f'{type(params.task).__name__}.')
  with errors.reraise_as_user_error((ValueError,), 'invalid model config: '):
    model = pretrain.ConstClPretrainTask(params.task).build_model()
  if not checkpoint:
    return model, None
  with errors.reraise_as_user_error(CHECKPOINT_ERRORS, '--checkpoint: '):
    if with_heads:
      report = checkpoint_loading.restore_model(model, checkpoint)
    else:
      report = checkpoint_loading.restore_pretrained_backbone(
          model.backbone, checkpoint,
          branch_res5=model.backbone.branch_res5)
  return model, report
