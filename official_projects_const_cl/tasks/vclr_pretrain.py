"""VCLR pretraining task (Kuang et al. ICCV 2021, §3, appendix A.1).

The loss is the unweighted sum of the enabled terms of `losses.vclr`
(video-level, inter-frame, intra-frame, temporal order) on the outputs of
`modeling.vclr_model.VclrModel`, with in-batch negatives gathered over
replicas; each replica minimizes its loss divided by the number of replicas
(the optimizer sums the gradients), as `tasks/pretrain.py`. Validation
reports the same terms on held-out videos (the anchor tuple is then the
centered clip of each segment, `Parser._parse_vclr`).
"""

from typing import Any, Dict, List, Mapping, Optional

import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import task_factory
from official_projects_const_cl.configs import const_cl as const_cl_cfg
from official_projects_const_cl.configs import vclr as vclr_cfg
from official_projects_const_cl.dataloaders import pretrain_input
from official_projects_const_cl.losses import vclr
from official_projects_const_cl.modeling import vclr_model
from official_projects_const_cl.tasks import gradient_step
from official_projects_const_cl.tasks import pretrain

TERMS = ('video', 'inter', 'intra', 'order')
LOSS_KEYS = ('total_loss',) + tuple(f'{t}_loss' for t in TERMS) + tuple(
    f'{t}_accuracy' for t in TERMS)


def model_inputs(features: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """The model's inputs from a batch of the 'vclr_segments' parser."""
  missing = [k for k in ('anchor', 'positive', 'anchor_second_view',
                         'order_permutation') if k not in features]
  if missing:
    raise KeyError(f'VCLR features lack {missing} (clip_sampling must be '
                   f"'vclr_segments'); got keys {sorted(features)}.")
  return {
      vclr_model.ANCHOR: features['anchor'],
      vclr_model.POSITIVE: features['positive'],
      vclr_model.ANCHOR_SECOND_VIEW: features['anchor_second_view'],
      vclr_model.ANCHOR_SLOT: vclr_model.anchor_slot(
          features['order_permutation']),
  }


@task_factory.register_task_cls(vclr_cfg.VclrPretrainTask)
class VclrPretrainTask(base_task.Task):
  """Self-supervised VCLR pretraining with the four VCLR terms."""

  # ------------------------------------------------------------------ model
  def build_model(self) -> tf_keras.Model:
    """The backbone and heads of `task.model`, every weight created."""
    shape = list(self.task_config.train_data.feature_shape)
    input_specs = tf_keras.layers.InputSpec(shape=[None] + shape)
    l2_regularizer = gradient_step.weight_decay_regularizer(
        self.task_config.losses.l2_weight_decay)
    model = vclr_model.build_vclr_model(
        input_specs, self.task_config.model,
        num_clips=self.task_config.train_data.vclr_num_segments,
        l2_regularizer=l2_regularizer)
    # Every weight exists before the first step: the optimizer's slots can
    # then be created outside the training function, which is traced once
    # (experiment_runner.run_experiment).
    model.build_heads()
    return model

  def initialize(self, model: tf_keras.Model):
    """Restores the backbone from `init_checkpoint`; fails if nothing fits."""
    pretrain.restore_backbone(model, self.task_config.init_checkpoint)

  # ------------------------------------------------------------------ data
  def build_inputs(self, params: const_cl_cfg.DataConfig,
                   input_context: Optional[tf.distribute.InputContext] = None
                   ) -> tf.data.Dataset:
    """Anchor and positive segment tuples (`clip_sampling='vclr_segments'`)."""
    if params.clip_sampling != 'vclr_segments':
      raise ValueError("VCLR data needs clip_sampling='vclr_segments', got "
                       f'{params.clip_sampling!r}.')
    return pretrain_input.build_pretrain_dataset(params, input_context)

  # ---------------------------------------------------------------- losses
  def compute_losses(self, model_outputs: Mapping[str, tf.Tensor],
                     order_labels: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Every term and its accuracy (float32), `vclr.vclr_loss`'s dict."""
    cfg = self.task_config.losses
    if cfg.negatives != 'in_batch':
      raise ValueError("task.losses.negatives must be 'in_batch' (the "
                       'momentum queue is not implemented), got '
                       f'{cfg.negatives!r}.')
    inputs = {k: model_outputs[k] for k in vclr_model.LOSS_INPUTS}
    return vclr.vclr_loss(
        **inputs, order_labels=order_labels,
        use_video=cfg.use_video, use_inter=cfg.use_inter,
        use_intra=cfg.use_intra, use_order=cfg.use_order,
        video_temperature=cfg.video_temperature,
        inter_temperature=cfg.inter_temperature,
        intra_temperature=cfg.intra_temperature,
        intra_separate_negatives=cfg.intra_separate_negatives)

  def build_losses(self, labels: Any, model_outputs: Mapping[str, tf.Tensor],
                   aux_losses: Optional[List[tf.Tensor]] = None) -> tf.Tensor:
    """Total loss (`labels`: the order labels) plus regularization."""
    loss = self.compute_losses(model_outputs, labels)['total_loss']
    if aux_losses:
      loss += tf.add_n([tf.cast(l, tf.float32) for l in aux_losses])
    return loss

  def build_metrics(self, training: bool = True):
    metrics = [tf_keras.metrics.Mean(k, dtype=tf.float32) for k in LOSS_KEYS]
    metrics += [tf_keras.metrics.Sum(name, dtype=tf.float32)
                for name in ('corrupt_frames', 'skipped_videos')]
    return metrics

  def _update_metrics(self, metrics, terms, features):
    counts = {'corrupt_frames': features.get('num_corrupt_frames', 0),
              'skipped_videos': features.get('skipped_videos', 0)}
    for m in metrics or []:
      if m.name in counts:
        m.update_state(tf.cast(tf.reduce_sum(counts[m.name]), tf.float32))
      elif m.name in terms:
        m.update_state(terms[m.name])

  # ----------------------------------------------------------------- steps
  def train_step(self, inputs, model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer, metrics=None):
    """Forward, losses (divided by the replica count), backward."""
    features = inputs
    with tf.GradientTape() as tape:
      outputs = model(model_inputs(features), training=True)
      terms = self.compute_losses(outputs, features['order_label'])
      reg = (tf.add_n([tf.cast(l, tf.float32) for l in model.losses])
             if model.losses else tf.constant(0.0))
      loss = terms['total_loss'] + reg
      # Gradients are summed over replicas by the optimizer.
      scaled_loss = gradient_step.scale_loss(loss, optimizer)
    gradient_step.apply_gradients(tape, scaled_loss, model, optimizer)
    self._update_metrics(metrics, terms, features)
    return {self.loss: loss}

  def validation_step(self, inputs, model: tf_keras.Model, metrics=None):
    """The same terms on held-out videos (no regularization)."""
    features = inputs
    outputs = model(model_inputs(features), training=False)
    terms = self.compute_losses(outputs, features['order_label'])
    self._update_metrics(metrics, terms, features)
    return {self.loss: terms['total_loss']}
