"""Tests of the MLP head, the instance reconstructor g(h, F'c), the context
frame choice and the positional encodings."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official_projects_const_cl.modeling import positional_encoding as pe
from official_projects_const_cl.modeling.heads import instance_reconstructor
from official_projects_const_cl.modeling.heads import mlp

InstanceReconstructor = instance_reconstructor.InstanceReconstructor
context_frame_indices = instance_reconstructor.context_frame_indices


# ---------------------------------------------------------------- MLP head.


def test_mlp_paper_parameter_count():
  head = mlp.MLPHead()  # 2048 -> 3 x 2048 -> 128.
  head.build([None, 2048])
  assert head.count_params() == 12_875_904


def test_mlp_hand_computed():
  head = mlp.MLPHead(num_hidden_layers=1, num_hidden_channels=2,
                     num_output_channels=1, norm_epsilon=1e-3)
  head.build([None, 2])
  dense, bn, out = head._hidden_dense[0], head._hidden_norm[0], (
      head._output_dense)
  dense.set_weights([np.eye(2), np.zeros(2)])
  bn.set_weights([np.ones(2), np.zeros(2), np.zeros(2), np.ones(2)])
  out.set_weights([np.ones([2, 1]), np.array([0.5])])
  # Inference BN: x / sqrt(1 + eps); ReLU keeps the first unit only.
  y = head(tf.constant([[1.0, -2.0]]), training=False).numpy()
  np.testing.assert_allclose(y, [[1.0 / math.sqrt(1.001) + 0.5]], rtol=1e-6)


def test_mlp_rank3_is_per_token_with_bn_over_all_tokens():
  head = mlp.MLPHead(num_hidden_layers=2, num_hidden_channels=16,
                     num_output_channels=4)
  x = tf.random.normal([2, 5, 8])
  for training in (False, True):
    y3 = head(x, training=training)
    y2 = head(tf.reshape(x, [10, 8]), training=training)
    assert y3.shape == (2, 5, 4)
    np.testing.assert_allclose(tf.reshape(y3, [10, 4]), y2, rtol=1e-5,
                               atol=1e-5)


def test_mlp_config_round_trip():
  head = mlp.MLPHead(num_hidden_layers=2, num_hidden_channels=16,
                     num_output_channels=4, use_sync_bn=True,
                     kernel_regularizer=tf_keras.regularizers.L2(1e-6),
                     name='global_head')
  config = head.get_config()
  restored = mlp.MLPHead.from_config(json.loads(json.dumps(config)))
  assert restored.get_config() == config


# ------------------------------------------------------ context frame choice.


@pytest.mark.parametrize('frames,length,expected', [
    (8, 5, [0, 2, 4, 5, 7]),
    (8, 1, [4]),
    (8, 3, [1, 4, 6]),
    (4, 3, [0, 2, 3]),
    (5, 5, [0, 1, 2, 3, 4]),
    (2, 1, [1]),
])
def test_context_frame_indices(frames, length, expected):
  assert context_frame_indices(frames, length) == expected


def test_context_frames_distinct_spread_and_centered():
  for frames in range(1, 17):
    for length in range(1, frames + 1, 2):
      idx = context_frame_indices(frames, length)
      assert len(set(idx)) == length
      assert idx == sorted(idx) and 0 <= idx[0] and idx[-1] < frames
      assert idx[length // 2] == frames // 2
      gaps = np.diff(idx)
      assert gaps.size == 0 or gaps.max() - gaps.min() <= 1


@pytest.mark.parametrize('frames,length,match', [
    (4, 5, 'exceeds the 4 time slices'),
    (8, 2, 'must be odd'),
    (8, 0, 'must be >= 1'),
    (8, -1, 'must be >= 1'),
    (8, 3.0, 'must be an int'),
    (8, True, 'must be an int'),
])
def test_context_frame_indices_errors(frames, length, match):
  with pytest.raises(ValueError, match=match):
    context_frame_indices(frames, length)


# ------------------------------------------------------ positional encoding.


def test_positional_encoding_hand_computed():
  # dim 8 -> t: 2 (frequency 1), y: 2 (frequency 1), x: 4 (frequencies 1, 32).
  assert pe.split_dims(8) == (2, 2, 4)
  assert pe.split_dims(2048) == (512, 768, 768)
  got = pe.st_positional_encoding(tf.constant([0.25, 0.5, 0.125]), 8).numpy()
  s = math.sqrt(0.5)
  expected = [1.0, 0.0,            # t: sin(pi/2), cos(pi/2)
              0.0, -1.0,           # y: sin(pi), cos(pi)
              s, 0.0, s, 1.0]      # x: sin(pi/4), sin(8 pi), cos(..)
  np.testing.assert_allclose(got, expected, atol=1e-5)
  with pytest.raises(ValueError, match='even and >= 8'):
    pe.split_dims(6)


def test_grid_and_box_encodings():
  coords = pe.grid_coordinates(8, 2, 4, frame_indices=[1, 6]).numpy()
  assert coords.shape == (2, 2, 4, 3)
  np.testing.assert_allclose(coords[1, 0, 3], [6.5 / 8, 0.25, 3.5 / 4])
  grid = pe.grid_positional_encoding(8, 2, 4, 16, frame_indices=[1, 6])
  np.testing.assert_allclose(
      grid, pe.st_positional_encoding(coords, 16), atol=1e-6)
  boxes = tf.constant([[[0.0, 0.2, 0.5, 0.6]], [[0.5, 0.5, 1.0, 1.0]]])
  box_coords = pe.box_coordinates(boxes, tf.constant([3, 0]), 4).numpy()
  np.testing.assert_allclose(box_coords, [[[3.5 / 4, 0.25, 0.4]],
                                          [[0.5 / 4, 0.75, 0.75]]], atol=1e-6)
  assert pe.box_positional_encoding(boxes, tf.constant([3, 0]), 4,
                                    16).shape == (2, 1, 16)


# ------------------------------------------------------ instance reconstructor.


def _small_head(**kwargs):
  args = dict(num_layers=2, num_heads=2, hidden_channels=8, ffn_channels=16,
              output_channels=12)
  args.update(kwargs)
  return InstanceReconstructor(**args)


def test_reconstructor_paper_parameter_count():
  head = InstanceReconstructor()
  token = tf.zeros([1, 1, 2048])
  head(token, token)
  assert head.count_params() == 7_124_736


def test_reconstructor_shapes_and_attention_probabilities():
  head = _small_head()
  query, context = tf.random.normal([2, 3, 12]), tf.random.normal([2, 7, 12])
  z, scores = head(query, context, return_attention_scores=True)
  assert z.shape == (2, 3, 12)
  assert scores.shape == (2, 2, 2, 3, 7)  # [B, layers, heads, N, M].
  np.testing.assert_allclose(tf.reduce_sum(scores, -1), 1.0, atol=1e-5)
  np.testing.assert_allclose(head(query, context), z, atol=1e-6)


def test_reconstructor_matches_numpy_post_ln_decoder():
  head = _small_head(num_layers=1, num_heads=2, hidden_channels=4,
                     ffn_channels=6, output_channels=5)
  rng = np.random.default_rng(0)
  query = rng.normal(size=(1, 2, 5)).astype(np.float32)
  context = rng.normal(size=(1, 3, 5)).astype(np.float32)
  z = head(query, context).numpy()

  def layer_norm(x, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + eps)

  w = {v.name.split('/', 1)[1]: v.numpy() for v in head.weights}
  names = sorted(w)

  def get(key):
    return w[[n for n in names if key in n][0]]

  x = query[0] @ get('query_projection/kernel') + get('query_projection/bias')
  q = np.einsum('nd,dhk->hnk', x, get('query/kernel')) + get(
      'query/bias')[:, None]
  k = np.einsum('md,dhk->hmk', context[0], get('key/kernel')) + get(
      'key/bias')[:, None]
  v = np.einsum('md,dhk->hmk', context[0], get('value/kernel')) + get(
      'value/bias')[:, None]
  logits = np.einsum('hnk,hmk->hnm', q / math.sqrt(4), k)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  attended = np.einsum('hnm,hmk,hkd->nd', probs, v,
                       get('attention_output/kernel')) + get(
                           'attention_output/bias')
  x = layer_norm(x + attended)
  ffn = np.maximum(x @ get('ffn_inner_0/kernel') + get('ffn_inner_0/bias'), 0)
  x = layer_norm(x + ffn @ get('ffn_outer_0/kernel') + get('ffn_outer_0/bias'))
  expected = x @ get('output_projection/kernel') + get(
      'output_projection/bias')
  np.testing.assert_allclose(z[0], expected, rtol=1e-4, atol=1e-5)


def test_reconstructor_context_mask():
  head = _small_head()
  query, context = tf.random.normal([2, 3, 12]), tf.random.normal([2, 5, 12])
  mask = tf.constant([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], tf.float32)
  z, scores = head(query, context, context_mask=mask,
                   return_attention_scores=True)
  np.testing.assert_allclose(
      scores * (1.0 - mask[:, None, None, None, :]), 0.0, atol=1e-7)
  np.testing.assert_allclose(tf.reduce_sum(scores, -1), 1.0, atol=1e-5)
  # Changing masked-out tokens changes nothing.
  noisy = context + 10.0 * (1.0 - mask)[..., None]
  np.testing.assert_allclose(head(query, noisy, context_mask=mask), z,
                             atol=1e-5)


def test_reconstructor_positions_are_added_to_tokens():
  head = _small_head(num_layers=1)
  query, context = tf.random.normal([2, 3, 12]), tf.random.normal([2, 5, 12])
  q_pos = tf.random.uniform([2, 3, 3])
  c_pos = tf.random.uniform([5, 3])  # Shared by the batch.
  with_pos = head(query, context, query_positions=q_pos,
                  context_positions=c_pos)
  manual = head(query + pe.st_positional_encoding(q_pos, 12),
                context + pe.st_positional_encoding(c_pos, 12)[None])
  np.testing.assert_allclose(with_pos, manual, atol=1e-5)
  assert not np.allclose(with_pos, head(query, context), atol=1e-3)


def test_reconstructor_gradients_reach_query_and_context():
  head = _small_head()
  query = tf.Variable(tf.random.normal([2, 3, 12]))
  context = tf.Variable(tf.random.normal([2, 5, 12]))
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(head(query, context, training=True) ** 2)
  grads = tape.gradient(loss, [query, context] + head.trainable_variables)
  assert all(g is not None for g in grads)
  assert float(tf.reduce_min(tf.reduce_sum(tf.abs(grads[0]), -1))) > 0
  assert float(tf.reduce_min(tf.reduce_sum(tf.abs(grads[1]), -1))) > 0


def test_reconstructor_config_round_trip():
  head = _small_head(kernel_regularizer=tf_keras.regularizers.L2(1e-6),
                     name='region_head')
  query, context = tf.random.normal([1, 2, 12]), tf.random.normal([1, 4, 12])
  z = head(query, context)
  config = head.get_config()
  restored = InstanceReconstructor.from_config(json.loads(json.dumps(config)))
  assert restored.get_config() == config
  restored(query, context)
  restored.set_weights(head.get_weights())
  np.testing.assert_allclose(restored(query, context), z, atol=1e-6)
  assert len(restored.losses) == len(head.losses) > 0
