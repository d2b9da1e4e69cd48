"""The ConST-CL head g(h, F'c): a transformer decoder (paper §3.2, eq. 5;
§4.1; supplementary Table 2).

Query tokens are the region features h of the source view `[B, N, C]`;
key/value tokens are the context features F'c of the target view `[B, M, C]`
(all voxels of `context_length` frames). Fixed spatio-temporal positional
encodings are added to the query, key and value tokens (§4.1). The queries
are projected to `hidden_channels`; each of `num_layers` post-LN decoder layers
applies multi-head cross-attention whose key/value projections read the raw
C-dimensional context tokens, a residual + LayerNorm, a ReLU FFN and another
residual + LayerNorm; no dropout in ConST-CL (`dropout_rate` serves the
action transformer head of the localization task, which reuses this layer). A final linear layer maps back to
`output_channels` = C, the space of the targets h'.

With C = 2048, hidden 128, 3 heads of key/value size 128, FFN 2048 and 3
layers the head holds 7,124,736 parameters and the full model 71,956,032
(paper Table 6: 71.7M).
"""

from typing import Any, Dict, List, Optional, Tuple, Union

import tensorflow as tf
import tf_keras

from official.modeling import tf_utils
from official_projects_const_cl.modeling import positional_encoding
from official_projects_const_cl.modeling import serialization


def context_frame_indices(num_frames: int, context_length: int) -> List[int]:
  """Feature-map time slices that form the context F'c.

  Indices `floor((k + 0.5) * T' / L)` for k < L: distinct, evenly spread and
  centered on the clip (the middle one is the center slice T' // 2), unlike
  an integer stride `T' // L`, which is 0 when L > T' and then repeats the key
  frame L times (docs/choices.md).

  Args:
    num_frames: T', the feature-map time length.
    context_length: L, an odd number in [1, T'].

  Returns:
    L sorted distinct indices in [0, T').

  Raises:
    ValueError: if L is not an odd integer in [1, T'].
  """
  where = 'context_length'
  if isinstance(context_length, bool) or not isinstance(context_length, int):
    raise ValueError(f'{where} must be an int, got {context_length!r}.')
  if context_length < 1:
    raise ValueError(f'{where} must be >= 1 (0 means the MLP head, no '
                     f'context), got {context_length}.')
  if context_length % 2 == 0:
    raise ValueError(f'{where} must be odd so that the context is centered on '
                     f'the clip (paper: 1, 3 or 5), got {context_length}.')
  if context_length > num_frames:
    raise ValueError(
        f'{where}={context_length} exceeds the {num_frames} time slices of the '
        'feature map; the context frames must be distinct. Use a shorter '
        'context or more input frames.')
  return [((2 * k + 1) * num_frames) // (2 * context_length)
          for k in range(context_length)]


@tf_keras.utils.register_keras_serializable(package='ConstCL')
class InstanceReconstructor(tf_keras.layers.Layer):
  """Transformer-decoder head reconstructing h' from h and the context F'c."""

  def __init__(self,
               num_layers: int = 3,
               num_heads: int = 3,
               hidden_channels: int = 128,
               ffn_channels: int = 2048,
               output_channels: int = 2048,
               activation: str = 'relu',
               norm_epsilon: float = 1e-6,
               dropout_rate: float = 0.0,
               max_frequency: float = positional_encoding.DEFAULT_MAX_FREQUENCY,
               kernel_initializer: str = 'glorot_uniform',
               kernel_regularizer: Optional[
                   tf_keras.regularizers.Regularizer] = None,
               bias_regularizer: Optional[
                   tf_keras.regularizers.Regularizer] = None,
               **kwargs):
    """Initializes the head.

    Args:
      num_layers: Number of decoder layers.
      num_heads: Attention heads per layer.
      hidden_channels: d_model, also the key/value size of each head.
      ffn_channels: Inner width of the feed-forward blocks.
      output_channels: Width of the final projection (the target space).
      activation: Activation of the feed-forward blocks.
      norm_epsilon: LayerNorm epsilon.
      dropout_rate: Dropout on the attention and feed-forward outputs before
        each residual (0 in ConST-CL; 0.3 in the action transformer head of
        Girdhar et al.).
      max_frequency: Highest frequency of the positional encodings.
      kernel_initializer: Initializer of all kernels.
      kernel_regularizer: Regularizer of all kernels.
      bias_regularizer: Regularizer of all biases.
      **kwargs: Passed to `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._num_layers = num_layers
    self._num_heads = num_heads
    self._hidden_channels = hidden_channels
    self._ffn_channels = ffn_channels
    self._output_channels = output_channels
    self._activation = activation
    self._norm_epsilon = norm_epsilon
    self._dropout_rate = dropout_rate
    self._max_frequency = max_frequency
    self._kernel_initializer = kernel_initializer
    self._kernel_regularizer = kernel_regularizer
    self._bias_regularizer = bias_regularizer

    def dense(units, name, activation=None):
      return tf_keras.layers.Dense(
          units,
          activation=activation,
          kernel_initializer=tf_utils.clone_initializer(kernel_initializer),
          kernel_regularizer=kernel_regularizer,
          bias_regularizer=bias_regularizer,
          dtype=self.dtype_policy,
          name=name)

    def layer_norm(name):
      return tf_keras.layers.LayerNormalization(
          epsilon=norm_epsilon, dtype=self.dtype_policy, name=name)

    self._query_projection = dense(hidden_channels, 'query_projection')
    self._attention = []
    self._attention_norm = []
    self._ffn_inner = []
    self._ffn_outer = []
    self._ffn_norm = []
    for i in range(num_layers):
      self._attention.append(tf_keras.layers.MultiHeadAttention(
          num_heads=num_heads,
          key_dim=hidden_channels,
          value_dim=hidden_channels,
          dropout=0.0,
          kernel_initializer=tf_utils.clone_initializer(kernel_initializer),
          kernel_regularizer=kernel_regularizer,
          bias_regularizer=bias_regularizer,
          dtype=self.dtype_policy,
          name=f'cross_attention_{i}'))
      self._attention_norm.append(layer_norm(f'attention_norm_{i}'))
      self._ffn_inner.append(
          dense(ffn_channels, f'ffn_inner_{i}',
                activation=tf_utils.get_activation(activation)))
      self._ffn_outer.append(dense(hidden_channels, f'ffn_outer_{i}'))
      self._ffn_norm.append(layer_norm(f'ffn_norm_{i}'))
    self._output_projection = dense(output_channels, 'output_projection')
    self._dropout = tf_keras.layers.Dropout(dropout_rate,
                                            dtype=self.dtype_policy)

  def _add_positions(self, tokens: tf.Tensor,
                     positions: Optional[tf.Tensor]) -> tf.Tensor:
    tokens = tf.cast(tokens, self.compute_dtype)
    if positions is None:
      return tokens
    encoding = positional_encoding.st_positional_encoding(
        positions, tokens.shape[-1], self._max_frequency)
    return tokens + tf.cast(encoding, tokens.dtype)

  def call(self,
           query: tf.Tensor,
           context: tf.Tensor,
           query_positions: Optional[tf.Tensor] = None,
           context_positions: Optional[tf.Tensor] = None,
           context_mask: Optional[tf.Tensor] = None,
           training: Optional[bool] = None,
           return_attention_scores: bool = False
           ) -> Union[tf.Tensor, Tuple[tf.Tensor, tf.Tensor]]:
    """Reconstructs the target-view representation of each query region.

    Args:
      query: `[B, N, C]` region features h of the source view.
      context: `[B, M, C']` context features F'c of the target view.
      query_positions: Optional `[B, N, 3]` normalized (t, y, x) of the
        regions; their encoding is added to the query tokens.
      context_positions: Optional `[B, M, 3]` or `[M, 3]` normalized (t, y, x)
        of the context voxels; their encoding is added to the key/value tokens.
      context_mask: Optional `[B, M]` 1 = attend, 0 = ignore.
      training: Training mode.
      return_attention_scores: Also return the attention probabilities.

    Returns:
      z `[B, N, output_channels]`, and if asked the attention probabilities
      `[B, num_layers, num_heads, N, M]` (each sums to 1 over M).
    """
    query = self._add_positions(query, query_positions)
    context = self._add_positions(context, context_positions)
    attention_mask = None
    if context_mask is not None:
      attention_mask = tf.cast(context_mask, tf.bool)[:, None, :]
      attention_mask = tf.broadcast_to(
          attention_mask,
          tf.stack([tf.shape(query)[0], tf.shape(query)[1],
                    tf.shape(context)[1]]))
    x = self._query_projection(query)
    scores = []
    for i in range(self._num_layers):
      attended, layer_scores = self._attention[i](
          x, context, context, attention_mask=attention_mask,
          return_attention_scores=True, training=training)
      scores.append(layer_scores)
      attended = self._dropout(attended, training=training)
      x = self._attention_norm[i](x + attended)
      transformed = self._ffn_outer[i](self._ffn_inner[i](x))
      transformed = self._dropout(transformed, training=training)
      x = self._ffn_norm[i](x + transformed)
    z = self._output_projection(x)
    if return_attention_scores:
      return z, tf.stack(scores, axis=1)
    return z

  @property
  def output_channels(self) -> int:
    return self._output_channels

  def get_config(self) -> Dict[str, Any]:
    config = {
        'num_layers': self._num_layers,
        'num_heads': self._num_heads,
        'hidden_channels': self._hidden_channels,
        'ffn_channels': self._ffn_channels,
        'output_channels': self._output_channels,
        'activation': self._activation,
        'norm_epsilon': self._norm_epsilon,
        'dropout_rate': self._dropout_rate,
        'max_frequency': self._max_frequency,
        'kernel_initializer': self._kernel_initializer,
        **serialization.serialize_regularizers(self._kernel_regularizer,
                                               self._bias_regularizer),
    }
    return {**super().get_config(), **config}

  @classmethod
  def from_config(cls, config: Dict[str, Any]):
    config = serialization.deserialize_regularizers(config)
    return cls(**config)
