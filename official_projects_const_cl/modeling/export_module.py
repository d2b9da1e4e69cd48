"""SavedModel export of a pretrained backbone (Model Garden export library).

`BackboneExportModule` is an `official.core.export_base.ExportModule` whose
serving signature takes a batch of clips and returns what downstream users
of the pretrained network need (paper §3.4: res5_g for clip-level tasks,
res5_r for region-level ones):

- `pooled_<e>` float32 `[B, C]` for e in res5_g / res5_r (res5 for a CVRL
  backbone): the global average over T', H', W' of the endpoint, the
  feature the kNN probe and retrieval use;
- `<e>` float32 `[B, T', H', W', C]` for every backbone endpoint (res2, res3,
  res4, res5_g, res5_r): the endpoint maps.

Input `clips` `[B, T, H, W, 3]` at the training clip shape: uint8 in
[0, 255], or float32 in [0, 1] (what the input pipeline feeds the model,
dataloaders/pretrain_input.py); uint8 clips are divided by 255. The
`serving_default` signature takes the chosen input type; `serving_uint8`
and `serving_float32` are both always there. The
backbone runs in inference mode (BatchNorm moving statistics).
"""

from typing import Any, Dict, Mapping, Optional, Sequence

import tensorflow as tf
import tf_keras

from official.core import export_base

INPUT_TYPES = ('uint8', 'float32')
# Function keys of `get_inference_signatures`: clips of each input type,
# and 'clips' for those of the module's `input_type`.
FUNCTION_KEYS = {t: f'clips_{t}' for t in INPUT_TYPES}
DEFAULT_FUNCTION_KEY = 'clips'
CLIPS_INPUT_NAME = 'clips'
POOLED_PREFIX = 'pooled_'
# Endpoints whose global average is also output, when the backbone has them.
POOLED_ENDPOINTS = ('res5_g', 'res5_r', 'res5')


def clips_to_float(clips: tf.Tensor) -> tf.Tensor:
  """uint8 [0, 255] or float [0, 1] clips -> float32 [0, 1] (same shape)."""
  if clips.dtype == tf.uint8:
    return tf.cast(clips, tf.float32) / 255.0
  return tf.cast(clips, tf.float32)


def backbone_features(images: tf.Tensor, model: tf_keras.Model
                     ) -> Dict[str, tf.Tensor]:
  """Endpoint maps and pooled res5 features of float32 [0, 1] clips.

  The `inference_step` of `BackboneExportModule` (hence the `model` name).

  Args:
    images: float32 `[B, T, H, W, 3]` in [0, 1].
    model: a backbone returning a dict of `[B, T', H', W', C]` endpoints.

  Returns:
    float32 `{endpoint: map, 'pooled_<res5 endpoint>': [B, C]}` (module doc).
  """
  endpoints = model(images, training=False)
  outputs = {name: tf.cast(x, tf.float32) for name, x in endpoints.items()}
  for name in POOLED_ENDPOINTS:
    if name in outputs:
      outputs[POOLED_PREFIX + name] = tf.reduce_mean(outputs[name],
                                                     axis=[1, 2, 3])
  return outputs


class BackboneExportModule(export_base.ExportModule):
  """Serves the endpoints and pooled res5 features of a clip batch."""

  def __init__(self,
               params: Any,
               model: tf_keras.Model,
               clip_shape: Sequence[int],
               input_type: str = 'uint8',
               batch_size: Optional[int] = None):
    """Initializes the module.

    Args:
      params: the experiment config (kept as Model Garden's modules do).
      model: the backbone (restored).
      clip_shape: (T, H, W) of the clips the signature takes.
      input_type: 'uint8' (0..255) or 'float32' (0..1).
      batch_size: fixed batch size of the signature; None = any.

    Raises:
      ValueError: an unknown `input_type` or a bad `clip_shape`.
    """
    if input_type not in INPUT_TYPES:
      raise ValueError(f'input_type must be one of {INPUT_TYPES}, got '
                       f'{input_type!r}.')
    if len(clip_shape) != 3 or any(int(s) < 1 for s in clip_shape):
      raise ValueError(f'clip_shape must be (T, H, W), got {clip_shape}.')
    super().__init__(params, model, inference_step=backbone_features)
    self._clip_shape = [int(s) for s in clip_shape]
    self._input_type = input_type
    self._batch_size = batch_size

  @property
  def input_signature(self) -> tf.TensorSpec:
    """The clips of the default signature (`input_type`)."""
    return self.clips_spec(self._input_type)

  def clips_spec(self, input_type: str) -> tf.TensorSpec:
    return tf.TensorSpec([self._batch_size] + self._clip_shape + [3],
                         tf.dtypes.as_dtype(input_type),
                         name=CLIPS_INPUT_NAME)

  @property
  def function_keys(self) -> Dict[str, str]:
    """{function key: signature name}: `serving_default` (`input_type`),
    `serving_uint8` and `serving_float32`."""
    keys = {DEFAULT_FUNCTION_KEY:
                tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY}
    for input_type in INPUT_TYPES:
      keys[FUNCTION_KEYS[input_type]] = f'serving_{input_type}'
    return keys

  def serve(self, clips: tf.Tensor) -> Mapping[str, tf.Tensor]:
    """Features of `clips` [B, T, H, W, 3] (module doc)."""
    return self.inference_step(clips_to_float(clips))

  @tf.function
  def serve_clips(self, clips: tf.Tensor) -> Mapping[str, tf.Tensor]:
    return self.serve(clips)

  def get_inference_signatures(self, function_keys: Dict[str, str]
                               ) -> Dict[str, Any]:
    """{signature name: concrete function} for {'clips_<type>': name}."""
    types = {key: t for t, key in FUNCTION_KEYS.items()}
    types[DEFAULT_FUNCTION_KEY] = self._input_type
    signatures = {}
    for key, name in function_keys.items():
      if key not in types:
        raise ValueError(f'unknown function key {key!r}; this module serves '
                         f'{sorted(types)}.')
      signatures[name] = self.serve_clips.get_concrete_function(
          self.clips_spec(types[key]))
    return signatures


def export(module: BackboneExportModule, export_dir: str) -> str:
  """Writes `module` as a SavedModel to `export_dir` (not timestamped).

  The weights must already be in the module's model (no checkpoint is read
  here: the caller restores them with the checked loading of
  `checkpoint_loading`).

  Returns:
    The export directory.
  """
  return export_base.export(
      module, module.function_keys, export_dir, checkpoint_path=None,
      timestamped=False)
