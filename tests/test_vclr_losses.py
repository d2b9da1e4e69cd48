"""Tests of official_projects_const_cl/losses/vclr.py.

Expected values are written by hand (2-video cases on unit vectors of the
plane, temperature 0.5) or computed by the NumPy transcriptions below of VCLR
§3.2 / eq. 2 / eq. 3 / §3.3 (explicit loops, independent of the TF code).
The distributed comparison (2 logical CPUs under MirroredStrategy against one
device on the global batch) runs in a subprocess: this file executed as a
script, as in test_losses_distributed.py.
"""

import itertools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from official_projects_const_cl.losses import contrastive
from official_projects_const_cl.losses import vclr

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TOL = 1e-5
TAU = 0.5  # hand cases: logits are 2 * cosine
E2 = math.exp(2.0)
EM2 = math.exp(-2.0)


# ------------------------------------------------------- NumPy references


def _normalize(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _nce(positive, negatives):
  """-log e^pos / (e^pos + sum e^neg), logits already divided by tau."""
  return -math.log(math.exp(positive) /
                   (math.exp(positive) + sum(math.exp(n) for n in negatives)))


def _np_video(anchor_clips, positive_clips, tau, queue=None):
  """§3.2: mean of the clip embeddings, normalized; loops over anchors."""
  a = _normalize(np.mean(np.asarray(anchor_clips, np.float64), axis=1))
  p = _normalize(np.mean(np.asarray(positive_clips, np.float64), axis=1))
  losses = []
  for i in range(len(a)):
    if queue is None:
      negatives = [a[i] @ p[j] / tau for j in range(len(a)) if j != i]
    else:
      negatives = [a[i] @ q / tau for q in _normalize(queue)]
    losses.append(_nce(a[i] @ p[i] / tau, negatives))
  return float(np.mean(losses))


def _np_inter(anchor, positives, tau, queue=None):
  """Eq. 2: one InfoNCE per positive, negatives the other videos' keys."""
  a, k = _normalize(anchor), _normalize(positives)
  losses = []
  for i in range(len(a)):
    if queue is None:
      negatives = [a[i] @ k[j, q] / tau for j in range(len(a)) if j != i
                   for q in range(k.shape[1])]
    else:
      negatives = [a[i] @ q / tau for q in _normalize(queue)]
    for p in range(k.shape[1]):
      losses.append(_nce(a[i] @ k[i, p] / tau, negatives))
  return float(np.mean(losses))


def _np_intra(anchor, positive, negatives, tau, separate=False):
  """Eq. 3: negatives only the other frames of the same video."""
  a, k, n = _normalize(anchor), _normalize(positive), _normalize(negatives)
  losses = []
  for i in range(len(a)):
    pos = a[i] @ k[i] / tau
    negs = [a[i] @ n[i, j] / tau for j in range(n.shape[1])]
    if separate:
      losses.extend(_nce(pos, [neg]) for neg in negs)
    else:
      losses.append(_nce(pos, negs))
  return float(np.mean(losses))


def _np_order(logits, labels):
  losses = []
  for row, label in zip(np.asarray(logits, np.float64), labels):
    losses.append(-math.log(math.exp(row[label]) /
                            sum(math.exp(v) for v in row)))
  return float(np.mean(losses))


def _random_case(seed=0, batch=3, clips=2, positives=3, negatives=2,
                 depth=5, queue_size=6):
  rng = np.random.default_rng(seed)

  def normal(*shape):
    return rng.normal(size=shape).astype(np.float32)

  return dict(
      anchor_clips=normal(batch, clips, depth),
      positive_clips=normal(batch, clips + 1, depth),
      inter_anchor=normal(batch, depth),
      inter_positives=normal(batch, positives, depth),
      intra_anchor=normal(batch, depth),
      intra_positive=normal(batch, depth),
      intra_negatives=normal(batch, negatives, depth),
      order_logits=normal(batch, 4),
      order_labels=rng.integers(0, 4, size=batch).astype(np.int32),
      video_queue=normal(queue_size, depth),
      inter_queue=normal(queue_size + 1, depth))


def _np_all(case, queues, separate=False):
  vq = case['video_queue'] if queues else None
  iq = case['inter_queue'] if queues else None
  return {
      'video': _np_video(case['anchor_clips'], case['positive_clips'], 0.1,
                         vq),
      'inter': _np_inter(case['inter_anchor'], case['inter_positives'], 0.1,
                         iq),
      'intra': _np_intra(case['intra_anchor'], case['intra_positive'],
                         case['intra_negatives'], 0.1, separate),
      'order': _np_order(case['order_logits'], case['order_labels']),
  }


def _tf_inputs(case, queues):
  inputs = {k: tf.constant(v) for k, v in case.items()}
  if not queues:
    inputs['video_queue'] = inputs['inter_queue'] = None
  return inputs


# --------------------------------------------------------- hand-computed


def test_video_in_batch_by_hand():
  # Tuple means: anchors e1 = mean([2,1],[0,-1]) and e2; positives e1, -e2.
  # Normalizing each clip before averaging would not give e1 here.
  anchor_clips = [[[2., 1.], [0., -1.]], [[0., 3.], [0., 1.]]]
  positive_clips = [[[1., 0.], [1., 0.]], [[1., -1.], [-1., -1.]]]
  out = vclr.video_infonce(anchor_clips, positive_clips, temperature=TAU)
  # a0: positive cos 1, negative p1 cos 0; a1: positive cos -1, p0 cos 0.
  expected = 0.5 * ((math.log(E2 + 1) - 2) + (math.log(EM2 + 1) + 2))
  np.testing.assert_allclose(out['loss'].numpy(), expected, rtol=1e-6)
  np.testing.assert_allclose(out['accuracy'].numpy(), 0.5)
  assert out['logits'].shape == (2, 1, 3)  # positive, then G = 2 videos
  np.testing.assert_allclose(out['keys'].numpy(), [[1, 0], [0, -1]],
                             atol=1e-7)
  np.testing.assert_allclose(out['anchor_embedding'].numpy(),
                             [[1, 0], [0, 1]], atol=1e-7)


def test_video_queue_by_hand():
  # Anchors e1, e2; positives e2, e2; queue rows normalize to e1, -e1. The
  # other video's positive is not a negative in this mode.
  anchor_clips = [[[2., 1.], [0., -1.]], [[0., 3.], [0., 1.]]]
  positive_clips = [[[0., 1.]], [[0., 4.]]]
  queue = [[3., 0.], [-1., 0.]]
  out = vclr.video_infonce(anchor_clips, positive_clips, temperature=TAU,
                           queue=queue)
  # a0: positive 0, queue 2, -2.  a1: positive 2, queue 0, 0.
  expected = 0.5 * (math.log(1 + E2 + EM2) + (math.log(E2 + 2) - 2))
  np.testing.assert_allclose(out['loss'].numpy(), expected, rtol=1e-6)
  np.testing.assert_allclose(out['accuracy'].numpy(), 0.5)
  assert out['logits'].shape == (2, 1, 3)


def test_inter_in_batch_by_hand():
  # a0 = e1 with positives (e1, e2); a1 = e2 with positives (-e1, e2).
  anchor = [[1., 0.], [0., 2.]]
  positives = [[[1., 0.], [0., 1.]], [[-3., 0.], [0., 1.]]]
  out = vclr.inter_frame_infonce(anchor, positives, temperature=TAU)
  expected = np.mean([
      math.log(E2 + EM2 + 1) - 2,  # a0, e1; negatives -e1, e2 of video 1
      math.log(2 + EM2),           # a0, e2
      math.log(2 + E2),            # a1, -e1; negatives e1, e2 of video 0
      math.log(1 + 2 * E2) - 2,    # a1, e2
  ])
  np.testing.assert_allclose(out['loss'].numpy(), expected, rtol=1e-6)
  # Only (a0, e1) beats all its negatives (ties do not count).
  np.testing.assert_allclose(out['accuracy'].numpy(), 0.25)
  assert out['logits'].shape == (2, 2, 5)  # positive, G * P = 4 negatives
  # Keys video-major: row b * P + p.
  np.testing.assert_allclose(out['keys'].numpy(),
                             [[1, 0], [0, 1], [-1, 0], [0, 1]], atol=1e-7)


def test_inter_queue_by_hand():
  anchor = [[1., 0.], [0., 2.]]
  positives = [[[1., 0.], [0., 1.]], [[0., 1.], [0., -1.]]]
  queue = [[-2., 0.], [0., 5.]]  # -e1, e2
  out = vclr.inter_frame_infonce(anchor, positives, temperature=TAU,
                                 queue=queue)
  expected = np.mean([
      math.log(E2 + EM2 + 1) - 2,   # a0, e1; queue -2, 0
      math.log(2 + EM2),            # a0, e2
      math.log(1 + 2 * E2) - 2,     # a1, e2; queue 0, 2
      math.log(EM2 + 1 + E2) + 2,   # a1, -e2
  ])
  np.testing.assert_allclose(out['loss'].numpy(), expected, rtol=1e-6)
  np.testing.assert_allclose(out['accuracy'].numpy(), 0.25)
  assert out['logits'].shape == (2, 2, 3)


def test_intra_by_hand():
  anchor = [[1., 0.], [0., 1.]]
  positive = [[2., 0.], [1., 0.]]
  negatives = [[[0., 1.], [-1., 0.]], [[0., 3.], [1., 0.]]]
  out = vclr.intra_frame_infonce(anchor, positive, negatives,
                                 temperature=TAU)
  # v0: positive 2, negatives 0, -2 (its own frames only).
  # v1: positive 0, negatives 2, 0.
  expected = 0.5 * ((math.log(E2 + 1 + EM2) - 2) + math.log(2 + E2))
  np.testing.assert_allclose(out['loss'].numpy(), expected, rtol=1e-6)
  np.testing.assert_allclose(out['accuracy'].numpy(), 0.5)
  assert out['logits'].shape == (2, 3)

  separate = vclr.intra_frame_infonce(anchor, positive, negatives,
                                      temperature=TAU,
                                      separate_negatives=True)
  expected = np.mean([math.log(E2 + 1) - 2, math.log(E2 + EM2) - 2,
                      math.log(1 + E2), math.log(2)])
  np.testing.assert_allclose(separate['loss'].numpy(), expected, rtol=1e-6)
  np.testing.assert_allclose(separate['accuracy'].numpy(), 0.5)
  assert separate['logits'].shape == (2, 2, 2)


def test_intra_ignores_other_videos():
  # Eq. 3 has no cross-video negatives: changing video 1's frames leaves
  # video 0's logits alone (the in-batch terms would change).
  case = _random_case(2)
  args = [case['intra_anchor'], case['intra_positive'],
          case['intra_negatives']]
  moved = [x.copy() for x in args]
  for x in moved:
    x[1:] = -3 * x[1:] + 1
  logits = vclr.intra_frame_infonce(*args)['logits'].numpy()
  logits_moved = vclr.intra_frame_infonce(*moved)['logits'].numpy()
  np.testing.assert_allclose(logits_moved[0], logits[0], rtol=1e-6)
  assert np.abs(logits_moved[1:] - logits[1:]).max() > 0.1


def test_order_by_hand():
  logits = [[0., math.log(3.), 0., 0.], [2., 0., 0., 0.]]
  out = vclr.temporal_order_loss(logits, [1, 3])
  np.testing.assert_allclose(out['loss'].numpy(),
                             0.5 * (math.log(2) + math.log(E2 + 3)),
                             rtol=1e-6)
  np.testing.assert_allclose(out['accuracy'].numpy(), 0.5)


def test_order_label_encoding():
  anchor = tf.constant([False, True, False, True])
  positive = tf.constant([False, False, True, True])
  np.testing.assert_array_equal(
      vclr.order_label(anchor, positive).numpy(),
      [vclr.ORDER_BOTH_ORDERED, vclr.ORDER_ANCHOR_SHUFFLED,
       vclr.ORDER_POSITIVE_SHUFFLED, vclr.ORDER_BOTH_SHUFFLED])
  np.testing.assert_array_equal(vclr.order_label(anchor, positive).numpy(),
                                [0, 1, 2, 3])


# ------------------------------------------------------- NumPy reference


@pytest.mark.parametrize('seed', [0, 1])
@pytest.mark.parametrize('queues', [False, True], ids=['in_batch', 'queue'])
def test_every_term_matches_numpy(seed, queues):
  case = _random_case(seed)
  expected = _np_all(case, queues)
  out = vclr.vclr_loss(**_tf_inputs(case, queues))
  for term, value in expected.items():
    np.testing.assert_allclose(out[f'{term}_loss'].numpy(), value, rtol=1e-5,
                               err_msg=term)
  np.testing.assert_allclose(out['total_loss'].numpy(),
                             sum(expected.values()), rtol=1e-5)


def test_intra_separate_matches_numpy():
  case = _random_case(3)
  out = vclr.intra_frame_infonce(case['intra_anchor'], case['intra_positive'],
                                 case['intra_negatives'],
                                 separate_negatives=True)
  np.testing.assert_allclose(
      out['loss'].numpy(),
      _np_intra(case['intra_anchor'], case['intra_positive'],
                case['intra_negatives'], 0.1, separate=True), rtol=1e-5)


def test_losses_are_scale_invariant():
  case = _random_case(4)
  out = vclr.vclr_loss(**_tf_inputs(case, True))
  scaled = dict(case)
  for key in ('anchor_clips', 'positive_clips', 'inter_anchor',
              'intra_negatives', 'video_queue', 'inter_queue'):
    scaled[key] = case[key] * 3.5
  out_scaled = vclr.vclr_loss(**_tf_inputs(scaled, True))
  np.testing.assert_allclose(out_scaled['total_loss'].numpy(),
                             out['total_loss'].numpy(), rtol=1e-5)


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16])
def test_low_precision_inputs_give_float32(dtype):
  case = _random_case(5)
  inputs = _tf_inputs(case, True)
  low = {k: (tf.cast(v, dtype) if v is not None and v.dtype.is_floating
             else v) for k, v in inputs.items()}
  out = vclr.vclr_loss(**low)
  rounded = {k: (tf.cast(v, tf.float32) if v is not None and
                 v.dtype.is_floating else v) for k, v in low.items()}
  reference = vclr.vclr_loss(**rounded)
  for key in ('total_loss', 'video_loss', 'inter_loss', 'intra_loss',
              'order_loss'):
    assert out[key].dtype == tf.float32
    np.testing.assert_allclose(out[key].numpy(), reference[key].numpy(),
                               rtol=1e-6)


# -------------------------------------------------------------- switches

_TERMS = ('video', 'inter', 'intra', 'order')
_INPUTS = {
    'video': ('anchor_clips', 'positive_clips'),
    'inter': ('inter_anchor', 'inter_positives'),
    'intra': ('intra_anchor', 'intra_positive', 'intra_negatives'),
    'order': ('order_logits', 'order_labels'),
}
_SUBSETS = [s for r in range(1, 5) for s in itertools.combinations(_TERMS, r)]


@pytest.mark.parametrize('enabled', _SUBSETS,
                         ids=['+'.join(s) for s in _SUBSETS])
def test_total_is_sum_of_enabled_terms(enabled):
  case = _random_case(6)
  expected = _np_all(case, queues=False)
  inputs = _tf_inputs(case, queues=False)
  for term in _TERMS:  # a switched-off term needs no inputs
    if term not in enabled:
      for name in _INPUTS[term]:
        inputs[name] = None
  out = vclr.vclr_loss(**inputs,
                       **{f'use_{t}': t in enabled for t in _TERMS})
  np.testing.assert_allclose(out['total_loss'].numpy(),
                             sum(expected[t] for t in enabled), rtol=1e-5)
  for term in _TERMS:
    if term in enabled:
      np.testing.assert_allclose(out[f'{term}_loss'].numpy(), expected[term],
                                 rtol=1e-5)
    else:
      assert out[f'{term}_loss'].numpy() == 0.0
      assert out[f'{term}_accuracy'].numpy() == 0.0
  assert ('video_keys' in out) == ('video' in enabled)
  assert ('inter_keys' in out) == ('inter' in enabled)


def test_switches_reject_all_off_and_missing_inputs():
  with pytest.raises(ValueError, match='vclr_loss.*at least one'):
    vclr.vclr_loss(use_video=False, use_inter=False, use_intra=False,
                   use_order=False)
  case = _random_case(7)
  inputs = _tf_inputs(case, queues=False)
  inputs['intra_negatives'] = None
  with pytest.raises(ValueError, match=r'use_intra=True.*intra_negatives'):
    vclr.vclr_loss(**inputs)


# --------------------------------------------------------------- enqueue


def test_enqueue_newest_first_and_drops_the_oldest():
  queue = tf.constant([[1., 0.], [0., 1.], [-1., 0.]])
  keys = tf.constant([[0., 3.], [4., 3.]])
  new = vclr.enqueue(queue, keys)
  np.testing.assert_allclose(new.numpy(),
                             [[0., 1.], [0.8, 0.6], [1., 0.]], atol=1e-7)
  # Two more steps of one key: the FIFO keeps the 3 newest, newest first.
  new = vclr.enqueue(new, tf.constant([[0., -2.]]))
  new = vclr.enqueue(new, tf.constant([[-5., 0.]]))
  np.testing.assert_allclose(new.numpy(),
                             [[-1., 0.], [0., -1.], [0., 1.]], atol=1e-7)


def test_enqueue_more_keys_than_rows_keeps_the_first_rows():
  queue = tf.zeros([2, 2])
  keys = tf.constant([[1., 0.], [0., 1.], [-1., 0.]])
  np.testing.assert_allclose(vclr.enqueue(queue, keys).numpy(),
                             [[1., 0.], [0., 1.]], atol=1e-7)


def test_enqueue_has_no_gradient_and_checks_shapes():
  keys = tf.Variable([[1., 2.]])
  queue = tf.Variable(tf.ones([3, 2]))
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(vclr.enqueue(queue, keys))
  assert tape.gradient(total, [keys, queue]) == [None, None]
  with pytest.raises(ValueError, match='enqueue.*feature dims'):
    vclr.enqueue(tf.ones([3, 2]), tf.ones([1, 4]))
  with pytest.raises(ValueError, match='enqueue.*`keys`.*rank 2'):
    vclr.enqueue(tf.ones([3, 2]), tf.ones([1, 1, 2]))


def test_queue_gets_no_gradient():
  case = _random_case(8)
  queue = tf.Variable(case['video_queue'])
  clips = tf.Variable(case['anchor_clips'])
  with tf.GradientTape() as tape:
    loss = vclr.video_infonce(clips, case['positive_clips'],
                              queue=queue)['loss']
  grad_clips, grad_queue = tape.gradient(loss, [clips, queue])
  assert grad_queue is None
  assert np.abs(grad_clips.numpy()).max() > 1e-3


# ------------------------------------------------------------- gradients


@pytest.mark.parametrize('queues', [False, True], ids=['in_batch', 'queue'])
def test_video_gradient_matches_numpy_finite_difference(queues):
  rng = np.random.default_rng(9)
  anchor = rng.normal(size=(3, 2, 3))
  positive = rng.normal(size=(3, 2, 3))
  queue = rng.normal(size=(4, 3)) if queues else None
  tau = 0.3
  ta = tf.Variable(anchor, dtype=tf.float32)
  tp = tf.Variable(positive, dtype=tf.float32)
  with tf.GradientTape() as tape:
    loss = vclr.video_infonce(ta, tp, temperature=tau, queue=queue)['loss']
  grad_a, grad_p = tape.gradient(loss, [ta, tp])
  step = 1e-5
  for which, value, grad in ((0, anchor, grad_a), (1, positive, grad_p)):
    numeric = np.zeros_like(value)
    for index in np.ndindex(value.shape):
      plus, minus = value.copy(), value.copy()
      plus[index] += step
      minus[index] -= step
      args_plus = (plus, positive) if which == 0 else (anchor, plus)
      args_minus = (minus, positive) if which == 0 else (anchor, minus)
      numeric[index] = (_np_video(*args_plus, tau, queue) -
                        _np_video(*args_minus, tau, queue)) / (2 * step)
    assert np.abs(numeric).max() > 1e-2  # not vacuous
    np.testing.assert_allclose(grad.numpy(), numeric, atol=2e-4)


# ---------------------------------------------------------------- errors


def test_terms_reject_bad_input():
  with pytest.raises(ValueError, match='video_infonce.*temperature'):
    vclr.video_infonce(tf.ones([2, 3, 4]), tf.ones([2, 3, 4]), 0.0)
  with pytest.raises(ValueError, match='video_infonce.*anchor_clips.*rank 3'):
    vclr.video_infonce(tf.ones([2, 4]), tf.ones([2, 3, 4]))
  with pytest.raises(ValueError, match='video_infonce.*do not match'):
    vclr.video_infonce(tf.ones([2, 3, 4]), tf.ones([2, 3, 5]))
  with pytest.raises(ValueError, match='video_infonce.*`queue`'):
    vclr.video_infonce(tf.ones([2, 3, 4]), tf.ones([2, 3, 4]),
                       queue=tf.ones([5, 3]))
  with pytest.raises(ValueError, match='inter_frame_infonce.*do not match'):
    vclr.inter_frame_infonce(tf.ones([2, 4]), tf.ones([3, 2, 4]))
  with pytest.raises(ValueError, match='inter_frame_infonce.*positives'):
    vclr.inter_frame_infonce(tf.ones([2, 4]), tf.ones([2, 4]))
  with pytest.raises(ValueError, match='intra_frame_infonce.*negatives'):
    vclr.intra_frame_infonce(tf.ones([2, 4]), tf.ones([2, 4]),
                             tf.ones([2, 4]))
  with pytest.raises(ValueError, match='intra_frame_infonce.*do not match'):
    vclr.intra_frame_infonce(tf.ones([2, 4]), tf.ones([2, 3]),
                             tf.ones([2, 1, 4]))
  with pytest.raises(ValueError, match='temporal_order_loss.*4 columns'):
    vclr.temporal_order_loss(tf.ones([2, 3]), [0, 1])
  with pytest.raises(ValueError, match=r'temporal_order_loss.*\[0, 4\)'):
    vclr.temporal_order_loss(tf.ones([2, 4]), [0, 4])
  with pytest.raises(ValueError, match='temporal_order_loss.*integers'):
    vclr.temporal_order_loss(tf.ones([2, 4]), [0., 1.])
  with pytest.raises(ValueError, match='temporal_order_loss.*batch sizes'):
    vclr.temporal_order_loss(tf.ones([2, 4]), [0, 1, 2])


def test_release_hyperparameters():
  # amazon-science/video-contrastive-learning utils/util.py lines 208-210.
  assert vclr.VIDEO_TEMPERATURE == vclr.INTER_TEMPERATURE == 0.1
  assert vclr.INTRA_TEMPERATURE == 0.1
  assert vclr.QUEUE_SIZE == 131072


# ----------------------------------------------------------- distributed

GLOBAL_BATCH = 4
IN_DIM = 5
EMBED_DIM = 3


def _distributed_batch():
  rng = np.random.default_rng(10)

  def normal(*shape):
    return rng.normal(size=shape).astype(np.float32)

  return {
      'anchor_clips': normal(GLOBAL_BATCH, 3, IN_DIM),
      'positive_clips': normal(GLOBAL_BATCH, 3, IN_DIM),
      'inter_anchor': normal(GLOBAL_BATCH, IN_DIM),
      'inter_positives': normal(GLOBAL_BATCH, 2, IN_DIM),
      'intra_anchor': normal(GLOBAL_BATCH, IN_DIM),
      'intra_positive': normal(GLOBAL_BATCH, IN_DIM),
      'intra_negatives': normal(GLOBAL_BATCH, 2, IN_DIM),
      'order_labels': np.array([0, 1, 2, 3], np.int32),
  }


def _distributed_losses(weights, batch, queues=None):
  """vclr_loss of a (local or global) batch through shared variables."""
  def embed(x):
    return tf.einsum('...c,cd->...d', x, weights['embed'])

  anchor_clips = embed(batch['anchor_clips'])
  positive_clips = embed(batch['positive_clips'])
  order_features = tf.concat([tf.reduce_mean(anchor_clips, 1),
                              tf.reduce_mean(positive_clips, 1)], axis=1)
  queues = queues or {}
  return vclr.vclr_loss(
      anchor_clips, positive_clips,
      embed(batch['inter_anchor']), embed(batch['inter_positives']),
      embed(batch['intra_anchor']), embed(batch['intra_positive']),
      embed(batch['intra_negatives']),
      tf.matmul(order_features, weights['order']), batch['order_labels'],
      video_queue=queues.get('video'), inter_queue=queues.get('inter'))


def _worker():
  """Runs in the subprocess; prints {name: differences} as JSON."""
  cpus = tf.config.list_physical_devices('CPU')
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
  tf.config.threading.set_inter_op_parallelism_threads(2)
  tf.config.threading.set_intra_op_parallelism_threads(1)

  rng = np.random.default_rng(11)
  init = {'embed': rng.normal(size=(IN_DIM, EMBED_DIM)).astype(np.float32),
          'order': rng.normal(size=(2 * EMBED_DIM, 4)).astype(np.float32)}
  init_queues = {'video': rng.normal(size=(6, EMBED_DIM)).astype(np.float32),
                 'inter': rng.normal(size=(7, EMBED_DIM)).astype(np.float32)}
  batch = _distributed_batch()
  names = ('total_loss', 'video_loss', 'inter_loss', 'intra_loss',
           'order_loss')
  modes = ('in_batch', 'queue')

  weights = {k: tf.Variable(v) for k, v in init.items()}
  reference = {}
  for mode in modes:
    queues = init_queues if mode == 'queue' else None
    for name in names:
      with tf.GradientTape() as tape:
        out = _distributed_losses(weights, batch, queues)
      grads = tape.gradient(out[name], weights)
      reference[mode, name] = (
          out[name].numpy(),
          {k: (np.zeros_like(init[k]) if g is None else g.numpy())
           for k, g in grads.items()})
  single = _distributed_losses(weights, batch, init_queues)
  new_queues = {t: vclr.enqueue(init_queues[t], single[f'{t}_keys']).numpy()
                for t in ('video', 'inter')}

  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  assert strategy.num_replicas_in_sync == 2
  local = GLOBAL_BATCH // 2
  with strategy.scope():
    dist_weights = {k: tf.Variable(v) for k, v in init.items()}
    dist_queues = {
        t: tf.Variable(v, trainable=False,
                       synchronization=tf.VariableSynchronization.ON_WRITE,
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        for t, v in init_queues.items()}
  dist_batch = strategy.experimental_distribute_values_from_function(
      lambda ctx: {k: v[ctx.replica_id_in_sync_group * local:  # pylint: disable=g-long-lambda
                        (ctx.replica_id_in_sync_group + 1) * local]
                   for k, v in batch.items()})

  result = {}
  for mode in modes:
    for name in names:

      @tf.function
      def step(local_batch, name=name, mode=mode):
        def replica_fn(local_batch):
          ctx = tf.distribute.get_replica_context()
          queues = ({t: tf.identity(q) for t, q in dist_queues.items()}
                    if mode == 'queue' else None)
          with tf.GradientTape() as tape:
            out = _distributed_losses(dist_weights, local_batch, queues)
            scaled = out[name] / ctx.num_replicas_in_sync
          grads = tape.gradient(scaled, dist_weights)
          grads = {k: tf.zeros_like(dist_weights[k]) if g is None else g
                   for k, g in grads.items()}
          return scaled, grads
        scaled, grads = strategy.run(replica_fn, args=(local_batch,))
        reduce = lambda x: strategy.reduce(  # pylint: disable=g-long-lambda
            tf.distribute.ReduceOp.SUM, x, axis=None)
        return reduce(scaled), tf.nest.map_structure(reduce, grads)

      loss, grads = step(dist_batch)
      ref_loss, ref_grads = reference[mode, name]
      result[f'{mode}/{name}'] = {
          'loss': float(abs(loss.numpy() - ref_loss)),
          'grad': max(float(np.abs(grads[k].numpy() - ref_grads[k]).max())
                      for k in ref_grads),
          'grad_norm': max(float(np.abs(g).max())
                           for g in ref_grads.values()),
      }

  # The queues as a model holds them: the global keys, gathered in the
  # replica function, update the mirrored variables.
  @tf.function
  def update(local_batch):
    def replica_fn(local_batch):
      out = _distributed_losses(dist_weights, local_batch,
                                {t: tf.identity(q)
                                 for t, q in dist_queues.items()})
      for t, queue in dist_queues.items():
        keys = contrastive.cross_replica_concat(out[f'{t}_keys'])
        queue.assign(vclr.enqueue(queue, keys))
    strategy.run(replica_fn, args=(local_batch,))

  update(dist_batch)
  for t in ('video', 'inter'):
    values = [v.numpy() for v in strategy.experimental_local_results(
        dist_queues[t])]
    result[f'queue/{t}'] = {
        'rows': float(np.abs(values[0] - new_queues[t]).max()),
        'replicas': float(np.abs(values[0] - values[1]).max()),
        'changed': float(np.abs(values[0] - init_queues[t]).max()),
    }
  print('RESULT ' + json.dumps(result))


@pytest.fixture(scope='module')
def differences():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2',
             PYTHONPATH=os.pathsep.join(
                 [_REPO] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
  proc = subprocess.run([sys.executable, os.path.abspath(__file__)],
                        cwd=_REPO, env=env, capture_output=True, text=True,
                        timeout=300, check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')]
  assert proc.returncode == 0 and lines, (
      f'worker failed (rc={proc.returncode}):\n{proc.stdout}\n'
      f'{proc.stderr[-4000:]}')
  return json.loads(lines[-1][len('RESULT '):])


@pytest.mark.parametrize('mode', ['in_batch', 'queue'])
@pytest.mark.parametrize('name', ['total_loss', 'video_loss', 'inter_loss',
                                  'intra_loss', 'order_loss'])
def test_mirrored_matches_single_device(differences, mode, name):
  diff = differences[f'{mode}/{name}']
  assert diff['grad_norm'] > 1e-3, diff  # the comparison is not vacuous
  assert diff['loss'] < _TOL, diff
  assert diff['grad'] < _TOL, diff


@pytest.mark.parametrize('term', ['video', 'inter'])
def test_mirrored_queue_update_matches_single_device(differences, term):
  diff = differences[f'queue/{term}']
  assert diff['changed'] > 0.1, diff  # the update happened
  assert diff['rows'] < _TOL, diff
  assert diff['replicas'] == 0.0, diff


if __name__ == '__main__':
  _worker()
