"""The four losses of VCLR (Kuang et al. ICCV 2021, §3 and appendix A.1).

Implements
  * video-level instance discrimination (§3.2): `video_infonce`, InfoNCE
    between the averaged clip embeddings of two segment tuples of one video;
  * SeCo's inter-frame instance discrimination (eq. 2): `inter_frame_infonce`,
    one InfoNCE per positive, averaged;
  * SeCo's intra-frame instance discrimination (eq. 3): `intra_frame_infonce`,
    negatives only the other frames of the same video;
  * temporal-order regularization (§3.3): `temporal_order_loss`, a 4-way
    cross-entropy;
  * their unweighted sum (A.1, "a simple summation over four losses"), every
    term switchable as in the paper's Table 6 ablation: `vclr_loss`.

Conventions follow `contrastive.py`: pure functions of tensors returning a
dict (loss plus diagnostics), inputs cast to float32 and L2-normalized here,
masked logits set to `contrastive._MASK_VALUE`, the returned loss the mean over
the *local* anchors (each replica minimizes `loss / num_replicas_in_sync` and
the replica gradients are summed; equal local batches assumed).

Negatives of the video and inter-frame terms come from one of two sources:
  (a) in-batch: the keys (positives) of every *other* video of the global
      batch, gathered over replicas with `contrastive.cross_replica_concat`;
      gradients reach those keys on whichever replica they came from;
  (b) a MoCo-v2 queue [Q, D] of keys of past batches from a momentum encoder
      (the authors' release: `queue`; no gradient). Logits are
      [anchor . positive, anchor . queue^T] / temperature, label 0.

Holding the queue (mode b). A model keeps one queue per term (VCLR has two,
video and inter-frame, A.1) as a non-trainable variable,

    queue = tf.Variable(
        tf.math.l2_normalize(tf.random.normal([queue_size, dim]), -1),
        trainable=False,
        synchronization=tf.VariableSynchronization.ON_WRITE,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

created under the strategy's scope (the release starts from uniform noise,
models/Contrast.py lines 73-75; anything works, the first Q / (G P) steps
contrast against it). Each training step first computes the losses against
the current queue, then, inside the replica function,

    keys = contrastive.cross_replica_concat(out['keys'])  # [G * P, D]
    queue.assign(vclr.enqueue(queue, keys))

Every replica computes the same new queue from the same global keys, so
ONLY_FIRST_REPLICA keeps the mirrored copies identical. `out['keys']` of the
term functions are the positives as rows [B * P, D], video-major, so the
gathered rows follow the global batch and the queue is the same for any
number of replicas (the release enqueues the same keys positive-major,
train_vclr.py lines 120-122; the loss does not depend on the row order).

Hyperparameters from the authors' release (amazon-science/
video-contrastive-learning @ 4fb66c3, utils/util.py): temperature 0.1 for
the video and inter-frame terms (line 209, `--nce_t`) and for the intra-frame
term (line 210, `--nce_t_intra`); queue size 131072 for each of the two queues
(line 208, `--nce_k`); momentum-encoder EMA 0.999 (line 207, `--alpha`).
These are SeCo's defaults, not MoCo's tau = 0.07 (SeCo's release
YihengZhang-CV/SeCo-Sequence-Contrastive-Learning @ f0b1b48, seco/util.py
lines 198-200 and seco/Contrast.py line 19: 131072, 0.10, 0.10).
"""

import functools
from typing import Optional

import tensorflow as tf

from official_projects_const_cl.losses import contrastive

# Default temperatures (authors' release, utils/util.py lines 209-210).
VIDEO_TEMPERATURE = 0.1
INTER_TEMPERATURE = 0.1
INTRA_TEMPERATURE = 0.1
# Queue length of each MoCo memory bank (utils/util.py line 208).
QUEUE_SIZE = 131072

# Temporal-order classes (§3.3), the release's encoding (dataset/
# dataset_kinetics.py lines 181-197): label = anchor_shuffled
# + 2 * positive_shuffled.
ORDER_BOTH_ORDERED = 0
ORDER_ANCHOR_SHUFFLED = 1
ORDER_POSITIVE_SHUFFLED = 2
ORDER_BOTH_SHUFFLED = 3
NUM_ORDER_CLASSES = 4

_l2_normalize = contrastive._l2_normalize  # pylint: disable=protected-access
_MASK_VALUE = contrastive._MASK_VALUE  # pylint: disable=protected-access


# The shape checks of `contrastive`, with errors naming this module.
_check_temperature = functools.partial(
    contrastive._check_temperature, module='vclr')  # pylint: disable=protected-access
_check_rank = functools.partial(contrastive._check_rank, module='vclr')  # pylint: disable=protected-access


def _check_dims(a: tf.Tensor, b: tf.Tensor, dims_a, dims_b, what: str,
                where: str) -> None:
  """Raises unless a.shape[dims_a] is compatible with b.shape[dims_b]."""
  contrastive._check_compatible(a, b, what, where, dims=dims_a, dims_b=dims_b,  # pylint: disable=protected-access
                                module='vclr')


def order_label(anchor_shuffled, positive_shuffled) -> tf.Tensor:
  """Temporal-order class of a tuple pair (§3.3; the release's encoding).

  Args:
    anchor_shuffled: bool or bool/int tensor, the anchor tuple's clips were
      shuffled.
    positive_shuffled: same shape, the positive tuple's clips were shuffled.

  Returns:
    int32 tensor: 0 both tuples in order, 1 anchor shuffled, 2 positive
    shuffled, 3 both shuffled.
  """
  return (tf.cast(anchor_shuffled, tf.int32) +
          2 * tf.cast(positive_shuffled, tf.int32))


def enqueue(queue: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
  """FIFO update of a MoCo queue: the newest keys first.

  new_queue = concat([normalize(keys), queue])[:Q]: row 0 is the first key of
  this step, the oldest Q - M rows of the old queue are kept below them and
  the M oldest drop out (keeping only the first Q keys if M > Q). The release
  writes into a ring buffer at a moving index (models/Contrast.py lines
  83-86); the set of rows is the same, and the loss does not depend on their
  order.

  Args:
    queue: [Q, D] current queue (float).
    keys: [M, D] keys of this step from the momentum encoder, the global
      batch (all replicas, `contrastive.cross_replica_concat`) in row order.
      L2-normalized here; no gradient flows into the queue.

  Returns:
    [Q, D] new queue, float32.
  """
  where = 'enqueue'
  queue = tf.convert_to_tensor(queue)
  keys = tf.convert_to_tensor(keys)
  _check_rank(queue, 2, 'queue', where)
  _check_rank(keys, 2, 'keys', where)
  _check_dims(queue, keys, (1,), (1,), 'feature dims of `queue` and `keys`',
              where)
  queue = tf.cast(tf.stop_gradient(queue), tf.float32)
  keys = _l2_normalize(tf.stop_gradient(keys))
  return tf.concat([keys, queue], axis=0)[:tf.shape(queue)[0]]


def _multi_positive_infonce(anchor: tf.Tensor, positives: tf.Tensor,
                            temperature: float,
                            queue: Optional[tf.Tensor]) -> dict[str, tf.Tensor]:
  """InfoNCE of `anchor` [B, D] against each of its P positives [B, P, D].

  Negatives are the queue rows, or (queue None) the P keys of every other
  video of the global batch. Inputs already float32 and L2-normalized.
  """
  batch, num_pos = tf.shape(positives)[0], tf.shape(positives)[1]
  positive_logits = tf.einsum('bd,bpd->bp', anchor, positives) / temperature
  if queue is None:
    keys_all = contrastive.cross_replica_concat(positives)  # [G, P, D]
    global_batch = tf.shape(keys_all)[0]
    negative_logits = tf.einsum('bd,gpd->bgp', anchor, keys_all) / temperature
    video_id = contrastive.replica_offset(batch) + tf.range(batch)
    same_video = tf.equal(video_id[:, tf.newaxis],
                          tf.range(global_batch)[tf.newaxis, :])  # [B, G]
    negative_logits = tf.where(same_video[..., tf.newaxis],
                               tf.constant(_MASK_VALUE, tf.float32),
                               negative_logits)
    negative_logits = tf.reshape(negative_logits,
                                 [batch, global_batch * num_pos])
  else:
    negative_logits = tf.matmul(anchor, queue, transpose_b=True) / temperature
  num_neg = tf.shape(negative_logits)[1]
  # [B, P, 1 + N]: column 0 the positive, the same negatives for each one.
  logits = tf.concat([
      positive_logits[..., tf.newaxis],
      tf.broadcast_to(negative_logits[:, tf.newaxis, :],
                      [batch, num_pos, num_neg])], axis=-1)
  per_positive = tf.reduce_logsumexp(logits, axis=-1) - positive_logits
  correct = tf.cast(
      positive_logits > tf.reduce_max(negative_logits, axis=-1,
                                      keepdims=True), tf.float32)
  depth = tf.shape(positives)[2]
  return {
      'loss': tf.reduce_mean(per_positive),
      'accuracy': tf.reduce_mean(correct),
      'logits': logits,
      'keys': tf.stop_gradient(
          tf.reshape(positives, [batch * num_pos, depth])),
  }


def _check_queue(queue, anchor: tf.Tensor, where: str) -> Optional[tf.Tensor]:
  if queue is None:
    return None
  queue = tf.convert_to_tensor(queue)
  _check_rank(queue, 2, 'queue', where)
  _check_dims(anchor, queue, (1,), (1,), 'feature dims of the anchor and '
              '`queue`', where)
  return _l2_normalize(tf.stop_gradient(queue))


def video_infonce(anchor_clips: tf.Tensor,
                  positive_clips: tf.Tensor,
                  temperature: float = VIDEO_TEMPERATURE,
                  queue: Optional[tf.Tensor] = None) -> dict[str, tf.Tensor]:
  """Video-level instance discrimination (§3.2).

  The video embedding of a tuple is the mean of its K clip embeddings,
  L2-normalized: v = normalize(mean_k clips[:, k]). With a the anchor tuple's
  and p the positive tuple's video embedding,

    loss(i) = -log exp(a_i.p_i/t) / (exp(a_i.p_i/t) + sum_n exp(a_i.n/t))

  where n runs over the positive-tuple embeddings p_j of the other videos of
  the global batch (all replicas), or over the rows of `queue`. The release
  averages the backbone features before its MLP head (models/resnet_mlp.py
  lines 259-261); such a model passes its one embedding per tuple as K = 1.

  Args:
    anchor_clips: [B, K, D] clip embeddings of the anchor tuple (any float
      dtype; cast to float32 here).
    positive_clips: [B, K', D] clip embeddings of the positive tuple of the
      same videos (from the momentum encoder in the queue mode; K' may differ
      from K).
    temperature: softmax temperature (> 0).
    queue: optional [Q, D] keys of past steps (no gradient); None for in-batch
      negatives.

  Returns:
    Dict of float32 tensors:
      'loss': scalar, mean over the B local anchors.
      'accuracy': scalar, fraction of anchors whose positive beats every
        negative.
      'logits': [B, 1, 1 + N] logits; column 0 the positive, then the N
        negatives (in-batch: N = G, the anchor's own video masked; queue:
        N = Q).
      'keys': [B, D] the normalized positive video embeddings, without
        gradient: what `enqueue` takes (after cross_replica_concat).
      'anchor_embedding': [B, D] the normalized anchor video embeddings.
  """
  where = 'video_infonce'
  _check_temperature(temperature, where)
  anchor_clips = tf.convert_to_tensor(anchor_clips)
  positive_clips = tf.convert_to_tensor(positive_clips)
  _check_rank(anchor_clips, 3, 'anchor_clips', where)
  _check_rank(positive_clips, 3, 'positive_clips', where)
  _check_dims(anchor_clips, positive_clips, (0, 2), (0, 2),
              '`anchor_clips` and `positive_clips` (batch, feature dims)',
              where)
  anchor = _l2_normalize(
      tf.reduce_mean(tf.cast(anchor_clips, tf.float32), axis=1))
  positive = _l2_normalize(
      tf.reduce_mean(tf.cast(positive_clips, tf.float32), axis=1))
  queue = _check_queue(queue, anchor, where)
  out = _multi_positive_infonce(anchor, positive[:, tf.newaxis], temperature,
                                queue)
  out['anchor_embedding'] = anchor
  return out


def inter_frame_infonce(anchor: tf.Tensor,
                        positives: tf.Tensor,
                        temperature: float = INTER_TEMPERATURE,
                        queue: Optional[tf.Tensor] = None
                        ) -> dict[str, tf.Tensor]:
  """SeCo's inter-frame instance discrimination (VCLR eq. 2).

  Each of the P positives (other frames of the same video, and an
  augmentation of the anchor frame) gives its own InfoNCE against the same
  negatives; the loss is the mean over the B local anchors and P positives:

    loss(i, p) = -log exp(a_i.k_ip/t) / (exp(a_i.k_ip/t) + sum_n exp(a_i.n/t))

  where n runs over the P keys k_jq of every other video j of the global
  batch (all replicas), or over the rows of `queue` (the release fills it with
  the same keys, train_vclr.py lines 120-122).

  Args:
    anchor: [B, D] anchor frame embeddings (any float dtype).
    positives: [B, P, D] positive embeddings of the same videos.
    temperature: softmax temperature (> 0).
    queue: optional [Q, D] keys of past steps (no gradient); None for in-batch
      negatives.

  Returns:
    Dict of float32 tensors:
      'loss': scalar, mean over the B * P local (anchor, positive) pairs.
      'accuracy': scalar, fraction of those pairs whose positive beats every
        negative.
      'logits': [B, P, 1 + N]; column 0 the positive, then the negatives
        (in-batch: N = G * P in (video, positive) order with the anchor's
        own video masked; queue: N = Q).
      'keys': [B * P, D] the normalized positives, row b * P + p, without
        gradient: what `enqueue` takes (after cross_replica_concat, the rows
        are then in global-batch order whatever the number of replicas).
  """
  where = 'inter_frame_infonce'
  _check_temperature(temperature, where)
  anchor = tf.convert_to_tensor(anchor)
  positives = tf.convert_to_tensor(positives)
  _check_rank(anchor, 2, 'anchor', where)
  _check_rank(positives, 3, 'positives', where)
  _check_dims(anchor, positives, (0, 1), (0, 2),
              '`anchor` and `positives` (batch, feature dims)', where)
  anchor = _l2_normalize(anchor)
  positives = _l2_normalize(positives)
  queue = _check_queue(queue, anchor, where)
  return _multi_positive_infonce(anchor, positives, temperature, queue)


def intra_frame_infonce(anchor: tf.Tensor,
                        positive: tf.Tensor,
                        negatives: tf.Tensor,
                        temperature: float = INTRA_TEMPERATURE,
                        separate_negatives: bool = False
                        ) -> dict[str, tf.Tensor]:
  """SeCo's intra-frame instance discrimination (VCLR eq. 3).

  The positive is another augmentation of the anchor frame; the negatives are
  only the N other frames of the same video (a small negative set, no
  cross-video or cross-replica negatives):

    loss(i) = -log exp(a_i.k_i/t) / (exp(a_i.k_i/t) + sum_n exp(a_i.k_in/t))

  With `separate_negatives` the release's variant is computed instead: one
  2-way softmax of the positive against each negative, averaged over the N
  negatives (models/Contrast.py lines 56-58).

  Args:
    anchor: [B, D] anchor frame embeddings (any float dtype).
    positive: [B, D] embeddings of another augmentation of the same frames.
    negatives: [B, N, D] embeddings of other frames of the same videos.
    temperature: softmax temperature (> 0).
    separate_negatives: False for eq. 3 (one softmax over 1 + N), True for
      the release's N two-way softmaxes.

  Returns:
    Dict of float32 tensors:
      'loss': scalar, mean over the B local anchors (and the N negatives when
        `separate_negatives`).
      'accuracy': scalar, fraction of anchors whose positive beats every
        negative (every negative separately with `separate_negatives`).
      'logits': [B, 1 + N] (eq. 3) or [B, N, 2] (separate); column 0 the
        positive.
  """
  where = 'intra_frame_infonce'
  _check_temperature(temperature, where)
  anchor, positive, negatives = (
      tf.convert_to_tensor(x) for x in (anchor, positive, negatives))
  _check_rank(anchor, 2, 'anchor', where)
  _check_rank(positive, 2, 'positive', where)
  _check_rank(negatives, 3, 'negatives', where)
  _check_dims(anchor, positive, (0, 1), (0, 1),
              '`anchor` and `positive`', where)
  _check_dims(anchor, negatives, (0, 1), (0, 2),
              '`anchor` and `negatives` (batch, feature dims)', where)
  anchor, positive, negatives = (
      _l2_normalize(x) for x in (anchor, positive, negatives))
  positive_logit = tf.reduce_sum(anchor * positive, axis=-1) / temperature
  negative_logits = tf.einsum('bd,bnd->bn', anchor, negatives) / temperature
  if separate_negatives:
    logits = tf.stack([tf.broadcast_to(positive_logit[:, tf.newaxis],
                                       tf.shape(negative_logits)),
                       negative_logits], axis=-1)  # [B, N, 2]
    per_pair = (tf.reduce_logsumexp(logits, axis=-1) -
                positive_logit[:, tf.newaxis])
    correct = tf.cast(positive_logit[:, tf.newaxis] > negative_logits,
                      tf.float32)
    return {'loss': tf.reduce_mean(per_pair),
            'accuracy': tf.reduce_mean(correct),
            'logits': logits}
  logits = tf.concat([positive_logit[:, tf.newaxis], negative_logits],
                     axis=-1)  # [B, 1 + N]
  per_anchor = tf.reduce_logsumexp(logits, axis=-1) - positive_logit
  correct = tf.cast(positive_logit > tf.reduce_max(negative_logits, axis=-1),
                    tf.float32)
  return {'loss': tf.reduce_mean(per_anchor),
          'accuracy': tf.reduce_mean(correct),
          'logits': logits}


def temporal_order_loss(logits: tf.Tensor,
                        labels: tf.Tensor) -> dict[str, tf.Tensor]:
  """Temporal-order regularization (§3.3): 4-way cross-entropy.

  Args:
    logits: [B, 4] outputs of the linear classifier on the concatenated tuple
      embeddings (any float dtype).
    labels: [B] int order classes, `order_label`'s encoding: 0 both tuples in
      order, 1 anchor shuffled, 2 positive shuffled, 3 both shuffled.

  Returns:
    Dict of float32 scalars: 'loss' (mean cross-entropy over the B local
    pairs) and 'accuracy' (fraction whose arg-max logit is the label).
  """
  where = 'temporal_order_loss'
  logits = tf.convert_to_tensor(logits)
  labels = tf.convert_to_tensor(labels)
  _check_rank(logits, 2, 'logits', where)
  _check_rank(labels, 1, 'labels', where)
  if logits.shape.rank == 2 and logits.shape[1] not in (None,
                                                        NUM_ORDER_CLASSES):
    raise ValueError(f'vclr.{where}: `logits` must have {NUM_ORDER_CLASSES} '
                     f'columns (the order classes), got shape {logits.shape}.')
  _check_dims(logits, labels, (0,), (0,), 'batch sizes of `logits` and '
              '`labels`', where)
  if labels.dtype.is_floating or labels.dtype == tf.bool:
    raise ValueError(f'vclr.{where}: `labels` must be integers, got dtype '
                     f'{labels.dtype.name}.')
  static = tf.get_static_value(labels)
  if static is not None and ((static < 0).any() or
                             (static >= NUM_ORDER_CLASSES).any()):
    raise ValueError(f'vclr.{where}: `labels` must lie in [0, '
                     f'{NUM_ORDER_CLASSES}), got {static.tolist()}.')
  logits = tf.cast(logits, tf.float32)
  labels = tf.cast(labels, tf.int32)
  per_pair = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                            logits=logits)
  correct = tf.cast(
      tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels),
      tf.float32)
  return {'loss': tf.reduce_mean(per_pair),
          'accuracy': tf.reduce_mean(correct)}


def vclr_loss(anchor_clips: Optional[tf.Tensor] = None,
              positive_clips: Optional[tf.Tensor] = None,
              inter_anchor: Optional[tf.Tensor] = None,
              inter_positives: Optional[tf.Tensor] = None,
              intra_anchor: Optional[tf.Tensor] = None,
              intra_positive: Optional[tf.Tensor] = None,
              intra_negatives: Optional[tf.Tensor] = None,
              order_logits: Optional[tf.Tensor] = None,
              order_labels: Optional[tf.Tensor] = None,
              *,
              video_queue: Optional[tf.Tensor] = None,
              inter_queue: Optional[tf.Tensor] = None,
              use_video: bool = True,
              use_inter: bool = True,
              use_intra: bool = True,
              use_order: bool = True,
              video_temperature: float = VIDEO_TEMPERATURE,
              inter_temperature: float = INTER_TEMPERATURE,
              intra_temperature: float = INTRA_TEMPERATURE,
              intra_separate_negatives: bool = False
              ) -> dict[str, tf.Tensor]:
  """VCLR objective: the unweighted sum of the enabled terms (A.1, Table 6).

  A switched-off term is not computed (its inputs may be None) and reports 0
  for its loss and accuracy, so the dict keys stay the same for logging.

  Args:
    anchor_clips: [B, K, D] anchor-tuple clip embeddings (`video_infonce`).
    positive_clips: [B, K', D] positive-tuple clip embeddings.
    inter_anchor: [B, D] (`inter_frame_infonce`).
    inter_positives: [B, P, D].
    intra_anchor: [B, D] (`intra_frame_infonce`).
    intra_positive: [B, D].
    intra_negatives: [B, N, D].
    order_logits: [B, 4] (`temporal_order_loss`).
    order_labels: [B] int order classes.
    video_queue: optional [Q, D] queue of the video term (None: in-batch).
    inter_queue: optional [Q, D] queue of the inter-frame term (None:
      in-batch).
    use_video: include the video-level term.
    use_inter: include the inter-frame term.
    use_intra: include the intra-frame term.
    use_order: include the temporal-order term.
    video_temperature: temperature of the video term.
    inter_temperature: temperature of the inter-frame term.
    intra_temperature: temperature of the intra-frame term.
    intra_separate_negatives: the release's variant of the intra-frame term
      (see `intra_frame_infonce`).

  Returns:
    Dict of float32 scalars: 'total_loss' and '{video,inter,intra,order}_loss'
    and '..._accuracy'; plus 'video_keys' [B, D] and 'inter_keys' [B * P, D]
    for the enabled contrastive terms (to `enqueue` after
    cross_replica_concat). Divide 'total_loss' by num_replicas_in_sync before
    taking gradients.

  Raises:
    ValueError: if every term is off, or an enabled term lacks an input.
  """
  switches = {'video': use_video, 'inter': use_inter, 'intra': use_intra,
              'order': use_order}
  if not any(switches.values()):
    raise ValueError('vclr.vclr_loss: at least one of use_video, use_inter, '
                     'use_intra, use_order must be True.')
  inputs = {
      'video': {'anchor_clips': anchor_clips,
                'positive_clips': positive_clips},
      'inter': {'inter_anchor': inter_anchor,
                'inter_positives': inter_positives},
      'intra': {'intra_anchor': intra_anchor,
                'intra_positive': intra_positive,
                'intra_negatives': intra_negatives},
      'order': {'order_logits': order_logits, 'order_labels': order_labels},
  }
  for term, on in switches.items():
    missing = [name for name, x in inputs[term].items() if x is None]
    if on and missing:
      raise ValueError(f'vclr.vclr_loss: use_{term}=True needs {missing}, '
                       'got None.')

  outputs = {}
  if use_video:
    outputs['video'] = video_infonce(anchor_clips, positive_clips,
                                     video_temperature, queue=video_queue)
  if use_inter:
    outputs['inter'] = inter_frame_infonce(inter_anchor, inter_positives,
                                           inter_temperature,
                                           queue=inter_queue)
  if use_intra:
    outputs['intra'] = intra_frame_infonce(
        intra_anchor, intra_positive, intra_negatives, intra_temperature,
        separate_negatives=intra_separate_negatives)
  if use_order:
    outputs['order'] = temporal_order_loss(order_logits, order_labels)

  zero = tf.constant(0.0, tf.float32)
  result = {'total_loss': tf.add_n([out['loss'] for out in outputs.values()])}
  for term in switches:
    out = outputs.get(term)
    result[f'{term}_loss'] = zero if out is None else out['loss']
    result[f'{term}_accuracy'] = zero if out is None else out['accuracy']
  for term in ('video', 'inter'):
    if term in outputs:
      result[f'{term}_keys'] = outputs[term]['keys']
  return result
