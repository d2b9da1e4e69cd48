"""The ConST-CL pretraining model: backbone f + heads (paper §3, Fig. 2-3).

`ConstClModel` runs the "Y" backbone on both views of a batch (view-major,
rows 0..B-1 view a, B..2B-1 view b) and returns what the losses need:

- global branch (CVRL eq. 1): global-average-pooled res5_g (or res5) and its
  MLP embedding;
- local branch (eq. 3-6): region features h = ROIAlign on one time slice of
  the local endpoint, averaged over the crop, and the head outputs: for the
  transformer head (context length L >= 1) z_{a->b} = g(h_a, F'_b) in the rows
  of view a and z_{b->a} = g(h_b, F'_a) in the rows of view b, with targets
  the raw h of each row's own view (the loss contrasts view a's predictions
  with view b's targets); for the vanilla variant (L = 0, eq. 3-4) both are
  z = MLP(h).

Loss endpoints (paper §3.4, Fig. 3, Table 5): 'res5_g+res5_r' (Y backbone,
global on res5_g, local on res5_r), 'res5' (both on a single res5) and
'res4_pooled' (local on 2x2-average-pooled res4 = C4p, global on res5).

`build_const_cl_model` is registered as the 'const_cl' model builder of
`official.vision.modeling.factory_3d`.
"""

from typing import Any, Dict, Mapping, Optional, Tuple, Union

import tensorflow as tf
import tf_keras

from official.vision.modeling import backbones
from official.vision.modeling import factory_3d
from official_projects_const_cl.modeling import positional_encoding
from official_projects_const_cl.modeling.backbones import resnet_3d_y
from official_projects_const_cl.modeling.heads import instance_reconstructor
from official_projects_const_cl.modeling.heads import mlp
from official_projects_const_cl.ops import roi_align

LOSS_ENDPOINTS = ('res5_g+res5_r', 'res5', 'res4_pooled')
# Backbone endpoint of the local (region) branch for each loss endpoint.
LOCAL_ENDPOINT = {'res5_g+res5_r': 'res5_r', 'res5': 'res5',
                  'res4_pooled': 'res4'}

# Input keys.
IMAGE = 'image'
BOXES = 'boxes'
BOXES_MASK = 'boxes_mask'
REGION_TIME_INDEX = 'region_time_index'
# Output keys.
GLOBAL_FEATURES = 'global_features'
GLOBAL_EMBEDDINGS = 'global_embeddings'
REGION_FEATURES = 'region_features'
REGION_MASK = 'region_mask'
REGION_PREDICTIONS = 'region_predictions'
REGION_TARGETS = 'region_targets'
ATTENTION_SCORES = 'attention_scores'

RegionHead = Union[instance_reconstructor.InstanceReconstructor, mlp.MLPHead]


def input_frame_index(time_index: tf.Tensor, num_frames: int,
                      num_slices: int) -> tf.Tensor:
  """Input frame `floor((s + 0.5) * T / T')` whose boxes feed time slice s."""
  time_index = tf.cast(time_index, tf.int32)
  return ((2 * time_index + 1) * num_frames) // (2 * num_slices)


def _swap_views(x: tf.Tensor) -> tf.Tensor:
  """Rows of view a <-> rows of view b in a view-major `[2B, ...]` batch."""
  return tf.roll(x, shift=tf.shape(x)[0] // 2, axis=0)


@tf_keras.utils.register_keras_serializable(package='ConstCL')
class ConstClModel(tf_keras.Model):
  """Two-view ConST-CL / CVRL pretraining model."""

  def __init__(self,
               backbone: resnet_3d_y.ResNet3DY,
               global_head: mlp.MLPHead,
               region_head: Optional[RegionHead] = None,
               context_length: int = 5,
               loss_endpoint: str = 'res5_g+res5_r',
               num_boxes: int = 8,
               roi_crop_size: int = 4,
               roi_sampling_ratio: int = 2,
               **kwargs):
    """Initializes the model.

    Args:
      backbone: The backbone; its endpoints must match `loss_endpoint`.
      global_head: Projection head of the global branch.
      region_head: None (CVRL: global loss only), an `MLPHead` when
        `context_length` is 0, or an `InstanceReconstructor` when it is >= 1.
      context_length: Feature-map time slices of the context F'c (odd), or 0
        for the vanilla region MLP variant. Ignored without a region head.
      loss_endpoint: One of `LOSS_ENDPOINTS`. Ignored without a region head.
      num_boxes: N, regions per frame.
      roi_crop_size: ROIAlign output bins per side.
      roi_sampling_ratio: ROIAlign samples per bin per side.
      **kwargs: Passed to `tf_keras.Model`.

    Raises:
      ValueError: on inconsistent endpoints, heads or context length.
    """
    super().__init__(**kwargs)
    specs = backbone.output_specs
    self._global_endpoint = 'res5_g' if 'res5_g' in specs else 'res5'
    if self._global_endpoint not in specs:
      raise ValueError('the backbone must output res5_g or '
                       f'res5, got endpoints {sorted(specs)}.')
    self._local_endpoint = None
    if region_head is not None:
      if loss_endpoint not in LOSS_ENDPOINTS:
        raise ValueError(f'loss_endpoint must be one of '
                         f'{LOSS_ENDPOINTS}, got {loss_endpoint!r}.')
      branched = 'res5_r' in specs
      if branched != (loss_endpoint == 'res5_g+res5_r'):
        raise ValueError(
            f"loss_endpoint={loss_endpoint!r} needs a "
            f"backbone with branch_res5={not branched}; the backbone has "
            f'endpoints {sorted(specs)}.')
      self._local_endpoint = LOCAL_ENDPOINT[loss_endpoint]
      local_channels = specs[self._local_endpoint][-1]
      num_slices = specs[self._local_endpoint][1]
      if context_length == 0:
        if not isinstance(region_head, mlp.MLPHead):
          raise ValueError('context_length=0 (vanilla '
                           'region variant) needs an MLPHead region head, got '
                           f'{type(region_head).__name__}.')
      else:
        if not isinstance(region_head,
                          instance_reconstructor.InstanceReconstructor):
          raise ValueError(
              f'context_length={context_length} needs an '
              'InstanceReconstructor region head, got '
              f'{type(region_head).__name__}.')
        if region_head.output_channels != local_channels:
          raise ValueError(
              'region_head.output_channels='
              f'{region_head.output_channels} must equal the {local_channels} '
              f'channels of the local endpoint {loss_endpoint!r} (its '
              'predictions are contrasted with raw region features).')
        try:  # Odd, >= 1, and <= T' when T' is static.
          instance_reconstructor.context_frame_indices(
              num_slices if num_slices is not None else context_length,
              context_length)
        except ValueError as e:
          raise ValueError(
              'context_length must be 0 (MLP head) or odd '
              f"and at most the feature-map time length T'={num_slices}: "
              f'{e}') from e
    self._backbone = backbone
    self._global_head = global_head
    self._region_head = region_head
    self._context_length = context_length
    self._loss_endpoint = loss_endpoint
    self._num_boxes = num_boxes
    self._roi_crop_size = roi_crop_size
    self._roi_sampling_ratio = roi_sampling_ratio

  @property
  def backbone(self) -> resnet_3d_y.ResNet3DY:
    return self._backbone

  @property
  def global_head(self) -> mlp.MLPHead:
    return self._global_head

  @property
  def region_head(self) -> Optional[RegionHead]:
    return self._region_head

  @property
  def context_length(self) -> int:
    return self._context_length

  @property
  def local_feature_shape(self) -> Optional[Tuple[int, int, int]]:
    """(T', H', W') of the local feature map (region features, context F'c).

    None without a region head.
    """
    if self._local_endpoint is None:
      return None
    _, t, h, w, _ = self._backbone.output_specs[self._local_endpoint]
    if self._loss_endpoint == 'res4_pooled':  # 2x2 VALID average pooling.
      h, w = h // 2, w // 2
    return int(t), int(h), int(w)

  @property
  def checkpoint_items(self) -> Dict[str, tf.Module]:
    """Items a downstream task restores: only the backbone."""
    return {'backbone': self._backbone}

  def _local_feature_map(self, endpoints: Mapping[str, tf.Tensor]
                         ) -> tf.Tensor:
    features = endpoints[self._local_endpoint]
    if self._loss_endpoint == 'res4_pooled':
      features = tf.nn.avg_pool3d(features, ksize=[1, 2, 2],
                                  strides=[1, 2, 2], padding='VALID')
    return features

  def call(self,
           inputs: Mapping[str, tf.Tensor],
           training: Optional[bool] = None,
           return_attention_scores: bool = False) -> Dict[str, tf.Tensor]:
    """Runs both views through the backbone and heads.

    Args:
      inputs: `image` [2B, T, H, W, 3] view-major; for a region head also
        `boxes` [2B, T, N, 4], `boxes_mask` [2B, T, N] and
        `region_time_index` int [2B] (feature-map slice of each row).
      training: Training mode.
      return_attention_scores: Also output `attention_scores`
        [2B, layers, heads, N, M] (transformer head only).

    Returns:
      Float32 dict: `global_features` [2B, Cg], `global_embeddings` [2B, D];
      with a region head `region_features` [2B, N, C], `region_mask`
      [2B, N], `region_predictions` and `region_targets` [2B, N, D'].
    """
    images = inputs[IMAGE]
    batch = images.shape[0]
    if batch is not None and batch > 1 and batch % 2:
      raise ValueError(
          'the image batch must hold both views '
          f'(view-major [2B, ...]); got an odd batch {batch}.')
    endpoints = self._backbone(images, training=training)
    global_map = endpoints[self._global_endpoint]
    global_features = tf.reduce_mean(tf.cast(global_map, tf.float32),
                                     axis=[1, 2, 3])
    outputs = {
        GLOBAL_FEATURES: global_features,
        GLOBAL_EMBEDDINGS: tf.cast(
            self._global_head(global_features, training=training), tf.float32),
    }
    if self._region_head is None:
      return outputs

    missing = [k for k in (BOXES, BOXES_MASK, REGION_TIME_INDEX)
               if k not in inputs]
    if missing:
      raise KeyError(f'model inputs lack {missing}, needed '
                     'by the region head; got keys '
                     f'{sorted(inputs)}.')
    local_map = self._local_feature_map(endpoints)
    num_frames, num_slices = images.shape[1], local_map.shape[1]
    if num_frames is None or num_slices is None:
      raise ValueError('the number of input frames must be '
                       'static to pick boxes and context frames, got image '
                       f'shape {images.shape}.')
    boxes_all = inputs[BOXES]
    if boxes_all.shape[2] is not None and boxes_all.shape[2] != self._num_boxes:
      raise ValueError(f'inputs[{BOXES!r}] has '
                       f'{boxes_all.shape[2]} boxes per frame, the model was '
                       f'built for num_boxes={self._num_boxes}.')
    time_index = tf.cast(inputs[REGION_TIME_INDEX], tf.int32)
    frame_index = input_frame_index(time_index, num_frames, num_slices)
    boxes = tf.gather(boxes_all, frame_index, axis=1, batch_dims=1)
    region_mask = tf.gather(inputs[BOXES_MASK], frame_index, axis=1,
                            batch_dims=1)
    feature_slice = tf.gather(local_map, time_index, axis=1, batch_dims=1)
    region_features = roi_align.roi_pool_mean(
        feature_slice, boxes, self._roi_crop_size, self._roi_sampling_ratio)
    outputs[REGION_FEATURES] = region_features
    outputs[REGION_MASK] = tf.cast(region_mask, tf.float32)

    if self._context_length == 0:
      embeddings = tf.cast(
          self._region_head(region_features, training=training), tf.float32)
      outputs[REGION_PREDICTIONS] = embeddings
      outputs[REGION_TARGETS] = embeddings
      return outputs

    frames = instance_reconstructor.context_frame_indices(
        num_slices, self._context_length)
    context = _swap_views(tf.gather(local_map, frames, axis=1))
    shape = tf.shape(context)
    context = tf.reshape(
        context, [shape[0], shape[1] * shape[2] * shape[3], shape[4]])
    context_positions = positional_encoding.grid_coordinates(
        num_slices, shape[2], shape[3], frames)
    context_positions = tf.reshape(context_positions, [-1, 3])
    query_positions = positional_encoding.box_coordinates(
        boxes, time_index, num_slices)
    predictions, scores = self._region_head(
        region_features, context,
        query_positions=query_positions,
        context_positions=context_positions,
        training=training,
        return_attention_scores=True)
    outputs[REGION_PREDICTIONS] = tf.cast(predictions, tf.float32)
    outputs[REGION_TARGETS] = region_features
    if return_attention_scores:
      outputs[ATTENTION_SCORES] = tf.cast(scores, tf.float32)
    return outputs

  def build_heads(self) -> None:
    """Creates all head weights from the backbone's output specs.

    Lets a caller count parameters or restore a checkpoint without running
    the backbone (the heads only see a single dummy token). Idempotent.
    """
    if self._global_head.built and (self._region_head is None or
                                    self._region_head.built):
      return
    specs = self._backbone.output_specs
    # Called, not built, inside the model's scope: the weights get the names
    # a forward pass gives them (const_cl_model/global_head/...).
    with tf.name_scope(self.name):
      self._global_head(tf.zeros([1, specs[self._global_endpoint][-1]]),
                        training=False)
      if self._region_head is not None:
        token = tf.zeros([1, 1, specs[self._local_endpoint][-1]])
        if self._context_length == 0:
          self._region_head(token, training=False)
        else:
          self._region_head(token, token, training=False)
    self.built = True

  def get_config(self) -> Dict[str, Any]:
    serialize = tf_keras.utils.serialize_keras_object
    return {
        'backbone': serialize(self._backbone),
        'global_head': serialize(self._global_head),
        'region_head': (serialize(self._region_head)
                        if self._region_head is not None else None),
        'context_length': self._context_length,
        'loss_endpoint': self._loss_endpoint,
        'num_boxes': self._num_boxes,
        'roi_crop_size': self._roi_crop_size,
        'roi_sampling_ratio': self._roi_sampling_ratio,
        'name': self.name,
    }

  @classmethod
  def from_config(cls, config: Mapping[str, Any], custom_objects=None):
    config = dict(config)
    for key in ('backbone', 'global_head', 'region_head'):
      if config[key] is not None:
        config[key] = tf_keras.utils.deserialize_keras_object(
            config[key], custom_objects=custom_objects)
    return cls(**config)


def build_const_cl_model(
    input_specs: tf_keras.layers.InputSpec,
    model_config: Any,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None
) -> ConstClModel:
  """Builds a `ConstClModel` from the project's model config.

  Both heads run in float32 (their softmax and the losses must stay float32
  under mixed precision, docs/choices.md); the backbone follows the global
  policy.

  Args:
    input_specs: `InputSpec` of the image `[2B, T, H, W, 3]`.
    model_config: A `ConstClModel` config (configs/const_cl.py). Its
      `region_head.output_channels < 0` takes the channels of the local
      endpoint (2048 for res5_r / res5, 1024 for res4_pooled).
    l2_regularizer: Kernel regularizer of the backbone and heads.

  Returns:
    The model.

  Raises:
    ValueError: on inconsistent config fields.
  """
  norm = model_config.norm_activation
  backbone = backbones.factory.build_backbone(
      input_specs=input_specs,
      backbone_config=model_config.backbone,
      norm_activation_config=norm,
      l2_regularizer=l2_regularizer)
  branched = 'res5_r' in backbone.output_specs
  head_kwargs = dict(activation=norm.activation, use_sync_bn=norm.use_sync_bn,
                     norm_momentum=norm.norm_momentum,
                     norm_epsilon=norm.norm_epsilon,
                     kernel_regularizer=l2_regularizer, dtype='float32')
  global_cfg = model_config.global_head
  global_head = mlp.MLPHead(
      num_hidden_layers=global_cfg.num_hidden_layers,
      num_hidden_channels=global_cfg.num_hidden_channels,
      num_output_channels=global_cfg.num_output_channels,
      name='global_head', **head_kwargs)

  region_head = None
  region_cfg = model_config.region_head
  if not model_config.use_region_loss:
    if branched:
      raise ValueError(
          'model.use_region_loss=False (CVRL) uses a single '
          'res5; set model.backbone.resnet_3d_y.branch_res5=False.')
  elif model_config.context_length == 0:
    region_head = mlp.MLPHead(
        num_hidden_layers=region_cfg.num_hidden_layers,
        num_hidden_channels=region_cfg.num_hidden_channels,
        num_output_channels=region_cfg.num_output_channels,
        name='region_head', **head_kwargs)
  else:
    output_channels = region_cfg.output_channels
    if output_channels < 0:  # Match the local endpoint (targets are raw h).
      output_channels = _local_channels(backbone, model_config.loss_endpoint)
    region_head = instance_reconstructor.InstanceReconstructor(
        num_layers=region_cfg.num_layers,
        num_heads=region_cfg.num_heads,
        hidden_channels=region_cfg.hidden_channels,
        ffn_channels=region_cfg.ffn_channels,
        output_channels=output_channels,
        activation=norm.activation,
        kernel_regularizer=l2_regularizer,
        dtype='float32',
        name='region_head')
  return ConstClModel(
      backbone=backbone,
      global_head=global_head,
      region_head=region_head,
      context_length=model_config.context_length,
      loss_endpoint=model_config.loss_endpoint,
      num_boxes=model_config.num_boxes,
      roi_crop_size=model_config.roi_crop_size,
      roi_sampling_ratio=model_config.roi_sampling_ratio,
      name='const_cl_model')


def _local_channels(backbone: resnet_3d_y.ResNet3DY, loss_endpoint: str) -> int:
  """Channels of the region features h for `loss_endpoint`."""
  endpoint = LOCAL_ENDPOINT.get(loss_endpoint)
  if endpoint not in backbone.output_specs:
    raise ValueError(
        f'model.loss_endpoint={loss_endpoint!r} is not one '
        f'of {LOSS_ENDPOINTS} or does not match the backbone endpoints '
        f'{sorted(backbone.output_specs)} (branch_res5 must be True only for '
        "'res5_g+res5_r').")
  return backbone.output_specs[endpoint][-1]


@factory_3d.register_model_builder('const_cl')
def _build_from_factory(
    input_specs: tf_keras.layers.InputSpec,
    model_config: Any,
    num_classes: Optional[int] = None,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None
) -> ConstClModel:
  """`factory_3d.build_model` entry point (its signature has num_classes)."""
  del num_classes  # Self-supervised: no classifier.
  return build_const_cl_model(input_specs, model_config, l2_regularizer)
