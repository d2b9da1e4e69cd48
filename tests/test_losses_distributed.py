"""Losses under MirroredStrategy on 2 logical CPUs equal single-device ones.

Logical devices must be configured before TensorFlow runs any op, so the
comparison runs in a fresh subprocess (this file executed as a script) and
reports max abs differences as JSON; the pytest tests only assert on them.

Convention checked (docs/choices.md): each replica minimizes `loss / R` and the
replica gradients are summed. The sum of the per-replica `loss / R` and the
summed gradients of a shared variable must equal the single-device loss and
gradients on the same global batch.
"""

import json
import os
import subprocess
import sys

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TOL = 1e-5

GLOBAL_BATCH = 4
NUM_REGIONS = 3
IN_DIM = 5
EMBED_DIM = 4


def _make_batch():
  """Global batch of random inputs and masks (numpy), uneven valid counts."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  shape = (GLOBAL_BATCH, NUM_REGIONS, IN_DIM)
  query_mask = np.ones((GLOBAL_BATCH, NUM_REGIONS), np.float32)
  key_mask = np.ones((GLOBAL_BATCH, NUM_REGIONS), np.float32)
  query_mask[0, 1] = 0  # replica 0 holds 5 valid source regions ...
  query_mask[2] = 0     # ... replica 1 only 2 (video 2 has none).
  query_mask[3, 0] = 0
  key_mask[1, 2] = 0
  key_mask[3, 0] = 0
  return {
      'clip_a': rng.normal(size=(GLOBAL_BATCH, IN_DIM)).astype(np.float32),
      'clip_b': rng.normal(size=(GLOBAL_BATCH, IN_DIM)).astype(np.float32),
      'regions_a': rng.normal(size=shape).astype(np.float32),
      'regions_b': rng.normal(size=shape).astype(np.float32),
      'query_mask': query_mask,
      'key_mask': key_mask,
  }


def _losses(weights, batch):
  """All three losses of a (local or global) batch; returns a dict."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl.losses import contrastive  # pylint: disable=g-import-not-at-top
  embed, predict = weights['embed'], weights['predict']
  global_out = contrastive.global_infonce(
      tf.matmul(batch['clip_a'], embed), tf.matmul(batch['clip_b'], embed))
  h_a = tf.einsum('bnc,cd->bnd', batch['regions_a'], embed)
  h_b = tf.einsum('bnc,cd->bnd', batch['regions_b'], embed)
  z_a = tf.einsum('bnd,de->bne', h_a, predict)
  z_b = tf.einsum('bnd,de->bne', h_b, predict)
  # Match on the raw region features h (as ConST-CL does); key masks of the
  # target view, query masks of the source view.
  a2b = contrastive.instance_infonce(z_a, h_b, h_a, h_b, batch['query_mask'],
                                     batch['key_mask'])
  b2a = contrastive.instance_infonce(z_b, h_a, h_b, h_a, batch['key_mask'],
                                     batch['query_mask'])
  total = contrastive.const_cl_loss(global_out, a2b, b2a, region_weight=0.5)
  return {'global': global_out['loss'], 'instance': a2b['loss'],
          'const_cl': total['total_loss']}


def _worker():
  """Runs in the subprocess; prints {name: {'loss': d, 'grad': d}} as JSON."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cpus = tf.config.list_physical_devices('CPU')
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
  tf.config.threading.set_inter_op_parallelism_threads(2)
  tf.config.threading.set_intra_op_parallelism_threads(1)

  rng = np.random.default_rng(1)
  init = {'embed': rng.normal(size=(IN_DIM, EMBED_DIM)).astype(np.float32),
          'predict': rng.normal(size=(EMBED_DIM, EMBED_DIM)).astype(
              np.float32)}
  batch = _make_batch()
  # Variables each loss depends on (the global loss ignores 'predict').
  names = {'global': ('embed',), 'instance': ('embed', 'predict'),
           'const_cl': ('embed', 'predict')}

  # Single device, whole global batch.
  weights = {k: tf.Variable(v) for k, v in init.items()}
  reference = {}
  for name, keys in names.items():
    with tf.GradientTape() as tape:
      loss = _losses(weights, batch)[name]
    grads = tape.gradient(loss, {k: weights[k] for k in keys})
    reference[name] = (loss.numpy(),
                       {k: g.numpy() for k, g in grads.items()})

  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  replicas = strategy.num_replicas_in_sync
  assert replicas == 2, replicas
  local = GLOBAL_BATCH // replicas
  with strategy.scope():
    dist_weights = {k: tf.Variable(v) for k, v in init.items()}
  dist_batch = strategy.experimental_distribute_values_from_function(
      lambda ctx: {k: v[ctx.replica_id_in_sync_group * local:  # pylint: disable=g-long-lambda
                        (ctx.replica_id_in_sync_group + 1) * local]
                   for k, v in batch.items()})

  result = {}
  for name, keys in names.items():

    @tf.function
    def step(local_batch, name=name, keys=keys):
      def replica_fn(local_batch):
        ctx = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
          loss = _losses(dist_weights, local_batch)[name]
          scaled = loss / ctx.num_replicas_in_sync
        return scaled, tape.gradient(scaled,
                                     {k: dist_weights[k] for k in keys})
      scaled, grads = strategy.run(replica_fn, args=(local_batch,))
      reduce = lambda x: strategy.reduce(  # pylint: disable=g-long-lambda
          tf.distribute.ReduceOp.SUM, x, axis=None)
      return reduce(scaled), tf.nest.map_structure(reduce, grads)

    loss, grads = step(dist_batch)
    ref_loss, ref_grads = reference[name]
    result[name] = {
        'loss': float(abs(loss.numpy() - ref_loss)),
        'grad': max(float(np.abs(grads[k].numpy() - ref_grads[k]).max())
                    for k in ref_grads),
        'grad_norm': max(float(np.abs(g).max()) for g in ref_grads.values()),
    }
  # Uneven local batches (a partial last validation batch): replica 0 holds
  # 3 videos, replica 1 one. Positives must still be found at the right
  # global rows, so the summed per-anchor losses equal the single device's.
  from official_projects_const_cl.losses import contrastive  # pylint: disable=g-import-not-at-top
  splits = (slice(0, 3), slice(3, 4))
  uneven = strategy.experimental_distribute_values_from_function(
      lambda ctx: {k: batch[k][splits[ctx.replica_id_in_sync_group]]  # pylint: disable=g-long-lambda
                   for k in ('clip_a', 'clip_b')})
  embed = init['embed']

  @tf.function
  def uneven_sum(local_batch):
    def replica_fn(local_batch):
      out = contrastive.global_infonce(tf.matmul(local_batch['clip_a'], embed),
                                       tf.matmul(local_batch['clip_b'], embed))
      n = tf.cast(2 * tf.shape(local_batch['clip_a'])[0], tf.float32)
      return out['loss'] * n
    return strategy.reduce(tf.distribute.ReduceOp.SUM,
                           strategy.run(replica_fn, args=(local_batch,)),
                           axis=None)

  single = contrastive.global_infonce(tf.matmul(batch['clip_a'], embed),
                                      tf.matmul(batch['clip_b'], embed))
  result['uneven_global'] = {
      'loss': float(abs(uneven_sum(uneven).numpy() -
                        single['loss'].numpy() * 2 * GLOBAL_BATCH))}
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


@pytest.mark.parametrize('name', ['global', 'instance', 'const_cl'])
def test_mirrored_matches_single_device(differences, name):
  diff = differences[name]
  assert diff['grad_norm'] > 1e-3  # the comparison is not vacuous
  assert diff['loss'] < _TOL, diff
  assert diff['grad'] < _TOL, diff


def test_uneven_replica_batches_find_their_positives(differences):
  assert differences['uneven_global']['loss'] < 1e-4, differences


if __name__ == '__main__':
  _worker()
