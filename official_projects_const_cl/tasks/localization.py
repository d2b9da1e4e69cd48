"""Spatio-temporal action localization (supplementary §3.2): AVA, AVA-Kinetics.

Trains the action transformer head and the backbone (initialized from the
`res5_r` branch of a pretraining checkpoint) with a sigmoid cross-entropy on
ground-truth person boxes. Validation classifies ground-truth or detected
boxes and reports frame-mAP@0.5 over the evaluated classes by the official
ActivityNet AVA rules (`evaluation/ava_metrics.py`); the scored detections are
also written as an official-format CSV (`<model_dir>/ava_detections.csv`).
"""

import os
from typing import Dict, List, Mapping, Optional, Sequence

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import task_factory
from official_projects_const_cl.configs import localization as loc_cfg
from official_projects_const_cl.dataloaders import ava_io
from official_projects_const_cl.dataloaders import localization_input
from official_projects_const_cl.evaluation import ava_metrics
from official_projects_const_cl.evaluation import knn
from official_projects_const_cl.modeling import action_localizer
from official_projects_const_cl.modeling import checkpoint_loading
from official_projects_const_cl.ops import ava_keyframes
from official_projects_const_cl.tasks import gradient_step

_EVAL_KEYS = ('probabilities', 'boxes', 'boxes_mask', 'gt_boxes', 'gt_labels',
              'gt_mask', 'media_id', 'timestamp')


def masked_sigmoid_loss(labels: tf.Tensor, logits: tf.Tensor,
                        mask: tf.Tensor) -> tf.Tensor:
  """Sigmoid cross-entropy averaged over the (valid box, class) pairs.

  Args:
    labels: [B, N, C] multi-hot.
    logits: [B, N, C].
    mask: [B, N] 1 = real box, 0 = padding.

  Returns:
    Scalar float32 (0 when no box is valid).
  """
  logits = tf.cast(logits, tf.float32)
  per_entry = tf.nn.sigmoid_cross_entropy_with_logits(
      labels=tf.cast(labels, tf.float32), logits=logits)
  mask = tf.cast(mask, tf.float32)
  total = tf.reduce_sum(per_entry * mask[..., None])
  count = tf.reduce_sum(mask) * tf.cast(tf.shape(logits)[-1], tf.float32)
  return tf.math.divide_no_nan(total, count)


class FrameMapAccumulator:
  """Collects ground truth and scored boxes of validation batches."""

  def __init__(self, class_ids: Sequence[int], max_per_keyframe: int):
    self._class_ids = np.asarray(sorted(class_ids), np.int64)
    # Whitelist and 50-row cap applied as rows arrive (bounded memory).
    self._evaluator = ava_metrics.AvaEvaluator(class_ids=self._class_ids.tolist(),
                                           capacity=max_per_keyframe)

  @property
  def evaluator(self) -> 'ava_metrics.AvaEvaluator':
    return self._evaluator

  def update(self, outputs: Mapping[str, np.ndarray]) -> None:
    """Adds one batch (numpy, merged over replicas)."""
    columns = self._class_ids - 1  # Class id k is output column k - 1.
    for i in range(len(outputs['media_id'])):
      key = ava_keyframes.normalize_key(
          (outputs['media_id'][i], outputs['timestamp'][i]))
      gt_valid = outputs['gt_mask'][i] > 0
      gt_boxes = outputs['gt_boxes'][i][gt_valid]
      box_idx, col = np.nonzero(outputs['gt_labels'][i][gt_valid])
      self._evaluator.add_groundtruth(key, gt_boxes[box_idx], col + 1)
      valid = outputs['boxes_mask'][i] > 0
      boxes = outputs['boxes'][i][valid]
      probs = outputs['probabilities'][i][valid][:, columns]  # [n, K]
      n, k = probs.shape
      det_boxes = np.repeat(boxes, k, axis=0)
      det_labels = np.tile(self._class_ids, n)
      det_scores = probs.reshape(-1)
      self._evaluator.add_detections(key, det_boxes, det_labels, det_scores)


@task_factory.register_task_cls(loc_cfg.LocalizationTask)
class LocalizationTask(base_task.Task):
  """Action localization from a pretrained backbone."""

  @property
  def num_classes(self) -> int:
    return self.task_config.train_data.num_classes

  def evaluated_classes(self) -> Dict[int, str]:
    """{class id: name} of the evaluated classes (label map or all ids)."""
    path = self.task_config.evaluation.label_map_path
    if not path:
      return {i: str(i) for i in range(1, self.num_classes + 1)}
    categories, class_ids = ava_io.read_label_map(path)
    too_big = sorted(i for i in class_ids if i > self.num_classes)
    if too_big:
      raise ValueError(
          f'{path}: class ids {too_big} exceed num_classes='
          f'{self.num_classes}; the model scores ids 1..num_classes.')
    return {c['id']: c['name'] for c in categories if c['id'] in class_ids}

  def build_model(self) -> tf_keras.Model:
    data = self.task_config.train_data
    if self.task_config.validation_data.num_classes != data.num_classes:
      raise ValueError(
          'train_data.num_classes and validation_data.num_classes differ '
          f'({data.num_classes} vs '
          f'{self.task_config.validation_data.num_classes}).')
    input_specs = tf_keras.layers.InputSpec(
        shape=[None, data.feature_shape[0], None, None, data.feature_shape[3]])
    l2_regularizer = gradient_step.weight_decay_regularizer(
        self.task_config.losses.l2_weight_decay)
    model = action_localizer.build_action_localizer(
        input_specs, self.task_config.model, self.num_classes, l2_regularizer)
    model.build_heads()  # Traced once: see pretrain.build_model.
    return model

  def initialize(self, model: tf_keras.Model):
    """Fills the backbone from `init_checkpoint` (its res5_r by default)."""
    checkpoint_loading.initialize_downstream_backbone(
        model.backbone, self.task_config.init_checkpoint,
        self.task_config.model)

  def build_inputs(self, params: loc_cfg.LocalizationDataConfig,
                   input_context: Optional[tf.distribute.InputContext] = None
                   ) -> tf.data.Dataset:
    return localization_input.build_localization_dataset(params,
                                                         input_context)

  def build_losses(self, labels: tf.Tensor, model_outputs: tf.Tensor,
                   aux_losses: Optional[List[tf.Tensor]] = None,
                   mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    if mask is None:
      mask = tf.ones(tf.shape(model_outputs)[:2])
    loss = masked_sigmoid_loss(labels, model_outputs, mask)
    if aux_losses:
      loss += tf.add_n([tf.cast(l, tf.float32) for l in aux_losses])
    return loss

  def build_metrics(self, training: bool = True):
    return [tf_keras.metrics.Sum(name, dtype=tf.float32)
            for name in ('num_boxes', 'dropped_boxes', 'corrupt_frames',
                         'skipped_videos')]

  def _update_metrics(self, metrics, inputs):
    values = {'num_boxes': tf.reduce_sum(inputs['boxes_mask']),
              'dropped_boxes': tf.reduce_sum(inputs['num_dropped_boxes']),
              'corrupt_frames': tf.reduce_sum(inputs['num_corrupt_frames']),
              'skipped_videos': tf.reduce_sum(inputs.get('skipped_videos',
                                                         0))}
    for m in metrics or []:
      m.update_state(tf.cast(values[m.name], tf.float32))

  def train_step(self, inputs: Mapping[str, tf.Tensor], model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer, metrics=None
                 ) -> Dict[str, tf.Tensor]:
    with tf.GradientTape() as tape:
      logits = model(inputs, training=True)
      loss = self.build_losses(inputs['labels'], logits, model.losses,
                               mask=inputs['boxes_mask'])
      scaled_loss = gradient_step.scale_loss(loss, optimizer)
    gradient_step.apply_gradients(tape, scaled_loss, model, optimizer)
    self._update_metrics(metrics, inputs)
    return {self.loss: loss}

  def validation_step(self, inputs: Mapping[str, tf.Tensor],
                      model: tf_keras.Model, metrics=None
                      ) -> Dict[str, tf.Tensor]:
    logits = model(inputs, training=False)
    logs = {key: inputs[key] for key in _EVAL_KEYS if key in inputs}
    logs['probabilities'] = tf.sigmoid(logits)
    if self.task_config.validation_data.eval_boxes == 'groundtruth':
      logs[self.loss] = masked_sigmoid_loss(inputs['labels'], logits,
                                            inputs['boxes_mask'])
    self._update_metrics(metrics, inputs)
    return logs

  def aggregate_logs(self, state=None, step_outputs=None):
    if state is None:
      state = FrameMapAccumulator(
          self.evaluated_classes(),
          self.task_config.evaluation.max_detections_per_keyframe)
    if step_outputs:
      state.update({key: knn.merge_replica_values(step_outputs[key])
                    for key in _EVAL_KEYS})
    return state

  def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
    if aggregated_logs is None:
      return {}
    names = self.evaluated_classes()
    eval_cfg = self.task_config.evaluation
    exclusions = (ava_io.read_exclusions(eval_cfg.excluded_timestamps_path)
                  if eval_cfg.excluded_timestamps_path else set())
    evaluator = aggregated_logs.evaluator
    results = evaluator.result(sorted(names), exclusions=exclusions,
                               iou_threshold=eval_cfg.iou_threshold,
                               protocol=eval_cfg.protocol)
    if self.logging_dir and eval_cfg.detections_csv_name:
      path = os.path.join(self.logging_dir, eval_cfg.detections_csv_name)
      ava_io.write_keyframes_csv(path, evaluator.detections())
      logging.info('Wrote the scored boxes to %s (official AVA format).',
                   path)
    logs = {'frame_mAP': np.float32(results['mAP']),
            'num_keyframes': np.float32(results['num_keyframes'])}
    for class_id, ap in sorted(results['per_class_ap'].items()):
      if not np.isnan(ap):
        logs[f'AP/{class_id}_{names[class_id]}'] = np.float32(ap)
    logging.info('frame-mAP@%.2f %.4f over %d classes with ground truth '
                 '(%d keyframes)', eval_cfg.iou_threshold, results['mAP'],
                 results['num_classes_with_groundtruth'],
                 results['num_keyframes'])
    return logs
