"""SiamFC on the frame-stack embedder of the 3D backbone (supp. §3.3).

response = SiamFC head(phi(z), phi(x)); both branches share the embedder.
`make_tracker` wraps a model into the GOT-10k-compatible `SiamFCTracker`.
"""

from typing import Mapping, Optional

import tensorflow as tf
import tf_keras

from official_projects_const_cl.configs import siamfc as siamfc_cfg
from official_projects_const_cl.modeling import siamfc_tracker
from official_projects_const_cl.modeling import tracking_embedder
from official_projects_const_cl.modeling.heads import siamfc_head


class SiamFCModel(tf_keras.Model):
  """Frame-stack embedder shared by both branches + SiamFC head."""

  def __init__(self, embedder: tracking_embedder.TrackingEmbedder,
               head: siamfc_head.SiamFCHead, **kwargs):
    super().__init__(**kwargs)
    self._embedder = embedder
    self._head = head

  @property
  def embedder(self) -> tracking_embedder.TrackingEmbedder:
    return self._embedder

  @property
  def head(self) -> siamfc_head.SiamFCHead:
    return self._head

  @property
  def checkpoint_items(self):
    return {'backbone': self._embedder.backbone}

  def build_heads(self) -> None:
    """Creates the SiamFC head's scale and bias (they take no shape)."""
    if not self._head.built:
      with tf.name_scope(self.name), tf.name_scope(self._head.name):
        self._head.build(tf.TensorShape(None))
    self.built = True

  def call(self, inputs: Mapping[str, tf.Tensor],
           training: Optional[bool] = None) -> tf.Tensor:
    """Response logits [B, h, w] of 'exemplar' / 'search' [B, 2n+1, ...]."""
    z = self._embedder(inputs['exemplar'], training=training)
    x = self._embedder(inputs['search'], training=training)
    return self._head((z, x))


def make_tracker(model: SiamFCModel, config: siamfc_cfg.SiamFCConfig,
                 name: str = 'ConST-CL') -> siamfc_tracker.SiamFCTracker:
  """A GOT-10k-toolkit-compatible tracker on the model's embedding.

  The tracker hands crops with frame pixel values (0..255); the backbone
  reads [0, 1] like in pretraining.
  """
  @tf.function(reduce_retracing=True)
  def embed_crops(crops):
    return model.embedder(crops / 255.0, training=False)

  def embed(crops):
    return embed_crops(tf.convert_to_tensor(crops, tf.float32))

  return siamfc_tracker.SiamFCTracker(embed, config, head=model.head, name=name)
