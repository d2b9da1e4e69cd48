"""Action localizer: backbone + action transformer head (supplementary §3.2).

The head follows Girdhar et al., "Video Action Transformer Network" (CVPR
2019): the person box, ROIAligned on the keyframe's time slice of the
backbone's res5 map and averaged, is the query; it attends to every voxel of
the clip's feature map through `num_layers` transformer units (multi-head
attention, dropout, residual + LayerNorm, feed-forward, dropout, residual +
LayerNorm) with fixed 3D positional encodings on query and keys; a linear
layer gives one logit per action class (sigmoid, multi-label). This is the
same cross-attention block as ConST-CL's region head (`InstanceReconstructor`,
the module that ConST-CL itself borrows from the action transformer), here
with dropout and a class output.

Boxes are classified independently (queries attend to the clip, never to
each other), so padded boxes cannot change the scores of real ones; losses
and the evaluator mask them out.
"""

from typing import Any, Dict, Mapping, Optional

import tensorflow as tf
import tf_keras

from official.vision.modeling import backbones
from official_projects_const_cl.modeling import positional_encoding
from official_projects_const_cl.modeling import video_classifier
from official_projects_const_cl.modeling.backbones import resnet_3d_y
from official_projects_const_cl.modeling.heads import instance_reconstructor
from official_projects_const_cl.ops import roi_align


def keyframe_slice(num_frames: int, num_slices: int) -> int:
  """Feature-map time slice holding input frame `num_frames // 2`."""
  return (num_frames // 2) * num_slices // num_frames


class ActionLocalizer(tf_keras.Model):
  """Per-box multi-label action logits for a clip centered on a keyframe."""

  def __init__(self,
               backbone: tf_keras.Model,
               head: instance_reconstructor.InstanceReconstructor,
               endpoint: str = 'res5',
               roi_crop_size: int = 7,
               roi_sampling_ratio: int = 2,
               freeze_backbone: bool = False,
               **kwargs):
    super().__init__(**kwargs)
    if endpoint not in backbone.output_specs:
      raise ValueError(
          f'endpoint {endpoint!r} is not an output of '
          f'the backbone ({sorted(backbone.output_specs)}).')
    self._backbone = backbone
    self._head = head
    self._endpoint = endpoint
    self._roi_crop_size = roi_crop_size
    self._roi_sampling_ratio = roi_sampling_ratio
    self._freeze_backbone = freeze_backbone
    if freeze_backbone:
      self._backbone.trainable = False

  @property
  def backbone(self) -> tf_keras.Model:
    return self._backbone

  @property
  def head(self) -> instance_reconstructor.InstanceReconstructor:
    return self._head

  @property
  def checkpoint_items(self) -> Dict[str, tf.Module]:
    return {'backbone': self._backbone}

  def build_heads(self) -> None:
    """Creates the head's weights on one dummy token (no backbone run)."""
    if self._head.built:
      return
    channels = self._backbone.output_specs[self._endpoint][-1]
    token = tf.zeros([1, 1, channels])
    with tf.name_scope(self.name):  # The names a forward pass gives.
      self._head(token, token, training=False)
    self.built = True

  def call(self, inputs: Mapping[str, tf.Tensor],
           training: Optional[bool] = None) -> tf.Tensor:
    """Logits float32 [B, N, num_classes].

    Args:
      inputs: 'image' [B, T, H, W, 3] (keyframe at T // 2, T static) and
        'boxes' [B, N, 4] normalized (ymin, xmin, ymax, xmax).
      training: training mode.

    Returns:
      The logits of every box (padded boxes included; mask them outside).
    """
    images = inputs['image']
    num_frames = images.shape[1]
    if num_frames is None:
      raise ValueError('the number of input frames must '
                       'be static to find the keyframe slice.')
    feature_map = self._backbone(
        images, training=False if self._freeze_backbone else training
    )[self._endpoint]
    num_slices = feature_map.shape[1]
    key = keyframe_slice(num_frames, num_slices)
    boxes = tf.cast(inputs['boxes'], tf.float32)
    query = roi_align.roi_pool_mean(feature_map[:, key], boxes,
                                    self._roi_crop_size,
                                    self._roi_sampling_ratio)
    shape = tf.shape(feature_map)
    context = tf.reshape(feature_map,
                         [shape[0], num_slices * shape[2] * shape[3],
                          shape[4]])
    context_positions = tf.reshape(positional_encoding.grid_coordinates(
        num_slices, shape[2], shape[3]), [-1, 3])
    query_positions = positional_encoding.box_coordinates(
        boxes, tf.fill([shape[0]], key), num_slices)
    logits = self._head(query, context, query_positions=query_positions,
                        context_positions=context_positions,
                        training=training)
    return tf.cast(logits, tf.float32)

  def get_config(self) -> Dict[str, Any]:
    return {'endpoint': self._endpoint, 'roi_crop_size': self._roi_crop_size,
            'roi_sampling_ratio': self._roi_sampling_ratio,
            'freeze_backbone': self._freeze_backbone}


def build_action_localizer(
    input_specs: tf_keras.layers.InputSpec,
    model_config: Any,
    num_classes: int,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None
) -> ActionLocalizer:
  """Builds the localizer from a `LocalizationModel` config.

  The backbone is the configured (pretraining) one with a single res5, which
  `task.init_checkpoint` fills from `res5_branch` (res5_r by default).
  """
  if model_config.res5_branch not in resnet_3d_y.RES5_BRANCHES:
    raise ValueError(
        f'model.res5_branch must be one of {resnet_3d_y.RES5_BRANCHES}, got '
        f'{model_config.res5_branch!r}.')
  backbone = backbones.factory.build_backbone(
      input_specs=input_specs,
      backbone_config=video_classifier.single_res5_backbone_config(
          model_config.backbone),
      norm_activation_config=model_config.norm_activation,
      l2_regularizer=l2_regularizer)
  endpoint = 'res5' if 'res5' in backbone.output_specs else max(
      backbone.output_specs)
  head_cfg = model_config.head
  head = instance_reconstructor.InstanceReconstructor(
      num_layers=head_cfg.num_layers,
      num_heads=head_cfg.num_heads,
      hidden_channels=head_cfg.hidden_channels,
      ffn_channels=head_cfg.ffn_channels,
      output_channels=num_classes,
      activation=model_config.norm_activation.activation,
      dropout_rate=head_cfg.dropout_rate,
      kernel_regularizer=l2_regularizer,
      dtype='float32',
      name='action_transformer_head')
  return ActionLocalizer(
      backbone=backbone, head=head, endpoint=endpoint,
      roi_crop_size=head_cfg.roi_crop_size,
      roi_sampling_ratio=head_cfg.roi_sampling_ratio,
      freeze_backbone=model_config.freeze_backbone,
      name='action_localizer')
