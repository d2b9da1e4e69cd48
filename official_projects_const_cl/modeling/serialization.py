"""`get_config` / `from_config` helpers shared by the backbone and the heads."""

from typing import Any, Dict, Mapping, Optional

import tf_keras

_REGULARIZER_KEYS = ('kernel_regularizer', 'bias_regularizer')


def serialize_regularizers(kernel_regularizer, bias_regularizer
                           ) -> Dict[str, Any]:
  """JSON-safe config entries for the two regularizers (None stays None)."""
  ser = lambda r: tf_keras.regularizers.serialize(r) if r else None
  return {'kernel_regularizer': ser(kernel_regularizer),
          'bias_regularizer': ser(bias_regularizer)}


def deserialize_regularizers(config: Mapping[str, Any],
                             custom_objects: Optional[Mapping[str, Any]] = None
                             ) -> Dict[str, Any]:
  """A copy of `config` with its regularizer entries turned back to objects."""
  config = dict(config)
  for key in _REGULARIZER_KEYS:
    if config.get(key) is not None:
      config[key] = tf_keras.regularizers.deserialize(
          config[key], custom_objects=custom_objects)
  return config
