"""SiamFC score head: cross-correlation phi(z) * phi(x) (ECCVW 2016, sec. 2.2).

Cell (i, j) of a response of size (rh, rw) is the target displaced by
`total_stride * (i - (rh - 1) / 2, j - (rw - 1) / 2)` search-crop pixels from
the crop center; an embedding must be aligned that way (SiamFC's AlexNet:
127 -> 6 x 6, 255 -> 22 x 22, response 17 x 17).
"""

from typing import Any, Dict

import tensorflow as tf
import tf_keras


def cross_correlation(exemplar_features: tf.Tensor,
                      search_features: tf.Tensor) -> tf.Tensor:
  """Per-pair dense cross-correlation (no kernel flip, valid positions).

  out[b, i, j] = sum_{u, v, c} z[b, u, v, c] * x[b, i + u, j + v, c].
  The batch is folded into the channels of one depthwise convolution, so
  each pair correlates only with itself. An exemplar batch of 1 is
  broadcast to the search batch (one exemplar, a scale pyramid).

  Args:
    exemplar_features: `[B or 1, hz, wz, C]`.
    search_features: `[B, hx, wx, C]`.

  Returns:
    `[B, hx - hz + 1, wx - wz + 1]`.
  """
  z = tf.convert_to_tensor(exemplar_features)
  x = tf.convert_to_tensor(search_features)
  z = tf.cast(z, x.dtype)
  zs, xs = tf.shape(z), tf.shape(x)
  batch, channels = xs[0], xs[3]
  z = tf.broadcast_to(z, tf.stack([batch, zs[1], zs[2], zs[3]]))
  # Input [1, hx, wx, B*C] (channel b*C + c); filter [hz, wz, B*C, 1].
  x_folded = tf.reshape(tf.transpose(x, [1, 2, 0, 3]),
                        tf.stack([1, xs[1], xs[2], batch * channels]))
  z_folded = tf.reshape(tf.transpose(z, [1, 2, 0, 3]),
                        tf.stack([zs[1], zs[2], batch * channels, 1]))
  out = tf.nn.depthwise_conv2d(x_folded, z_folded, strides=[1, 1, 1, 1],
                               padding='VALID')  # [1, ho, wo, B*C]
  os_ = tf.shape(out)
  out = tf.reshape(out, tf.stack([os_[1], os_[2], batch, channels]))
  return tf.transpose(tf.reduce_sum(out, axis=-1), [2, 0, 1])


@tf_keras.utils.register_keras_serializable(package='ConstCL')
class SiamFCHead(tf_keras.layers.Layer):
  """score = out_scale * (phi(z) * phi(x)) + bias, `[B, ho, wo]` logits.

  As the MATLAB release's 'adjust' layer: a 1x1 affine map with gain fixed
  at 1e-3 (learning rate 0) and a learned bias initialised at 0. Set
  `trainable_scale=True` to learn the gain as well.
  """

  def __init__(self, out_scale: float = 0.001, trainable_scale: bool = False,
               **kwargs):
    super().__init__(**kwargs)
    self._out_scale = float(out_scale)
    self._trainable_scale = bool(trainable_scale)

  def build(self, input_shape):
    self.scale = self.add_weight(
        name='scale', shape=(),
        initializer=tf_keras.initializers.Constant(self._out_scale),
        trainable=self._trainable_scale)
    self.bias = self.add_weight(name='bias', shape=(), initializer='zeros',
                                trainable=True)
    super().build(input_shape)

  def call(self, inputs, training=None):
    exemplar_features, search_features = inputs
    xcorr = cross_correlation(exemplar_features, search_features)
    return (tf.cast(self.scale, xcorr.dtype) * xcorr +
            tf.cast(self.bias, xcorr.dtype))

  def get_config(self) -> Dict[str, Any]:
    return {**super().get_config(), 'out_scale': self._out_scale,
            'trainable_scale': self._trainable_scale}
