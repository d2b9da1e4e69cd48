"""Per-frame embeddings of the 3D backbone for SiamFC tracking (supp. §3.3).

Each tracked frame enters with its n neighbours on each side (2n + 1 frames;
at the ends of a sequence the edge frame is repeated,
`ops/temporal.py:neighbor_indices`).
The backbone is the pretrained one with a single res5 filled from `res5_r`
and `tracking_dilation` (first block of res4 / res5: spatial stride 1,
dilation 2 / 4; output stride 8). The embedding is the center time slice of
the res5 map.
"""

from typing import Any, Optional

import tensorflow as tf
import tf_keras

from official.vision.modeling import backbones
from official_projects_const_cl.modeling import video_classifier


class TrackingEmbedder(tf_keras.Model):
  """[B, 2n + 1, H, W, 3] frame stacks -> [B, H / 8, W / 8, C] embeddings."""

  def __init__(self, backbone: tf_keras.Model, endpoint: str = 'res5',
               freeze_backbone: bool = False, **kwargs):
    super().__init__(**kwargs)
    if endpoint not in backbone.output_specs:
      raise ValueError(
          f'endpoint {endpoint!r} is not an output of '
          f'the backbone ({sorted(backbone.output_specs)}).')
    self._backbone = backbone
    self._endpoint = endpoint
    # Frozen: not trainable and always in inference mode (BN statistics).
    self._freeze_backbone = freeze_backbone
    if freeze_backbone:
      self._backbone.trainable = False

  @property
  def backbone(self) -> tf_keras.Model:
    return self._backbone

  @property
  def checkpoint_items(self):
    return {'backbone': self._backbone}

  def call(self, frames: tf.Tensor,
           training: Optional[bool] = None) -> tf.Tensor:
    """The center time slice of the endpoint, float32."""
    features = self._backbone(
        frames, training=False if self._freeze_backbone else training
    )[self._endpoint]
    num_slices = features.shape[1]
    if num_slices is None:
      raise ValueError('the number of input frames must '
                       'be static.')
    return tf.cast(features[:, num_slices // 2], tf.float32)


def build_tracking_embedder(
    input_specs: tf_keras.layers.InputSpec,
    model_config: Any,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None
) -> TrackingEmbedder:
  """The embedder of a tracking model config (pretraining `backbone`).

  The backbone keeps a single res5 (filled from `res5_branch` by
  `checkpoint_loading.initialize_downstream_backbone`) and gets
  `tracking_dilation`.
  """
  config = video_classifier.single_res5_backbone_config(model_config.backbone)
  if config.type == 'resnet_3d_y':
    config.resnet_3d_y.tracking_dilation = True
  backbone = backbones.factory.build_backbone(
      input_specs=input_specs, backbone_config=config,
      norm_activation_config=model_config.norm_activation,
      l2_regularizer=l2_regularizer)
  # A pretraining model config (no `freeze_backbone`) gives a trainable one.
  return TrackingEmbedder(
      backbone, freeze_backbone=getattr(model_config, 'freeze_backbone', False),
      name='tracking_embedder')
