"""Downstream action recognition: linear evaluation and fine-tuning.

The classifier (`modeling/video_classifier.py`) is initialized from a
pretraining checkpoint (`task.init_checkpoint`: its `res5_g` branch becomes
the classifier's res5) and trained on one clip per video. Validation scores
every video through `num_test_clips x num_test_crops` views, averages the
softmax probabilities over the views and reports top-1 / top-5 accuracy per
video (`evaluation/multiview.py`).
"""

from typing import Any, Dict, List, Mapping, Optional

import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import task_factory
from official_projects_const_cl.configs import recognition as rec_cfg
from official_projects_const_cl.dataloaders import recognition_input
from official_projects_const_cl.evaluation import multiview
from official_projects_const_cl.modeling import checkpoint_loading
from official_projects_const_cl.modeling import video_classifier
from official_projects_const_cl.tasks import gradient_step

TOP_K = (1, 5)


def merge_views(images: tf.Tensor) -> tf.Tensor:
  """[B, V, T, H, W, C] -> [B * V, T, H, W, C] (video-major)."""
  shape = tf.shape(images)
  return tf.reshape(images, tf.concat([[-1], shape[2:]], axis=0))


@task_factory.register_task_cls(rec_cfg.RecognitionTask)
class RecognitionTask(base_task.Task):
  """Linear evaluation / fine-tuning of a pretrained video backbone."""

  @property
  def num_classes(self) -> int:
    return self.task_config.train_data.num_classes

  def build_model(self) -> tf_keras.Model:
    """The classifier; clip size is free (224^2 train, 256^2 test)."""
    data = self.task_config.train_data
    if self.task_config.validation_data.num_classes != data.num_classes:
      raise ValueError(
          'train_data.num_classes and validation_data.num_classes differ '
          f'({data.num_classes} vs '
          f'{self.task_config.validation_data.num_classes}).')
    input_specs = tf_keras.layers.InputSpec(
        shape=[None, None, None, None, data.feature_shape[3]])
    l2_regularizer = gradient_step.weight_decay_regularizer(
        self.task_config.losses.l2_weight_decay)
    model = video_classifier.build_video_classifier(
        input_specs, self.task_config.model, self.num_classes, l2_regularizer)
    model.build_heads()  # Traced once: see pretrain.build_model.
    return model

  def initialize(self, model: tf_keras.Model):
    """Fills the backbone from `init_checkpoint` (a pretraining run).

    Called by the trainer only when `model_dir` has no checkpoint of its own
    (a resumed run restores its own checkpoint instead).
    """
    checkpoint_loading.initialize_downstream_backbone(
        model.backbone, self.task_config.init_checkpoint,
        self.task_config.model)

  def build_inputs(self, params: rec_cfg.RecognitionDataConfig,
                   input_context: Optional[tf.distribute.InputContext] = None
                   ) -> tf.data.Dataset:
    return recognition_input.build_recognition_dataset(params, input_context)

  def build_losses(self, labels: tf.Tensor, model_outputs: tf.Tensor,
                   aux_losses: Optional[List[tf.Tensor]] = None) -> tf.Tensor:
    """Mean softmax cross-entropy of clip logits, plus regularization."""
    one_hot = tf.one_hot(tf.cast(labels, tf.int32), self.num_classes)
    loss = tf.reduce_mean(tf_keras.losses.categorical_crossentropy(
        one_hot, tf.cast(model_outputs, tf.float32), from_logits=True,
        label_smoothing=self.task_config.losses.label_smoothing))
    if aux_losses:
      loss += tf.add_n([tf.cast(l, tf.float32) for l in aux_losses])
    return loss

  def build_metrics(self, training: bool = True):
    metrics = [tf_keras.metrics.Mean(f'top_{k}_accuracy', dtype=tf.float32)
               for k in TOP_K]
    metrics += [tf_keras.metrics.Sum(name, dtype=tf.float32)
                for name in ('corrupt_frames', 'skipped_videos')]
    if not training:
      metrics.append(tf_keras.metrics.Sum('num_videos', dtype=tf.float32))
    return metrics

  def _update_metrics(self, metrics, probabilities: tf.Tensor,
                      labels: tf.Tensor, inputs: Mapping[str, tf.Tensor]):
    counts = {'corrupt_frames': inputs.get('num_corrupt_frames', 0),
              'skipped_videos': inputs.get('skipped_videos', 0)}
    for m in metrics or []:
      if m.name in counts:
        m.update_state(tf.cast(tf.reduce_sum(counts[m.name]), tf.float32))
      elif m.name == 'num_videos':
        m.update_state(tf.cast(tf.shape(labels)[0], tf.float32))
      else:
        k = int(m.name.split('_')[1])
        correct = multiview.top_k_correct(probabilities, labels,
                                          min(k, self.num_classes))
        m.update_state(tf.cast(correct, tf.float32))

  def train_step(self, inputs: Mapping[str, tf.Tensor], model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer, metrics=None
                 ) -> Dict[str, tf.Tensor]:
    """One clip per video; loss divided by the replica count."""
    labels = inputs['label']
    with tf.GradientTape() as tape:
      logits = model(inputs['image'], training=True)
      loss = self.build_losses(labels, logits, aux_losses=model.losses)
      scaled_loss = gradient_step.scale_loss(loss, optimizer)
    gradient_step.apply_gradients(tape, scaled_loss, model, optimizer)
    self._update_metrics(metrics, tf.nn.softmax(logits), labels, inputs)
    return {self.loss: loss}

  def video_probabilities(self, model: tf_keras.Model,
                          images: tf.Tensor) -> tf.Tensor:
    """Per-video probabilities [B, C] of multi-view images [B, V, ...]."""
    num_views = tf.shape(images)[1]
    logits = model(merge_views(images), training=False)
    logits = tf.reshape(logits, [-1, num_views, self.num_classes])
    return multiview.video_probabilities(logits)

  def validation_step(self, inputs: Mapping[str, tf.Tensor],
                      model: tf_keras.Model, metrics=None
                      ) -> Dict[str, tf.Tensor]:
    """Averaged view probabilities; per-video accuracy and loss."""
    labels = tf.cast(inputs['label'], tf.int32)
    probabilities = self.video_probabilities(model, inputs['image'])
    label_prob = tf.gather(probabilities, labels, axis=1, batch_dims=1)
    loss = -tf.reduce_mean(tf.math.log(tf.maximum(label_prob, 1e-12)))
    self._update_metrics(metrics, probabilities, labels, inputs)
    return {self.loss: loss}

  def inference_step(self, inputs: Any, model: tf_keras.Model) -> tf.Tensor:
    return model(inputs, training=False)
