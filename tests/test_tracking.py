"""Tracking embeddings of the 3D backbone (supplementary §3.3)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official_projects_const_cl.modeling import tracking_embedder


def test_neighbor_indices_repeat_edge_frames():
  np.testing.assert_array_equal(tracking_embedder.neighbor_indices(0, 10),
                                [0, 0, 0, 1, 2])
  np.testing.assert_array_equal(tracking_embedder.neighbor_indices(5, 10),
                                [3, 4, 5, 6, 7])
  np.testing.assert_array_equal(tracking_embedder.neighbor_indices(9, 10),
                                [7, 8, 9, 9, 9])
  np.testing.assert_array_equal(tracking_embedder.neighbor_indices(0, 1),
                                [0, 0, 0, 0, 0])
  with pytest.raises(ValueError, match='outside'):
    tracking_embedder.neighbor_indices(10, 10)


def _embedder():
  model_cfg = exp_factory.get_exp_config('const_cl_pretrain_demo').task.model
  specs = tf_keras.layers.InputSpec(shape=[None, 5, None, None, 3])
  return tracking_embedder.build_tracking_embedder(specs, model_cfg)


def test_embedding_is_the_center_slice_at_stride_8():
  embedder = _embedder()
  assert embedder.backbone.get_config()['tracking_dilation']
  assert not embedder.backbone.get_config()['branch_res5']
  frames = tf.random.uniform([2, 5, 64, 48, 3], seed=3)
  out = embedder(frames, training=False)
  assert out.shape == (2, 8, 6, 512)  # Demo res5: 4 x 128 channels.
  res5 = embedder.backbone(frames, training=False)['res5']
  assert res5.shape[1] == 3  # 5 frames, stem temporal stride 2.
  np.testing.assert_allclose(out.numpy(), res5[:, 1].numpy(), atol=1e-6)
  # The neighbours matter: changing the first frame changes the embedding.
  other = tf.concat([tf.zeros_like(frames[:, :1]), frames[:, 1:]], axis=1)
  assert not np.allclose(embedder(other, training=False).numpy(), out.numpy())
