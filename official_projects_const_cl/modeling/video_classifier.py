"""Video classifier on a pretrained backbone (supplementary §3.1).

backbone endpoint (a single `res5`, which holds the pretrained `res5_g`)
-> global average pooling over time and space -> optional L2 normalization
(linear evaluation) -> dropout -> one linear layer (float32 logits).

With `freeze_backbone=True` the backbone is not trainable and always runs in
inference mode, so neither its weights nor its batch-norm statistics change
(linear evaluation).
"""

from typing import Any, Dict, Mapping, Optional

import tensorflow as tf
import tf_keras

from official.vision.modeling import backbones
from official.vision.modeling import factory_3d
from official_projects_const_cl.modeling.backbones import resnet_3d_y

layers = tf_keras.layers


class VideoClassifier(tf_keras.Model):
  """Pooled backbone features and a linear classifier."""

  def __init__(self,
               backbone: tf_keras.Model,
               num_classes: int,
               endpoint: str = 'res5',
               freeze_backbone: bool = False,
               normalize_features: bool = False,
               dropout_rate: float = 0.0,
               kernel_regularizer: Optional[
                   tf_keras.regularizers.Regularizer] = None,
               **kwargs):
    """Initializes the classifier.

    Args:
      backbone: a backbone returning a dict of endpoints `[B, T, H, W, C]`.
      num_classes: output classes.
      endpoint: the endpoint that is pooled.
      freeze_backbone: linear evaluation: backbone not trainable, inference
        mode (batch-norm statistics frozen).
      normalize_features: L2-normalize pooled features before the classifier.
      dropout_rate: dropout before the classifier (training only).
      kernel_regularizer: regularizer of the classifier kernel.
      **kwargs: passed to `tf_keras.Model`.

    Raises:
      ValueError: `endpoint` is not an output of the backbone.
    """
    super().__init__(**kwargs)
    if endpoint not in backbone.output_specs:
      raise ValueError(
          f'endpoint {endpoint!r} is not an output of '
          f'the backbone ({sorted(backbone.output_specs)}).')
    if num_classes < 1:
      raise ValueError(f'num_classes must be >= 1, got {num_classes}.')
    self._config_dict = {
        'num_classes': num_classes, 'endpoint': endpoint,
        'freeze_backbone': freeze_backbone,
        'normalize_features': normalize_features,
        'dropout_rate': dropout_rate,
    }
    self._backbone = backbone
    if freeze_backbone:
      self._backbone.trainable = False
    self._dropout = layers.Dropout(dropout_rate)
    self._classifier = layers.Dense(
        num_classes, kernel_regularizer=kernel_regularizer, dtype='float32',
        name='classifier')

  def build_heads(self) -> None:
    """Creates the classifier's weights from the backbone's output spec."""
    if self._classifier.built:
      return
    channels = self._backbone.output_specs[self._config_dict['endpoint']][-1]
    with tf.name_scope(self.name):  # The names a forward pass gives.
      self._classifier(tf.zeros([1, channels]))
    self.built = True

  @property
  def backbone(self) -> tf_keras.Model:
    return self._backbone

  @property
  def checkpoint_items(self) -> Dict[str, tf.Module]:
    return {'backbone': self._backbone}

  def pooled_features(self, images: tf.Tensor,
                      training: Optional[bool] = None) -> tf.Tensor:
    """Globally pooled endpoint features, float32 [B, C]."""
    if self._config_dict['freeze_backbone']:
      training = False
    endpoints = self._backbone(images, training=training)
    features = endpoints[self._config_dict['endpoint']]
    return tf.reduce_mean(tf.cast(features, tf.float32), axis=[1, 2, 3])

  def call(self, inputs: Any, training: Optional[bool] = None) -> tf.Tensor:
    """Logits float32 [B, num_classes] of clips `[B, T, H, W, 3]`.

    Args:
      inputs: the clips, or a dict with them under 'image'.
      training: training mode (dropout; batch norm unless frozen).

    Returns:
      Logits.
    """
    images = inputs['image'] if isinstance(inputs, Mapping) else inputs
    x = self.pooled_features(images, training=training)
    if self._config_dict['normalize_features']:
      x = tf.math.l2_normalize(x, axis=-1)
    x = self._dropout(x, training=training)
    return self._classifier(x)

  def get_config(self) -> Dict[str, Any]:
    return dict(self._config_dict)


def single_res5_backbone_config(backbone_config: Any) -> Any:
  """A downstream backbone config: the pretraining one with a single res5."""
  config = backbone_config.replace()
  if config.type == 'resnet_3d_y':
    config.resnet_3d_y.branch_res5 = False
  return config


def build_video_classifier(
    input_specs: tf_keras.layers.InputSpec,
    model_config: Any,
    num_classes: int,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None
) -> VideoClassifier:
  """Builds a `VideoClassifier` from a `VideoClassifierModel` config.

  The backbone is the configured (pretraining) backbone with a single res5;
  `task.init_checkpoint` fills it from the configured `res5_branch`
  (`checkpoint_loading.restore_pretrained_backbone`).
  """
  if model_config.res5_branch not in resnet_3d_y.RES5_BRANCHES:
    raise ValueError(
        f'model.res5_branch must be one of {resnet_3d_y.RES5_BRANCHES}, got '
        f'{model_config.res5_branch!r}.')
  backbone = backbones.factory.build_backbone(
      input_specs=input_specs,
      backbone_config=single_res5_backbone_config(model_config.backbone),
      norm_activation_config=model_config.norm_activation,
      l2_regularizer=l2_regularizer)
  endpoint = 'res5' if 'res5' in backbone.output_specs else max(
      backbone.output_specs)
  return VideoClassifier(
      backbone=backbone,
      num_classes=num_classes,
      endpoint=endpoint,
      freeze_backbone=model_config.freeze_backbone,
      normalize_features=model_config.normalize_features,
      dropout_rate=model_config.dropout_rate,
      kernel_regularizer=l2_regularizer,
      name='video_classifier')


@factory_3d.register_model_builder('const_cl_classifier')
def _build_from_factory(
    input_specs: tf_keras.layers.InputSpec,
    model_config: Any,
    num_classes: int,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None
) -> VideoClassifier:
  """`factory_3d.build_model` entry point."""
  return build_video_classifier(input_specs, model_config, num_classes,
                                l2_regularizer)
