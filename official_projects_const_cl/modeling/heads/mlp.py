"""MLP projection head (paper §4.1; CVRL §3.3; ConST-CL eq. 3).

The global branch projects the pooled 2048-d res5_g feature with a 3-layer
MLP of 2048 hidden units (Dense + BN + ReLU) to a 128-d embedding; the vanilla
region variant (context length 0, eq. 3-4) uses the same head on region
features. With 2048 -> 3 x 2048 -> 128 the head holds 12,875,904 parameters
(BN moving statistics included), which with the 31.7M R3D-50 gives CVRL's
44.6M (paper Table 6).
"""

from typing import Any, Dict, Optional

import tensorflow as tf
import tf_keras

from official.modeling import tf_utils
from official_projects_const_cl.modeling import serialization


@tf_keras.utils.register_keras_serializable(package='ConstCL')
class MLPHead(tf_keras.layers.Layer):
  """`num_hidden_layers` x (Dense + BN + activation), then a linear Dense.

  With `use_batch_norm=False` the hidden layers are Dense + activation (VCLR
  appendix A.1: FC -> ReLU -> FC).

  Inputs `[B, C]` or `[B, N, C]` (applied per token; batch-norm statistics
  are taken over all B x N tokens, which are flattened to `[B * N, C]`).
  Output `[..., num_output_channels]`, not normalized.
  """

  def __init__(self,
               num_hidden_layers: int = 3,
               num_hidden_channels: int = 2048,
               num_output_channels: int = 128,
               activation: str = 'relu',
               use_sync_bn: bool = False,
               norm_momentum: float = 0.997,
               norm_epsilon: float = 1e-5,
               kernel_initializer: str = 'VarianceScaling',
               kernel_regularizer: Optional[
                   tf_keras.regularizers.Regularizer] = None,
               bias_regularizer: Optional[
                   tf_keras.regularizers.Regularizer] = None,
               use_batch_norm: bool = True,
               **kwargs):
    """Initializes the head.

    Args:
      num_hidden_layers: Number of Dense + BN + activation layers.
      num_hidden_channels: Width of the hidden layers.
      num_output_channels: Width of the final linear layer.
      activation: Activation name.
      use_sync_bn: Whether to use synchronized batch normalization.
      norm_momentum: Batch-norm moving-average momentum.
      norm_epsilon: Batch-norm epsilon.
      kernel_initializer: Initializer of the Dense kernels.
      kernel_regularizer: Regularizer of the Dense kernels.
      bias_regularizer: Regularizer of the Dense biases.
      use_batch_norm: Batch normalization after each hidden Dense.
      **kwargs: Passed to `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._num_hidden_layers = num_hidden_layers
    self._num_hidden_channels = num_hidden_channels
    self._num_output_channels = num_output_channels
    self._activation = activation
    self._use_sync_bn = use_sync_bn
    self._norm_momentum = norm_momentum
    self._norm_epsilon = norm_epsilon
    self._kernel_initializer = kernel_initializer
    self._kernel_regularizer = kernel_regularizer
    self._bias_regularizer = bias_regularizer
    self._use_batch_norm = use_batch_norm
    self._activation_fn = tf_utils.get_activation(activation)

    dense_kwargs = dict(
        kernel_regularizer=kernel_regularizer,
        bias_regularizer=bias_regularizer,
        dtype=self.dtype_policy)
    self._hidden_dense = []
    self._hidden_norm = []
    for i in range(num_hidden_layers):
      self._hidden_dense.append(tf_keras.layers.Dense(
          num_hidden_channels,
          kernel_initializer=tf_utils.clone_initializer(kernel_initializer),
          name=f'hidden_dense_{i}',
          **dense_kwargs))
      if not use_batch_norm:
        continue
      self._hidden_norm.append(tf_keras.layers.BatchNormalization(
          axis=-1,
          momentum=norm_momentum,
          epsilon=norm_epsilon,
          synchronized=use_sync_bn,
          name=f'hidden_bn_{i}',
          dtype=self.dtype_policy))
    self._output_dense = tf_keras.layers.Dense(
        num_output_channels,
        kernel_initializer=tf_utils.clone_initializer(kernel_initializer),
        name='output_dense',
        **dense_kwargs)

  def build(self, input_shape):
    # Tokens are flattened to [B * N, C] in `call`, so the sublayers are
    # built for rank 2 whatever the input rank.
    shape = tf.TensorShape([None, tf.TensorShape(input_shape)[-1]])
    for i, dense in enumerate(self._hidden_dense):
      dense.build(shape)
      shape = tf.TensorShape([None, self._num_hidden_channels])
      if self._use_batch_norm:
        self._hidden_norm[i].build(shape)
    self._output_dense.build(shape)
    super().build(input_shape)

  def call(self, inputs: tf.Tensor, training: Optional[bool] = None
           ) -> tf.Tensor:
    """Projects `[B, C]` or `[B, N, C]` to `[..., num_output_channels]`."""
    if inputs.shape.rank not in (2, 3):
      raise ValueError('MLPHead expects [B, C] or [B, N, C] inputs, '
                       f'got shape {inputs.shape}.')
    leading = tf.shape(inputs)[:-1]
    x = tf.reshape(inputs, [-1, inputs.shape[-1]])
    for i, dense in enumerate(self._hidden_dense):
      x = dense(x)
      if self._use_batch_norm:
        x = self._hidden_norm[i](x, training=training)
      x = self._activation_fn(x)
    x = tf.reshape(self._output_dense(x),
                   tf.concat([leading, [self._num_output_channels]], 0))
    x.set_shape(inputs.shape[:-1].concatenate([self._num_output_channels]))
    return x

  def get_config(self) -> Dict[str, Any]:
    config = {
        'num_hidden_layers': self._num_hidden_layers,
        'num_hidden_channels': self._num_hidden_channels,
        'num_output_channels': self._num_output_channels,
        'activation': self._activation,
        'use_sync_bn': self._use_sync_bn,
        'norm_momentum': self._norm_momentum,
        'norm_epsilon': self._norm_epsilon,
        'kernel_initializer': self._kernel_initializer,
        'use_batch_norm': self._use_batch_norm,
        **serialization.serialize_regularizers(self._kernel_regularizer,
                                               self._bias_regularizer),
    }
    return {**super().get_config(), **config}

  @classmethod
  def from_config(cls, config: Dict[str, Any]):
    config = serialization.deserialize_regularizers(config)
    return cls(**config)
