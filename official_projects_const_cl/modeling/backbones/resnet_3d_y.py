"""The "Y" ResNet3D-50 backbone of ConST-CL (paper §3.4, supplementary Table 1).

An R3D-50 (stem 5x7^2 conv stride (2, 2, 2), max-pool 1x3^2 stride (1, 2, 2),
bottleneck groups res2..res5) whose res5 group is duplicated after res4 into
two branches with identical structure and separate weights: `res5_g` carries
the global (clip-level) loss and `res5_r` the local (region-level) loss. With
`branch_res5=False` it is the plain R3D-50 of CVRL with a single `res5`.

Layer names are stable (`stem_conv`, `res4_block_2`, `res5_g_block_0`, ...)
so that `transfer_backbone_weights` can move one pretrained res5 branch into a
single-branch backbone for fine-tuning (paper §3.4: at fine-tuning only one
branch is kept).
"""

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import tensorflow as tf
import tf_keras

from official.modeling import hyperparams
from official.modeling import tf_utils
from official.vision.modeling.backbones import factory
from official.vision.modeling.layers import nn_blocks_3d
from official_projects_const_cl.modeling import serialization
from official_projects_const_cl.modeling import variable_paths

layers = tf_keras.layers

# (filters, repeats, temporal kernel size of each block) for res2..res5.
BlockSpec = Tuple[int, int, Tuple[int, ...]]

# Supplementary Table 1: temporal kernels 1 in res2/res3, 3 in res4/res5.
PAPER_BLOCK_SPECS: Tuple[BlockSpec, ...] = (
    (64, 3, (1, 1, 1)),
    (128, 4, (1, 1, 1, 1)),
    (256, 6, (3, 3, 3, 3, 3, 3)),
    (512, 3, (3, 3, 3)),
)

RES5_BRANCHES = ('res5_g', 'res5_r')


def _normalize_block_specs(block_specs: Sequence[Any]) -> Tuple[BlockSpec, ...]:
  """Converts block specs given as tuples, dicts or configs to tuples."""
  specs = []
  for i, spec in enumerate(block_specs):
    if isinstance(spec, Mapping):
      filters = spec['filters']
      repeats = spec['repeats']
      kernels = spec['temporal_kernel_sizes']
    elif hasattr(spec, 'filters'):
      filters = spec.filters
      repeats = spec.repeats
      kernels = spec.temporal_kernel_sizes
    else:
      filters, repeats, kernels = spec
    kernels = tuple(int(k) for k in kernels)
    if len(kernels) != int(repeats):
      raise ValueError(
          f'block_specs[{i}] (res{i + 2}) has repeats='
          f'{repeats} but {len(kernels)} temporal_kernel_sizes {kernels}; '
          'give one temporal kernel size per block.')
    specs.append((int(filters), int(repeats), kernels))
  if len(specs) != 4:
    raise ValueError(
        'block_specs must describe the 4 block groups '
        f'res2..res5, got {len(specs)}.')
  return tuple(specs)


@tf_keras.utils.register_keras_serializable(package='ConstCL')
class BatchNormalization(layers.BatchNormalization):
  """Keras batch normalization that normalizes 5D inputs as 4D.

  The statistics of `[B, T, H, W, C]` are taken over B, T, H and W either
  way; reshaping to `[B * T, H, W, C]` lets TensorFlow use its fused 4D
  kernels (oneDNN on CPU: about half the time of the 5D kernel, measured in
  bench/). Same variables, same numbers up to float rounding, so checkpoints
  are interchangeable with `tf_keras.layers.BatchNormalization`. Synchronized
  batch norm keeps its own (unfused) path.
  """

  def build(self, input_shape):
    input_shape = tf.TensorShape(input_shape)
    if input_shape.rank == 5 and not self.synchronized:
      super().build(tf.TensorShape([None]) + input_shape[2:])
      self.input_spec = layers.InputSpec(min_ndim=4,
                                         axes={-1: input_shape[-1]})
    else:
      super().build(input_shape)

  def call(self, inputs, training=None, mask=None):
    if inputs.shape.rank != 5 or self.synchronized:
      return super().call(inputs, training=training, mask=mask)
    shape = tf.shape(inputs)
    outputs = super().call(
        tf.reshape(inputs, tf.concat([[-1], shape[2:]], axis=0)),
        training=training)
    outputs = tf.reshape(outputs, shape)
    outputs.set_shape(inputs.shape)
    return outputs


@tf_keras.utils.register_keras_serializable(package='ConstCL')
class BottleneckBlock3D(nn_blocks_3d.BottleneckBlock3D):
  """Model Garden's 3D bottleneck, faster on CPU, with the same variables.

  Two changes that keep the numbers (up to float rounding) and the
  checkpoints: batch normalization runs on 4D views (`BatchNormalization`),
  and the strided 1x1x1 projection shortcut subsamples first and then
  convolves at stride 1. A strided 1x1x1 'same' convolution reads input voxel
  s * i for output i, which is what the block's 1x1x1 shortcut max-pool of
  that stride keeps; on CPU the unstrided weight gradient is 1.5-2.6x faster
  (bench/bench_demo_step.py).
  """

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self._norm = BatchNormalization

  def build(self, input_shape):
    super().build(input_shape)
    # The shortcut max-pool does the striding (see `call`).
    self._shortcut_conv.strides = (1, 1, 1)

  def call(self, inputs, training=None):
    strided = self._temporal_strides != 1 or self._spatial_strides != 1
    shortcut = self._shortcut_maxpool(inputs) if strided else inputs
    if inputs.shape[-1] != 4 * self._filters:
      shortcut = self._norm0(self._shortcut_conv(shortcut))

    x = self._activation_fn(self._norm1(self._temporal_conv(inputs)))
    x = self._activation_fn(self._norm2(self._spatial_conv(x)))
    x = self._norm3(self._expand_conv(x))
    if self._self_gating:
      x = self._self_gating(x)
    if self._squeeze_excitation:
      x = self._squeeze_excitation(x)
    if self._stochastic_depth:
      x = self._stochastic_depth(x, training=training)
    return self._activation_fn(x + shortcut)


@tf_keras.utils.register_keras_serializable(package='ConstCL')
class DilatedBottleneckBlock3D(BottleneckBlock3D):
  """Our 3D bottleneck with a dilated 1x3x3 spatial convolution.

  The variables are exactly those of `BottleneckBlock3D` (same attributes,
  same shapes), so pretrained weights load unchanged; only the spatial
  convolution samples its 3x3 taps `dilation_rate` pixels apart.
  """

  def __init__(self, dilation_rate: int = 1, **kwargs):
    super().__init__(**kwargs)
    self._dilation_rate = dilation_rate

  def build(self, input_shape):
    super().build(input_shape)
    if self._dilation_rate > 1:
      if self._spatial_strides != 1:
        raise ValueError('a dilated block needs spatial '
                         f'stride 1, got {self._spatial_strides}.')
      self._spatial_conv = layers.Conv3D(
          filters=self._filters,
          kernel_size=[1, 3, 3],
          strides=[1, 1, 1],
          dilation_rate=[1, self._dilation_rate, self._dilation_rate],
          padding='same',
          use_bias=False,
          kernel_initializer=tf_utils.clone_initializer(
              self._kernel_initializer),
          kernel_regularizer=self._kernel_regularizer,
          bias_regularizer=self._bias_regularizer)

  def get_config(self) -> Dict[str, Any]:
    return {**super().get_config(), 'dilation_rate': self._dilation_rate}


@tf_keras.utils.register_keras_serializable(package='ConstCL')
class ResNet3DY(tf_keras.Model):
  """R3D-50 with an optional duplicated res5 ("Y" structure).

  Input: `[B, T, H, W, 3]`. Output: a dict of endpoints
  `res2 [B, T', H/4, W/4, 4*f2]`, `res3 [.., H/8, ..]`, `res4 [.., H/16, ..]`
  and either `res5_g`, `res5_r` (branch) or `res5` `[B, T', H/32, W/32, 4*f5]`
  where `T' = T / (stem_conv_temporal_stride * stem_pool_temporal_stride)`.
  """

  def __init__(
      self,
      block_specs: Sequence[Any] = PAPER_BLOCK_SPECS,
      stem_filters: int = 64,
      stem_conv_temporal_kernel_size: int = 5,
      stem_conv_spatial_kernel_size: int = 7,
      stem_conv_temporal_stride: int = 2,
      stem_pool_temporal_stride: int = 1,
      branch_res5: bool = True,
      tracking_dilation: bool = False,
      input_specs: layers.InputSpec = layers.InputSpec(
          shape=[None, None, None, None, 3]),
      activation: str = 'relu',
      use_sync_bn: bool = False,
      norm_momentum: float = 0.997,
      norm_epsilon: float = 1e-5,
      kernel_initializer: str = 'VarianceScaling',
      kernel_regularizer: Optional[tf_keras.regularizers.Regularizer] = None,
      bias_regularizer: Optional[tf_keras.regularizers.Regularizer] = None,
      **kwargs):
    """Initializes the backbone.

    Args:
      block_specs: 4 entries (res2..res5), each `(filters, repeats,
        temporal_kernel_sizes)` or a dict / config object with those fields.
        The bottleneck output has `4 * filters` channels.
      stem_filters: Filters of the stem convolution.
      stem_conv_temporal_kernel_size: Temporal kernel of the stem conv.
      stem_conv_spatial_kernel_size: Spatial kernel of the stem conv (7 in
        R3D-50).
      stem_conv_temporal_stride: Temporal stride of the stem conv.
      stem_pool_temporal_stride: Temporal stride of the stem max-pool (its
        temporal window is 1 when the stride is 1, else 3).
      branch_res5: If True, res5 is duplicated into `res5_g` and `res5_r`.
      tracking_dilation: SiamFC tracking (supplementary §3.3): the first
        block of res4 and of res5 gets spatial stride 1 and dilation 2 and 4
        (output stride 8 instead of 32); the weights are unchanged.
      input_specs: `InputSpec` of the `[B, T, H, W, 3]` input.
      activation: Activation name.
      use_sync_bn: Whether to use synchronized batch normalization.
      norm_momentum: Batch-norm moving-average momentum.
      norm_epsilon: Batch-norm epsilon.
      kernel_initializer: Initializer of the convolution kernels.
      kernel_regularizer: Regularizer of the convolution kernels.
      bias_regularizer: Regularizer of biases (the convolutions have none).
      **kwargs: Passed to `tf_keras.Model`.
    """
    self._block_specs = _normalize_block_specs(block_specs)
    self._stem_filters = stem_filters
    self._stem_conv_temporal_kernel_size = stem_conv_temporal_kernel_size
    self._stem_conv_spatial_kernel_size = stem_conv_spatial_kernel_size
    self._stem_conv_temporal_stride = stem_conv_temporal_stride
    self._stem_pool_temporal_stride = stem_pool_temporal_stride
    self._branch_res5 = branch_res5
    self._tracking_dilation = tracking_dilation
    self._input_specs = input_specs
    self._activation = activation
    self._use_sync_bn = use_sync_bn
    self._norm_momentum = norm_momentum
    self._norm_epsilon = norm_epsilon
    self._kernel_initializer = kernel_initializer
    self._kernel_regularizer = kernel_regularizer
    self._bias_regularizer = bias_regularizer

    inputs = tf_keras.Input(shape=input_specs.shape[1:])
    endpoints = self._build_model(inputs)
    self._output_specs = {k: v.get_shape() for k, v in endpoints.items()}
    super().__init__(inputs=inputs, outputs=endpoints, **kwargs)

  def _build_model(self, inputs: tf.Tensor) -> Dict[str, tf.Tensor]:
    x = layers.Conv3D(
        filters=self._stem_filters,
        kernel_size=[self._stem_conv_temporal_kernel_size,
                     self._stem_conv_spatial_kernel_size,
                     self._stem_conv_spatial_kernel_size],
        strides=[self._stem_conv_temporal_stride, 2, 2],
        padding='same',
        use_bias=False,
        kernel_initializer=tf_utils.clone_initializer(self._kernel_initializer),
        kernel_regularizer=self._kernel_regularizer,
        bias_regularizer=self._bias_regularizer,
        name='stem_conv')(inputs)
    x = self._batch_norm(name='stem_bn')(x)
    x = tf_utils.get_activation(self._activation)(x)
    pool_temporal_size = 1 if self._stem_pool_temporal_stride == 1 else 3
    x = layers.MaxPool3D(
        pool_size=[pool_temporal_size, 3, 3],
        strides=[self._stem_pool_temporal_stride, 2, 2],
        padding='same',
        name='stem_pool')(x)

    # (spatial stride, dilation) of the first block of res2..res5.
    first_blocks = [(1, 1), (2, 1), (2, 1), (2, 1)]
    if self._tracking_dilation:
      first_blocks[2:] = [(1, 2), (1, 4)]
    endpoints = {}
    for i, (filters, repeats, kernels) in enumerate(self._block_specs[:3]):
      stride, dilation = first_blocks[i]
      x = self._block_group(x, filters, repeats, kernels,
                            spatial_strides=stride, dilation_rate=dilation,
                            name=f'res{i + 2}')
      endpoints[f'res{i + 2}'] = x

    # Both branches read the same res4 output; their layers are interleaved
    # in `self.layers` (depth order), so weights move between backbones by
    # layer name (`transfer_backbone_weights`), never by position.
    res5_names = RES5_BRANCHES if self._branch_res5 else ('res5',)
    filters, repeats, kernels = self._block_specs[3]
    stride, dilation = first_blocks[3]
    for name in res5_names:
      endpoints[name] = self._block_group(
          x, filters, repeats, kernels, spatial_strides=stride,
          dilation_rate=dilation, name=name)
    return endpoints

  def _batch_norm(self, name: str) -> layers.Layer:
    return BatchNormalization(
        axis=-1,
        momentum=self._norm_momentum,
        epsilon=self._norm_epsilon,
        synchronized=self._use_sync_bn,
        name=name)

  def _block_group(self, x: tf.Tensor, filters: int, repeats: int,
                   kernels: Tuple[int, ...], spatial_strides: int,
                   name: str, dilation_rate: int = 1) -> tf.Tensor:
    """Stacks `repeats` bottleneck blocks; the first one downsamples.

    With `dilation_rate` > 1 the first block keeps the resolution (stride 1)
    and dilates its spatial convolution instead.
    """
    for i in range(repeats):
      block_args = dict(
          filters=filters,
          temporal_kernel_size=kernels[i],
          temporal_strides=1,
          spatial_strides=spatial_strides if i == 0 else 1,
          kernel_initializer=self._kernel_initializer,
          kernel_regularizer=self._kernel_regularizer,
          bias_regularizer=self._bias_regularizer,
          activation=self._activation,
          use_sync_bn=self._use_sync_bn,
          norm_momentum=self._norm_momentum,
          norm_epsilon=self._norm_epsilon,
          name=f'{name}_block_{i}')
      if i == 0 and dilation_rate > 1:
        block = DilatedBottleneckBlock3D(dilation_rate=dilation_rate,
                                         **block_args)
      else:
        block = BottleneckBlock3D(**block_args)
      x = block(x)
    return x

  @property
  def output_specs(self) -> Dict[str, tf.TensorShape]:
    """A dict of {endpoint name: TensorShape}."""
    return self._output_specs

  @property
  def branch_res5(self) -> bool:
    return self._branch_res5

  @property
  def temporal_downsampling(self) -> int:
    """Input frames per feature-map time slice (T / T')."""
    return self._stem_conv_temporal_stride * self._stem_pool_temporal_stride

  def get_config(self) -> Dict[str, Any]:
    return {
        'block_specs': [[f, r, list(k)] for f, r, k in self._block_specs],
        'stem_filters': self._stem_filters,
        'stem_conv_temporal_kernel_size': self._stem_conv_temporal_kernel_size,
        'stem_conv_spatial_kernel_size': self._stem_conv_spatial_kernel_size,
        'stem_conv_temporal_stride': self._stem_conv_temporal_stride,
        'stem_pool_temporal_stride': self._stem_pool_temporal_stride,
        'branch_res5': self._branch_res5,
        'tracking_dilation': self._tracking_dilation,
        'input_shape': list(self._input_specs.shape),
        'activation': self._activation,
        'use_sync_bn': self._use_sync_bn,
        'norm_momentum': self._norm_momentum,
        'norm_epsilon': self._norm_epsilon,
        'kernel_initializer': self._kernel_initializer,
        **serialization.serialize_regularizers(self._kernel_regularizer,
                                               self._bias_regularizer),
        'name': self.name,
    }

  @classmethod
  def from_config(cls, config: Mapping[str, Any], custom_objects=None):
    config = serialization.deserialize_regularizers(config, custom_objects)
    config['input_specs'] = layers.InputSpec(shape=config.pop('input_shape'))
    return cls(**config)


def transfer_backbone_weights(source: ResNet3DY, target: ResNet3DY,
                              res5_branch: str = 'res5_g') -> int:
  """Copies weights from `source` into `target`, layer by layer name.

  Moves one pretrained res5 branch of a "Y" backbone into the single `res5`
  of a fine-tuning backbone (or any backbone into one of the same structure).

  Args:
    source: The pretrained backbone.
    target: The backbone to initialize; must be built.
    res5_branch: Which source branch ('res5_g' or 'res5_r') feeds a target
      `res5` when the source has branches and the target does not.

  Returns:
    The number of layers copied.

  Raises:
    ValueError: if a target layer with weights has no source counterpart
      (nothing is silently left at its initialization).
  """
  if res5_branch not in RES5_BRANCHES:
    raise ValueError(f'res5_branch must be one of {RES5_BRANCHES}, '
                     f'got {res5_branch!r}.')
  source_layers = {layer.name: layer for layer in source.layers}
  copied = 0
  for layer in target.layers:
    if not layer.weights:
      continue
    name = layer.name
    if name not in source_layers and name.startswith('res5_block_'):
      name = name.replace('res5_', f'{res5_branch}_', 1)
    if name not in source_layers:
      raise ValueError(f'target layer {layer.name!r} has no '
                       'counterpart in the source backbone.')
    # By structural path, not by `get_weights()` order (which changes when a
    # layer is frozen) nor by variable name (Keras auto-numbers sublayers).
    source_vars = variable_paths.variable_paths(source_layers[name])
    target_vars = variable_paths.variable_paths(layer)
    if sorted(source_vars) != sorted(target_vars):
      raise ValueError(
          f'layer {layer.name!r} has variables '
          f'{sorted(target_vars)}, its source {name!r} has '
          f'{sorted(source_vars)}.')
    for path, var in target_vars.items():
      value = source_vars[path]
      if value.shape != var.shape:
        raise ValueError(
            f'{layer.name}/{path} has shape {var.shape}, its '
            f'source {name}/{path} has {value.shape}.')
      var.assign(value)
    copied += 1
  return copied


@factory.register_backbone_builder('resnet_3d_y')
def build_resnet_3d_y(
    input_specs: tf_keras.layers.InputSpec,
    backbone_config: hyperparams.Config,
    norm_activation_config: hyperparams.Config,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None
) -> tf_keras.Model:
  """Builds `ResNet3DY` from a Model Garden backbone OneOf config."""
  if backbone_config.type != 'resnet_3d_y':
    raise ValueError("backbone.type must be 'resnet_3d_y', "
                     f'got {backbone_config.type!r}.')
  cfg = backbone_config.resnet_3d_y
  return ResNet3DY(
      block_specs=cfg.block_specs,
      stem_filters=cfg.stem_filters,
      stem_conv_temporal_kernel_size=cfg.stem_conv_temporal_kernel_size,
      stem_conv_spatial_kernel_size=cfg.stem_conv_spatial_kernel_size,
      stem_conv_temporal_stride=cfg.stem_conv_temporal_stride,
      stem_pool_temporal_stride=cfg.stem_pool_temporal_stride,
      branch_res5=cfg.branch_res5,
      tracking_dilation=cfg.tracking_dilation,
      input_specs=input_specs,
      activation=norm_activation_config.activation,
      use_sync_bn=norm_activation_config.use_sync_bn,
      norm_momentum=norm_activation_config.norm_momentum,
      norm_epsilon=norm_activation_config.norm_epsilon,
      kernel_regularizer=l2_regularizer)
