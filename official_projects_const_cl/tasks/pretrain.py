"""ConST-CL / CVRL pretraining task (paper §3, §4.1).

One task serves both methods: with `model.use_region_loss` the loss is
L = Lg + w Lr (global InfoNCE on res5_g + contextualized region InfoNCE on
res5_r, paper eq. 6); without it, CVRL's global InfoNCE alone. Validation
reports the same losses on held-out videos and a kNN top-1 of the global
features (validation videos classified by their neighbours among training
videos).
"""

from typing import Any, Dict, List, Mapping, Optional

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import task_factory
from official.vision.modeling import factory_3d
from official_projects_const_cl.configs import const_cl as const_cl_cfg
from official_projects_const_cl.dataloaders import pretrain_input
from official_projects_const_cl.evaluation import knn
from official_projects_const_cl.losses import contrastive
from official_projects_const_cl.ops import temporal
from official_projects_const_cl.tasks import gradient_step

_LOSS_KEYS = ('total_loss', 'global_loss', 'region_loss', 'global_accuracy',
              'region_accuracy')


def to_view_major(features: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """[B, 2, ...] per-example views -> [2B, ...] (all view a, then view b)."""
  out = {}
  for key in ('image', 'boxes', 'boxes_mask'):
    if key in features:
      x = features[key]
      out[key] = tf.concat([x[:, 0], x[:, 1]], axis=0)
  return out


def restore_backbone(model: tf_keras.Model, path: str) -> None:
  """Restores `model.backbone` from a checkpoint or model_dir ('' : no-op).

  The `initialize` of the pretraining tasks (ConST-CL, CVRL, VCLR).

  Raises:
    FileNotFoundError: `path` is a folder without a checkpoint.
    AssertionError: a backbone variable has no value in the checkpoint.
  """
  if not path:
    return
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise FileNotFoundError(f'init_checkpoint {path!r} holds no checkpoint.')
    path = latest
  ckpt = tf.train.Checkpoint(backbone=model.backbone)
  status = ckpt.read(path)
  status.expect_partial().assert_existing_objects_matched()
  logging.info('Restored the backbone from %s.', path)


@task_factory.register_task_cls(const_cl_cfg.ConstClPretrainTask)
class ConstClPretrainTask(base_task.Task):
  """Self-supervised pretraining with global and region InfoNCE losses."""

  # ------------------------------------------------------------------ model
  def _num_feature_frames(self) -> int:
    return self.task_config.num_feature_frames()

  def build_model(self) -> tf_keras.Model:
    """Builds the two-branch model from `task.model`."""
    model_cfg = self.task_config.model
    if self.task_config.temporal_sampling not in (
        const_cl_cfg.TEMPORAL_SAMPLINGS):
      raise ValueError('task.temporal_sampling must be one of '
                       f'{const_cl_cfg.TEMPORAL_SAMPLINGS}, got '
                       f'{self.task_config.temporal_sampling!r}.')
    if model_cfg.use_region_loss and model_cfg.context_length > (
        self._num_feature_frames()):
      raise ValueError(
          f'task.model.context_length={model_cfg.context_length} exceeds the '
          f'{self._num_feature_frames()} frames of the local feature map '
          f'(feature_shape[0]={self.task_config.train_data.feature_shape[0]}'
          ' divided by the stem temporal strides); context frames must be '
          'distinct.')
    shape = list(self.task_config.train_data.feature_shape)
    input_specs = tf_keras.layers.InputSpec(shape=[None] + shape)
    l2_regularizer = gradient_step.weight_decay_regularizer(
        self.task_config.losses.l2_weight_decay)
    model = factory_3d.build_model(
        model_cfg.model_type, input_specs=input_specs, model_config=model_cfg,
        num_classes=self.task_config.train_data.num_classes,
        l2_regularizer=l2_regularizer)
    # Every weight exists before the first step: the optimizer's slots can
    # then be created outside the training function, which is traced once
    # (experiment_runner.run_experiment).
    model.build_heads()
    return model

  def initialize(self, model: tf_keras.Model):
    """Restores the backbone from `init_checkpoint`; fails if nothing fits."""
    restore_backbone(model, self.task_config.init_checkpoint)

  # ------------------------------------------------------------------ data
  def build_inputs(self, params: const_cl_cfg.DataConfig,
                   input_context: Optional[tf.distribute.InputContext] = None
                   ) -> tf.data.Dataset:
    """Two-view clips; for validation with kNN, bank videos then queries."""
    if (not params.is_training and self.task_config.knn.enabled and
        params.knn_bank_input_path):
      return pretrain_input.build_knn_dataset(params, input_context)
    return pretrain_input.build_pretrain_dataset(params, input_context)

  # ---------------------------------------------------------------- losses
  def _model_inputs(self, features: Mapping[str, tf.Tensor]
                    ) -> Dict[str, tf.Tensor]:
    inputs = to_view_major(features)
    if self.task_config.model.use_region_loss:
      inputs['region_time_index'] = temporal.region_time_indices(
          features['frame_index'], self._num_feature_frames(),
          self.task_config.temporal_sampling)
    return inputs

  def compute_losses(self, model_outputs: Mapping[str, tf.Tensor],
                     anchor_weights: Optional[tf.Tensor] = None
                     ) -> Dict[str, tf.Tensor]:
    """All loss terms and diagnostics (float32) for a view-major batch.

    Args:
      model_outputs: the model's outputs for [2B, ...] view-major inputs.
      anchor_weights: optional [B] float weights of the videos as anchors
        (global clips and source regions); every video remains a negative.

    Returns:
      Dict with total/global/region losses and accuracies.
    """
    losses_cfg = self.task_config.losses
    emb = tf.cast(model_outputs['global_embeddings'], tf.float32)
    emb_a, emb_b = tf.split(emb, 2, axis=0)
    global_out = contrastive.global_infonce(
        emb_a, emb_b, temperature=losses_cfg.global_temperature,
        anchor_weights=anchor_weights)
    if not self.task_config.model.use_region_loss:
      zero = tf.constant(0.0, tf.float32)
      return {'total_loss': global_out['loss'],
              'global_loss': global_out['loss'],
              'region_loss': zero,
              'global_accuracy': global_out['accuracy'],
              'region_accuracy': zero}
    split = lambda k: tf.split(tf.cast(model_outputs[k], tf.float32), 2, 0)
    pred_a, pred_b = split('region_predictions')
    tgt_a, tgt_b = split('region_targets')
    h_a, h_b = split('region_features')
    m_a, m_b = split('region_mask')
    q_a, q_b = m_a, m_b
    if anchor_weights is not None:
      w = tf.cast(anchor_weights, tf.float32)[:, None]
      q_a, q_b = m_a * w, m_b * w
    t = losses_cfg.region_temperature
    a2b = contrastive.instance_infonce(pred_a, tgt_b, h_a, h_b, q_a, m_b, t)
    b2a = contrastive.instance_infonce(pred_b, tgt_a, h_b, h_a, q_b, m_a, t)
    return contrastive.const_cl_loss(global_out, a2b, b2a,
                                     region_weight=losses_cfg.region_weight)

  def build_losses(self, labels: Any, model_outputs: Mapping[str, tf.Tensor],
                   aux_losses: Optional[List[tf.Tensor]] = None) -> tf.Tensor:
    """Total loss: Lg + w Lr plus regularization (`aux_losses`)."""
    del labels
    loss = self.compute_losses(model_outputs)['total_loss']
    if aux_losses:
      loss += tf.add_n([tf.cast(l, tf.float32) for l in aux_losses])
    return loss

  def build_metrics(self, training: bool = True):
    metrics = [tf_keras.metrics.Mean(k, dtype=tf.float32) for k in _LOSS_KEYS]
    metrics += [tf_keras.metrics.Sum(name, dtype=tf.float32)
                for name in ('corrupt_frames', 'skipped_videos')]
    return metrics

  def _update_metrics(self, metrics, terms, features, weight=None):
    counts = {'corrupt_frames': features.get('num_corrupt_frames', 0),
              'skipped_videos': features.get('skipped_videos', 0)}
    for m in metrics or []:
      if m.name in counts:
        m.update_state(tf.cast(tf.reduce_sum(counts[m.name]), tf.float32))
      elif m.name in terms:
        m.update_state(terms[m.name], sample_weight=weight)

  # ----------------------------------------------------------------- steps
  def train_step(self, inputs, model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer, metrics=None):
    """Forward, losses (divided by the replica count), backward."""
    features = inputs
    with tf.GradientTape() as tape:
      outputs = model(self._model_inputs(features), training=True)
      terms = self.compute_losses(outputs)
      reg = (tf.add_n([tf.cast(l, tf.float32) for l in model.losses])
             if model.losses else tf.constant(0.0))
      loss = terms['total_loss'] + reg
      # Gradients are summed over replicas by the optimizer.
      scaled_loss = gradient_step.scale_loss(loss, optimizer)
    gradient_step.apply_gradients(tape, scaled_loss, model, optimizer)
    self._update_metrics(metrics, terms, features)
    return {self.loss: loss}

  def validation_step(self, inputs, model: tf_keras.Model, metrics=None):
    """Losses on held-out videos and global features for the kNN probe."""
    features = inputs
    outputs = model(self._model_inputs(features), training=False)
    batch = tf.shape(features['image'])[0]
    is_query = features.get('is_query', tf.ones([batch], tf.bool))
    query_weights = tf.cast(is_query, tf.float32)
    # Losses score validation videos only; the kNN bank's training videos in
    # the same batch act as negatives. Weights, not masks or conditionals,
    # so every replica runs the same collectives.
    terms = self.compute_losses(outputs, anchor_weights=query_weights)
    self._update_metrics(metrics, terms, features,
                         tf.reduce_sum(query_weights))
    return {
        'knn_features': outputs['global_features'][:batch],
        'knn_labels': features['label'],
        'knn_is_query': is_query,
    }

  def aggregate_logs(self, state=None, step_outputs=None):
    if state is None:
      state = knn.KnnEvaluator(
          num_classes=self.task_config.validation_data.num_classes,
          num_neighbors=self.task_config.knn.num_neighbors,
          temperature=self.task_config.knn.temperature)
    if step_outputs:
      state.update(knn.merge_replica_values(step_outputs['knn_features']),
                   knn.merge_replica_values(step_outputs['knn_labels']),
                   knn.merge_replica_values(step_outputs['knn_is_query']))
    return state

  def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
    if aggregated_logs is None:
      return {}
    results = aggregated_logs.result()
    if 'knn_top1' in results:
      logging.info('kNN top-1 %.4f (%d queries, %d bank videos)',
                   results['knn_top1'], results['knn_num_queries'],
                   results['knn_num_bank'])
    return {k: np.float32(v) for k, v in results.items()}
