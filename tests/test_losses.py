"""Tests of official_projects_const_cl/losses/contrastive.py (single device).

Expected values are computed by hand or by literal numpy transcriptions of
CVRL eq. 1 and ConST-CL eq. 5 (explicit loops, independent of the TF code).
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from official_projects_const_cl.losses import contrastive


def _unit(deg):
  rad = math.radians(deg)
  return [math.cos(rad), math.sin(rad)]


def _normalize(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _np_global_infonce(a, b, tau):
  """CVRL eq. 1 written out with loops over the 2B anchors."""
  a, b = _normalize(a), _normalize(b)
  clips = np.concatenate([a, b])  # index v * B + i
  batch = len(a)
  losses = []
  for anchor in range(2 * batch):
    positive = (anchor + batch) % (2 * batch)
    denominator = sum(
        math.exp(clips[anchor] @ clips[k] / tau)
        for k in range(2 * batch) if k != anchor)
    numerator = math.exp(clips[anchor] @ clips[positive] / tau)
    losses.append(-math.log(numerator / denominator))
  return float(np.mean(losses))


def _np_instance_infonce(pred, targ, mq, mk, qmask, kmask, tau):
  """ConST-CL eq. 2 + eq. 5 written out with loops (masked mean)."""
  z, h = _normalize(pred), _normalize(targ)
  mq, mk = _normalize(mq), _normalize(mk)
  losses = []
  for b in range(z.shape[0]):
    valid_keys = [j for j in range(h.shape[1]) if kmask[b][j]]
    if not valid_keys:
      continue
    for i in range(z.shape[1]):
      if not qmask[b][i]:
        continue
      j = max(valid_keys, key=lambda j: mq[b, i] @ mk[b, j])
      positive = math.exp(z[b, i] @ h[b, j] / tau)
      negatives = sum(
          math.exp(z[b, i] @ h[c, k] / tau) for c in range(h.shape[0])
          if c != b for k in range(h.shape[1]) if kmask[c][k])
      losses.append(-math.log(positive / (positive + negatives)))
  return float(np.mean(losses)) if losses else 0.0


def _random_region_case(seed=0, batch=3, nq=3, nk=4, depth=5, channels=6):
  rng = np.random.default_rng(seed)
  return dict(
      predictions=rng.normal(size=(batch, nq, depth)).astype(np.float32),
      targets=rng.normal(size=(batch, nk, depth)).astype(np.float32),
      match_queries=rng.normal(size=(batch, nq, channels)).astype(np.float32),
      match_keys=rng.normal(size=(batch, nk, channels)).astype(np.float32),
      query_mask=np.ones((batch, nq), np.float32),
      key_mask=np.ones((batch, nk), np.float32))


def _instance(case, temperature=0.2):
  return contrastive.instance_infonce(
      **{k: tf.constant(v) for k, v in case.items()}, temperature=temperature)


def _np_instance(case, temperature=0.2):
  return _np_instance_infonce(
      case['predictions'], case['targets'], case['match_queries'],
      case['match_keys'], case['query_mask'], case['key_mask'], temperature)


# ----------------------------------------------------------------- replicas


def test_cross_replica_helpers_without_strategy():
  x = tf.constant([[1.0, 2.0], [3.0, 4.0]])
  assert contrastive.cross_replica_concat(x) is x
  assert int(contrastive.replica_offset(7)) == 0
  assert contrastive.num_replicas() == 1
  assert float(contrastive.cross_replica_sum(tf.constant(3.0))) == 3.0


# ------------------------------------------------------------ global InfoNCE


@pytest.mark.parametrize('tau', [1.0, 0.5, 0.1])
def test_global_orthogonal_pairs_by_hand(tau):
  # a_i == b_i, clips of different videos orthogonal: every anchor sees one
  # positive at cos 1 and two negatives at cos 0 (its own copy excluded).
  a = tf.constant([[1.0, 0.0], [0.0, 1.0]])
  out = contrastive.global_infonce(a, a, temperature=tau)
  expected = math.log(math.exp(1 / tau) + 2) - 1 / tau
  np.testing.assert_allclose(out['loss'].numpy(), expected, rtol=1e-5,
                             atol=1e-7)
  assert out['accuracy'].numpy() == 1.0
  assert out['logits_a'].shape == (2, 4)
  np.testing.assert_array_equal(out['labels'].numpy(), [0, 1])


def test_global_angles_by_hand():
  # Video 0: a at 0 deg, b at 60 deg. Video 1: a at 90 deg, b at 180 deg.
  a = tf.constant([_unit(0), _unit(90)])
  b = tf.constant([_unit(60), _unit(180)])
  tau = 0.5
  c = lambda deg: math.cos(math.radians(deg))  # pylint: disable=g-long-lambda
  e = lambda deg: math.exp(c(deg) / tau)  # pylint: disable=g-long-lambda
  # anchor a0: pos b0 (60), negs a1 (90), b1 (180)
  # anchor a1: pos b1 (90), negs a0 (90), b0 (30)
  # anchor b0: pos a0 (60), negs a1 (30), b1 (120)
  # anchor b1: pos a1 (90), negs a0 (180), b0 (120)
  expected = np.mean([
      -math.log(e(60) / (e(60) + e(90) + e(180))),
      -math.log(e(90) / (e(90) + e(90) + e(30))),
      -math.log(e(60) / (e(60) + e(30) + e(120))),
      -math.log(e(90) / (e(90) + e(180) + e(120))),
  ])
  out = contrastive.global_infonce(a, b, temperature=tau)
  np.testing.assert_allclose(out['loss'].numpy(), expected, rtol=1e-6)
  # a1's positive (cos 0) loses to b0 (cos 30 deg); b0's positive (cos 60)
  # loses to a1 (cos 30 deg): 2 of 4 anchors are right.
  np.testing.assert_allclose(out['accuracy'].numpy(), 0.5)
  np.testing.assert_allclose(
      out['loss'].numpy(), _np_global_infonce(a.numpy(), b.numpy(), tau),
      rtol=1e-6)


def test_global_matches_numpy_eq1_and_is_scale_invariant():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(4, 3)).astype(np.float32)
  b = rng.normal(size=(4, 3)).astype(np.float32)
  expected = _np_global_infonce(a, b, 0.1)
  out = contrastive.global_infonce(tf.constant(a), tf.constant(b))
  np.testing.assert_allclose(out['loss'].numpy(), expected, rtol=1e-5)
  scaled = contrastive.global_infonce(tf.constant(3 * a), tf.constant(b / 7))
  np.testing.assert_allclose(scaled['loss'].numpy(), expected, rtol=1e-5)


def test_global_gradient_matches_numpy_finite_difference():
  rng = np.random.default_rng(2)
  a = rng.normal(size=(2, 3))
  b = rng.normal(size=(2, 3))
  tau = 0.3
  ta = tf.Variable(a, dtype=tf.float32)
  tb = tf.Variable(b, dtype=tf.float32)
  with tf.GradientTape() as tape:
    loss = contrastive.global_infonce(ta, tb, temperature=tau)['loss']
  grad_a, grad_b = tape.gradient(loss, [ta, tb])
  step = 1e-5
  for value, grad, other_first in ((a, grad_a, True), (b, grad_b, False)):
    numeric = np.zeros_like(value)
    for index in np.ndindex(value.shape):
      plus, minus = value.copy(), value.copy()
      plus[index] += step
      minus[index] -= step
      if other_first:
        f_plus = _np_global_infonce(plus, b, tau)
        f_minus = _np_global_infonce(minus, b, tau)
      else:
        f_plus = _np_global_infonce(a, plus, tau)
        f_minus = _np_global_infonce(a, minus, tau)
      numeric[index] = (f_plus - f_minus) / (2 * step)
    np.testing.assert_allclose(grad.numpy(), numeric, atol=2e-4)


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16])
def test_global_low_precision_inputs_give_float32(dtype):
  rng = np.random.default_rng(3)
  a = rng.normal(size=(4, 8)).astype(np.float32)
  b = rng.normal(size=(4, 8)).astype(np.float32)
  out = contrastive.global_infonce(tf.cast(a, dtype), tf.cast(b, dtype))
  assert out['loss'].dtype == tf.float32
  assert out['accuracy'].dtype == tf.float32
  reference = contrastive.global_infonce(
      tf.cast(tf.cast(a, dtype), tf.float32),
      tf.cast(tf.cast(b, dtype), tf.float32))
  np.testing.assert_allclose(out['loss'].numpy(), reference['loss'].numpy(),
                             rtol=1e-6)


def test_global_rejects_bad_input():
  with pytest.raises(ValueError, match='global_infonce.*temperature'):
    contrastive.global_infonce(tf.ones([2, 3]), tf.ones([2, 3]), 0.0)
  with pytest.raises(ValueError, match='global_infonce.*embeddings_a.*rank 2'):
    contrastive.global_infonce(tf.ones([2, 3, 1]), tf.ones([2, 3]))
  with pytest.raises(ValueError, match='global_infonce.*do not match'):
    contrastive.global_infonce(tf.ones([2, 3]), tf.ones([2, 4]))


# ---------------------------------------------------------- region InfoNCE


def test_instance_by_hand_same_video_regions_are_not_negatives():
  # Video 0: source region z=e1, regions e1 (chosen) and -e1 (same video, not
  # chosen). Video 1: z=e2, regions e2 (chosen) and -e2.
  # Each anchor: positive at cos 1, negatives = the two regions of the other
  # video, both orthogonal (cos 0) -> loss = log(1 + 2 exp(-1/tau)).
  e1, e2 = [1.0, 0.0], [0.0, 1.0]
  m1, m2 = [-1.0, 0.0], [0.0, -1.0]
  case = dict(
      predictions=np.array([[e1], [e2]], np.float32),
      targets=np.array([[e1, m1], [e2, m2]], np.float32),
      match_queries=np.array([[e1], [e2]], np.float32),
      match_keys=np.array([[e1, m1], [e2, m2]], np.float32),
      query_mask=np.ones((2, 1), np.float32),
      key_mask=np.ones((2, 2), np.float32))
  for tau in (0.2, 0.5):
    out = _instance(case, tau)
    expected = math.log(1 + 2 * math.exp(-1 / tau))
    np.testing.assert_allclose(out['loss'].numpy(), expected, rtol=1e-5)
    np.testing.assert_array_equal(out['target_index'].numpy(), [[0], [0]])
    assert out['accuracy'].numpy() == 1.0
    assert out['num_valid'].numpy() == 2.0
  # Only video 0 as source: its non-chosen region (-e1) must not enter the
  # denominator, so moving it onto z (cos 1) changes nothing.
  only_0 = dict(case, query_mask=np.array([[1.0], [0.0]], np.float32))
  moved = dict(only_0, targets=np.array([[e1, e1], [e2, m2]], np.float32))
  expected = math.log(1 + 2 * math.exp(-1 / 0.2))
  np.testing.assert_allclose(_instance(only_0)['loss'].numpy(), expected,
                             rtol=1e-5)
  np.testing.assert_allclose(_instance(moved)['loss'].numpy(), expected,
                             rtol=1e-5)


def test_instance_matches_numpy_eq5():
  case = _random_region_case(seed=4)
  case['query_mask'][0, 1] = 0
  case['key_mask'][1, 0] = 0
  case['key_mask'][2, 3] = 0
  for tau in (0.2, 1.0):
    np.testing.assert_allclose(_instance(case, tau)['loss'].numpy(),
                               _np_instance(case, tau), rtol=1e-5)


def test_instance_nearest_region_choice_is_the_permutation():
  case = _random_region_case(seed=5, nq=4, nk=4)
  perm = np.array([2, 0, 3, 1])
  # Key j is a slightly perturbed copy of query perm[j]: query i is nearest
  # to key j with perm[j] == i, i.e. j = inverse_perm[i].
  keys = case['match_queries'][:, perm] + 0.01
  case['match_keys'] = keys
  inverse = np.argsort(perm)
  out = _instance(case)
  np.testing.assert_array_equal(out['target_index'].numpy(),
                                np.tile(inverse, (3, 1)))
  # Same loss as the identity choice on targets reordered by that choice.
  reordered = dict(case, targets=case['targets'][:, inverse],
                   match_keys=case['match_queries'])
  identity = _instance(reordered)
  np.testing.assert_array_equal(identity['target_index'].numpy(),
                                np.tile(np.arange(4), (3, 1)))
  np.testing.assert_allclose(out['loss'].numpy(), identity['loss'].numpy(),
                             rtol=1e-6)
  np.testing.assert_allclose(out['loss'].numpy(), _np_instance(case),
                             rtol=1e-5)


def test_instance_stop_gradient_on_the_choice():
  case = {k: tf.Variable(v) for k, v in _random_region_case(seed=6).items()}
  with tf.GradientTape() as tape:
    loss = contrastive.instance_infonce(**case)['loss']
  grads = tape.gradient(loss, case)
  assert grads['match_queries'] is None
  assert grads['match_keys'] is None
  assert np.abs(grads['predictions'].numpy()).max() > 0
  assert np.abs(grads['targets'].numpy()).max() > 0


def test_instance_negatives_receive_gradient():
  # Only video 0 has a valid source region, so video 1's targets enter only
  # as negatives: they still get a gradient.
  case = _random_region_case(seed=7, batch=2)
  case['query_mask'][1] = 0
  targets = tf.Variable(case.pop('targets'))
  with tf.GradientTape() as tape:
    loss = contrastive.instance_infonce(
        targets=targets, **{k: tf.constant(v) for k, v in case.items()})['loss']
  grad = tape.gradient(loss, targets).numpy()
  assert np.abs(grad[1]).max() > 1e-4


def test_instance_invalid_regions_are_ignored():
  case = _random_region_case(seed=8)
  case['query_mask'][0, 2] = 0
  case['key_mask'][1, 1] = 0
  # Make the invalid key the best match of every query of video 1: it must
  # still not be chosen.
  case['match_keys'][1, 1] = case['match_queries'][1].sum(axis=0) * 10
  out = _instance(case)
  assert 1 not in out['target_index'].numpy()[1]
  assert out['num_valid'].numpy() == 8.0
  np.testing.assert_allclose(out['loss'].numpy(), _np_instance(case),
                             rtol=1e-5)

  # Changing invalid entries changes nothing; their gradients are zero.
  changed = {k: v.copy() for k, v in case.items()}
  changed['predictions'][0, 2] = 100.0
  changed['targets'][1, 1] = -3.0
  np.testing.assert_allclose(_instance(changed)['loss'].numpy(),
                             out['loss'].numpy(), rtol=1e-6)
  variables = {k: tf.Variable(v) for k, v in case.items()}
  with tf.GradientTape() as tape:
    loss = contrastive.instance_infonce(**variables)['loss']
  grads = tape.gradient(loss, [variables['predictions'], variables['targets']])
  np.testing.assert_array_equal(grads[0].numpy()[0, 2], 0.0)
  np.testing.assert_array_equal(grads[1].numpy()[1, 1], 0.0)


def test_instance_video_without_valid_keys_contributes_nothing():
  case = _random_region_case(seed=9)
  case['key_mask'][2] = 0
  out = _instance(case)
  assert out['num_valid'].numpy() == 6.0
  np.testing.assert_allclose(out['loss'].numpy(), _np_instance(case),
                             rtol=1e-5)


def test_instance_all_invalid_gives_zero_and_finite_gradients():
  case = _random_region_case(seed=10)
  for masks in (('query_mask',), ('key_mask',), ('query_mask', 'key_mask')):
    variables = {k: tf.Variable(v) for k, v in case.items()}
    for mask in masks:
      variables[mask].assign(tf.zeros_like(variables[mask]))
    with tf.GradientTape() as tape:
      out = contrastive.instance_infonce(**variables)
    grads = tape.gradient(out['loss'],
                          [variables['predictions'], variables['targets']])
    assert out['loss'].numpy() == 0.0
    assert out['accuracy'].numpy() == 0.0
    assert out['num_valid'].numpy() == 0.0
    for grad in grads:
      assert np.all(np.isfinite(grad.numpy()))
      np.testing.assert_array_equal(grad.numpy(), 0.0)


def test_instance_bool_masks_and_different_region_counts():
  case = _random_region_case(seed=11, nq=2, nk=5, depth=4, channels=3)
  case['key_mask'][0, 4] = 0
  expected = _np_instance(case)
  as_bool = dict(case, query_mask=case['query_mask'] > 0,
                 key_mask=case['key_mask'] > 0)
  np.testing.assert_allclose(_instance(as_bool)['loss'].numpy(), expected,
                             rtol=1e-5)


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16])
def test_instance_low_precision_inputs_give_float32(dtype):
  case = _random_region_case(seed=12)
  low = {k: tf.cast(v, dtype) if k not in ('query_mask', 'key_mask') else v
         for k, v in case.items()}
  out = contrastive.instance_infonce(**low)
  assert out['loss'].dtype == tf.float32
  reference = contrastive.instance_infonce(
      **{k: tf.cast(v, tf.float32) for k, v in low.items()})
  np.testing.assert_allclose(out['loss'].numpy(), reference['loss'].numpy(),
                             rtol=1e-6)


def test_instance_rejects_bad_input():
  case = {k: tf.constant(v) for k, v in _random_region_case(seed=13).items()}
  with pytest.raises(ValueError, match='instance_infonce.*temperature'):
    contrastive.instance_infonce(**case, temperature=-1.0)
  with pytest.raises(ValueError, match='instance_infonce.*query_mask.*rank 2'):
    contrastive.instance_infonce(**dict(case, query_mask=tf.ones([3, 3, 1])))
  with pytest.raises(ValueError, match='predictions.*targets'):
    contrastive.instance_infonce(**dict(case, targets=tf.ones([3, 4, 7])))
  with pytest.raises(ValueError, match='targets.*key_mask'):
    contrastive.instance_infonce(**dict(case, key_mask=tf.ones([3, 2])))


# ------------------------------------------------------------- ConST-CL sum


def test_const_cl_loss_combines_by_hand():
  out = contrastive.const_cl_loss(
      {'loss': tf.constant(2.0), 'accuracy': tf.constant(0.5)},
      {'loss': tf.constant(1.0), 'accuracy': tf.constant(0.25)},
      {'loss': tf.constant(3.0), 'accuracy': tf.constant(0.75)},
      region_weight=0.01)
  np.testing.assert_allclose(out['total_loss'].numpy(), 2.0 + 0.01 * 2.0)
  np.testing.assert_allclose(out['global_loss'].numpy(), 2.0)
  np.testing.assert_allclose(out['region_loss'].numpy(), 2.0)
  np.testing.assert_allclose(out['global_accuracy'].numpy(), 0.5)
  np.testing.assert_allclose(out['region_accuracy'].numpy(), 0.5)
  with pytest.raises(ValueError, match='region_b2a.*loss'):
    contrastive.const_cl_loss({'loss': 1.0, 'accuracy': 1.0},
                              {'loss': 1.0, 'accuracy': 1.0}, {'accuracy': 1.0})
  with pytest.raises(ValueError, match='region_weight'):
    contrastive.const_cl_loss({}, {}, {}, region_weight=-1.0)


def test_global_infonce_anchor_weights_select_anchors_not_negatives():
  rng = np.random.default_rng(5)
  a = tf.constant(rng.normal(size=(3, 4)), tf.float32)
  b = tf.constant(rng.normal(size=(3, 4)), tf.float32)
  full = contrastive.global_infonce(a, b, 0.2)
  logits = np.concatenate([full['logits_a'].numpy(), full['logits_b'].numpy()])
  labels = np.concatenate([full['labels'].numpy()] * 2)
  log_z = np.log(np.exp(logits).sum(axis=1))
  per_anchor = log_z - logits[np.arange(6), labels]
  np.testing.assert_allclose(full['loss'], per_anchor.mean(), rtol=1e-5)
  # Only video 0 scores (views a and b); videos 1, 2 remain negatives.
  weighted = contrastive.global_infonce(a, b, 0.2,
                                        anchor_weights=[1.0, 0.0, 0.0])
  np.testing.assert_allclose(weighted['loss'],
                             (per_anchor[0] + per_anchor[3]) / 2, rtol=1e-5)
  none = contrastive.global_infonce(a, b, 0.2, anchor_weights=[0.0] * 3)
  assert float(none['loss']) == 0.0 and float(none['accuracy']) == 0.0
