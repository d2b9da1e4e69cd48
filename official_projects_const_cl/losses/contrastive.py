"""Contrastive losses of CVRL and ConST-CL with cross-replica negatives.

Implements
  * the global clip-level InfoNCE of CVRL (Qian et al. 2021, eq. 1; SimCLR's
    NT-Xent): `global_infonce`;
  * the region-level InfoNCE of ConST-CL (Yuan et al. CVPR 2022, §3.1-3.2,
    eq. 2/4 for the target choice, eq. 3/5 for the loss): `instance_infonce`;
  * the combined objective L = Lg + w * Lr (eq. 6): `const_cl_loss`.

All losses are pure functions of tensors returning a dict (the loss plus the
diagnostics worth logging). Inputs of any float dtype are cast to float32 and
L2-normalized here, so the softmax never runs in bfloat16 (docs/choices.md).

Negatives come from the global batch through the portable
`ReplicaContext.all_gather` (no `xla.replica_id`, no TPU-only ops), whose
gradient all-reduces the upstream gradient and slices out the local part. With
each replica minimizing `loss / num_replicas_in_sync` and the optimizer summing
the replica gradients (Model Garden's convention), training is exactly the
single-device computation on the global batch.

Distribution assumption: every replica holds the same local batch size (the
Model Garden training input uses `drop_remainder=True`); `replica_offset`
relies on it.
"""

from typing import Optional, Mapping

import tensorflow as tf

# Added to masked logits. Finite (not -inf) so that no gradient can become NaN;
# far below any real logit |cos| / temperature.
_MASK_VALUE = -1e9


def _replica_context():
  """Returns the replica context, or None in a cross-replica context."""
  return tf.distribute.get_replica_context()


def num_replicas() -> int:
  """Number of replicas of the current replica context (1 outside one)."""
  ctx = _replica_context()
  return 1 if ctx is None else ctx.num_replicas_in_sync


def cross_replica_concat(x: tf.Tensor) -> tf.Tensor:
  """Concatenates `x` along axis 0 over all replicas, in replica-id order.

  Args:
    x: [B, ...] local tensor (numeric; same shape on every replica).

  Returns:
    [R * B, ...] tensor where rows `r*B:(r+1)*B` come from replica r. Returns
    `x` itself under the default strategy, with one replica, or in a
    cross-replica context. The gradient flows back to every replica's `x`
    (all_gather's gradient sums the upstream gradients of all replicas).
  """
  ctx = _replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return x
  return ctx.all_gather(x, axis=0)


def cross_replica_sum(x: tf.Tensor) -> tf.Tensor:
  """Sums `x` over replicas (identity with one replica); no gradient."""
  x = tf.stop_gradient(x)
  ctx = _replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return x
  return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def replica_offset(local_batch) -> tf.Tensor:
  """Row of this replica's first example in the `cross_replica_concat` output.

  Args:
    local_batch: int or scalar int tensor, the per-replica batch size.

  Returns:
    int32 scalar: the summed batch sizes of the replicas before this one (0
    outside a strategy or in a cross-replica context). The sizes are gathered,
    so uneven per-replica batches (a partial last validation batch under
    MirroredStrategy) still index the right rows.
  """
  ctx = _replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return tf.constant(0, tf.int32)
  replica_id = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
  sizes = ctx.all_gather(
      tf.reshape(tf.cast(local_batch, tf.int32), [1]), axis=0)  # [R]
  return tf.reduce_sum(sizes[:replica_id])


def _l2_normalize(x: tf.Tensor) -> tf.Tensor:
  return tf.math.l2_normalize(tf.cast(x, tf.float32), axis=-1)


def _check_temperature(temperature: float, where: str,
                       module: str = 'contrastive') -> None:
  if not temperature > 0:
    raise ValueError(f'{module}.{where}: temperature must be > 0, got '
                     f'{temperature}.')


def _check_rank(x: tf.Tensor, rank: int, name: str, where: str,
                module: str = 'contrastive') -> None:
  if x.shape.rank is not None and x.shape.rank != rank:
    raise ValueError(f'{module}.{where}: `{name}` must have rank {rank}, '
                     f'got shape {x.shape}.')


def _check_compatible(a: tf.Tensor, b: tf.Tensor, names: str, where: str,
                      dims=None, dims_b=None,
                      module: str = 'contrastive') -> None:
  """Raises unless a.shape[dims] is compatible with b.shape[dims_b].

  `dims=None` compares whole shapes; `dims_b=None` uses `dims` for `b` too.
  """
  sa, sb = a.shape, b.shape
  if sa.rank is None or sb.rank is None:
    return
  if dims is not None:
    sa = tf.TensorShape([a.shape[d] for d in dims])
    sb = tf.TensorShape([b.shape[d] for d in
                         (dims if dims_b is None else dims_b)])
  if not sa.is_compatible_with(sb):
    raise ValueError(f'{module}.{where}: shapes of {names} do not match: '
                     f'{a.shape} vs {b.shape}.')


def global_infonce(embeddings_a: tf.Tensor,
                   embeddings_b: tf.Tensor,
                   temperature: float = 0.1,
                   anchor_weights: Optional[tf.Tensor] = None
                   ) -> dict[str, tf.Tensor]:
  """CVRL's clip-level InfoNCE (eq. 1) with negatives from all replicas.

  Every local clip of both views is an anchor (2B anchors). The positive of
  `a_i` is `b_i` (and vice versa); the negatives are all other clips of the
  global batch of both views, the anchor itself excluded:

    loss(a_i) = -log exp(a_i.b_i/t) / (sum_k exp(a_i.b_k/t)
                                         + sum_{k != i} exp(a_i.a_k/t))

  with k running over the R * B clips of all replicas.

  The returned `loss` is the mean over the 2B *local* anchors. Under a
  `tf.distribute` strategy with R replicas (equal local batches) the caller
  minimizes `loss / R` on each replica and sums the gradients; this equals the
  gradient of the mean over all 2RB anchors on a single device.

  Args:
    embeddings_a: [B, D] view-a embeddings of the local batch (any float
      dtype; cast to float32 and L2-normalized here).
    embeddings_b: [B, D] view-b embeddings, row i from the same video as row i
      of `embeddings_a`.
    temperature: softmax temperature tau (> 0).
    anchor_weights: optional [B] weights of the local videos as anchors (both
      views); all videos stay negatives. The loss and accuracy are then the
      weighted means (0 when all weights are 0). Used by validation to score
      held-out videos only while training videos share the batch.

  Returns:
    Dict of float32 tensors:
      'loss': scalar, mean over the 2B local anchors.
      'accuracy': scalar, fraction of anchors whose positive has the highest
        logit.
      'logits_a': [B, 2G] logits of the view-a anchors, G = R * B; columns
        0..G-1 are the view-b clips of the global batch, G..2G-1 the view-a
        clips (self-similarity set to a large negative value).
      'logits_b': [B, 2G] same for view-b anchors (columns: view a, view b).
      'labels': int32 [B], column of each anchor's positive (global index of
        its video).
  """
  where = 'global_infonce'
  _check_temperature(temperature, where)
  embeddings_a = tf.convert_to_tensor(embeddings_a)
  embeddings_b = tf.convert_to_tensor(embeddings_b)
  _check_rank(embeddings_a, 2, 'embeddings_a', where)
  _check_rank(embeddings_b, 2, 'embeddings_b', where)
  _check_compatible(embeddings_a, embeddings_b,
                    '`embeddings_a` and `embeddings_b`', where)

  a = _l2_normalize(embeddings_a)
  b = _l2_normalize(embeddings_b)
  a_all = cross_replica_concat(a)
  b_all = cross_replica_concat(b)

  local_batch = tf.shape(a)[0]
  global_batch = tf.shape(a_all)[0]
  labels = replica_offset(local_batch) + tf.range(local_batch)
  is_self = tf.cast(tf.one_hot(labels, global_batch), tf.bool)  # [B, G]

  def anchor_logits(anchor, other_all, same_all):
    to_other = tf.matmul(anchor, other_all, transpose_b=True) / temperature
    to_same = tf.matmul(anchor, same_all, transpose_b=True) / temperature
    to_same = tf.where(is_self, tf.constant(_MASK_VALUE, tf.float32), to_same)
    return tf.concat([to_other, to_same], axis=1)

  logits_a = anchor_logits(a, b_all, a_all)
  logits_b = anchor_logits(b, a_all, b_all)
  logits = tf.concat([logits_a, logits_b], axis=0)  # [2B, 2G]
  all_labels = tf.concat([labels, labels], axis=0)

  per_anchor = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=all_labels, logits=logits)
  correct = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32),
                             all_labels), tf.float32)
  if anchor_weights is None:
    weights = tf.ones_like(per_anchor)
  else:
    w = tf.cast(tf.reshape(anchor_weights, [-1]), tf.float32)
    weights = tf.concat([w, w], axis=0)
  total = tf.reduce_sum(weights)
  return {
      'loss': tf.math.divide_no_nan(tf.reduce_sum(weights * per_anchor), total),
      'accuracy': tf.math.divide_no_nan(tf.reduce_sum(weights * correct),
                                        total),
      'logits_a': logits_a,
      'logits_b': logits_b,
      'labels': labels,
  }


def nearest_region_index(match_queries: tf.Tensor,
                         match_keys: tf.Tensor,
                         key_mask: tf.Tensor) -> tf.Tensor:
  """Target region of each source region: eq. 2/4, j = argmax_j h_i . h'_j.

  The paper's text prints "argmin h_i . h'_j"; with L2-normalized features
  the closest region is the one of maximal cosine similarity, which is what is
  computed here. No gradient flows through the choice.

  Args:
    match_queries: [B, Nq, C] raw source-view region features h.
    match_keys: [B, Nk, C] raw target-view region features h'.
    key_mask: [B, Nk] 1 for valid target regions (invalid ones are never
      chosen).

  Returns:
    int32 [B, Nq] index into the Nk target regions of the same video
    (0 for a video without any valid target region).
  """
  q = _l2_normalize(tf.stop_gradient(match_queries))
  k = _l2_normalize(tf.stop_gradient(match_keys))
  similarity = tf.einsum('bic,bjc->bij', q, k)
  key_valid = tf.cast(key_mask, tf.bool)[:, tf.newaxis, :]
  similarity = tf.where(key_valid, similarity,
                        tf.constant(_MASK_VALUE, tf.float32))
  return tf.argmax(similarity, axis=-1, output_type=tf.int32)


def instance_infonce(predictions: tf.Tensor,
                     targets: tf.Tensor,
                     match_queries: tf.Tensor,
                     match_keys: tf.Tensor,
                     query_mask: tf.Tensor,
                     key_mask: tf.Tensor,
                     temperature: float = 0.2) -> dict[str, tf.Tensor]:
  """ConST-CL region InfoNCE (eq. 5), one direction: source -> target view.

  For each valid source region i of video b, the target j is the valid target
  region of the same video nearest to i in raw feature space
  (`nearest_region_index`, under stop_gradient). With z = predictions
  (g(h_i, F'_c)) and h' = targets, both L2-normalized:

    loss(b, i) = -log exp(z_bi.h'_bj/t) / (exp(z_bi.h'_bj/t)
                                            + sum_{c != b, k} exp(z_bi.h'_ck/t))

  where (c, k) runs over the valid target regions of all *other* videos of the
  global batch (all replicas). Other regions of video b are not negatives.
  Gradients reach `predictions` and `targets` (positive and negatives), never
  `match_queries` / `match_keys`.

  ConST-CL is symmetric: the caller evaluates this a->b and b->a and averages
  the two losses (`const_cl_loss` does the averaging).

  Normalization: `loss` = R * (sum of local per-region losses) / (number of
  valid source regions over all replicas). With one replica this is the plain
  masked mean; with R replicas `sum_r loss_r / R` is the masked mean over the
  global batch even when replicas hold different numbers of valid regions, so
  the `loss / R` + summed-gradient convention reproduces single-device
  training exactly. A video with no valid target region contributes nothing;
  with no valid region at all the loss is 0 (finite, zero gradients).

  Args:
    predictions: [B, Nq, D] predicted target representations z of the source
      regions (any float dtype).
    targets: [B, Nk, D] target-view region representations h' (contrasted
      against; receives gradients).
    match_queries: [B, Nq, C] raw source region features h used to choose the
      target (usually the pre-head h; C may differ from D).
    match_keys: [B, Nk, C] raw target region features used for the choice.
    query_mask: [B, Nq] 1/True for valid source regions.
    key_mask: [B, Nk] 1/True for valid target regions.
    temperature: softmax temperature tau (> 0).

  Returns:
    Dict of float32 tensors:
      'loss': scalar (see Normalization).
      'accuracy': scalar, fraction of the local valid source regions whose
        positive logit beats every negative (0 when none is valid).
      'num_valid': scalar, number of local valid source regions.
      'num_valid_global': scalar, the same summed over replicas.
      'target_index': int32 [B, Nq] chosen target region per source region.
  """
  where = 'instance_infonce'
  _check_temperature(temperature, where)
  predictions, targets, match_queries, match_keys, query_mask, key_mask = (
      tf.convert_to_tensor(x) for x in (predictions, targets, match_queries,
                                        match_keys, query_mask, key_mask))
  for name, x, rank in (('predictions', predictions, 3),
                        ('targets', targets, 3),
                        ('match_queries', match_queries, 3),
                        ('match_keys', match_keys, 3),
                        ('query_mask', query_mask, 2),
                        ('key_mask', key_mask, 2)):
    _check_rank(x, rank, name, where)
  _check_compatible(predictions, targets, '`predictions` and `targets` '
                    '(batch, feature dims)', where, dims=(0, 2))
  _check_compatible(predictions, match_queries, '`predictions` and '
                    '`match_queries` (batch, regions)', where, dims=(0, 1))
  _check_compatible(targets, match_keys, '`targets` and `match_keys` '
                    '(batch, regions)', where, dims=(0, 1))
  _check_compatible(match_queries, match_keys, '`match_queries` and '
                    '`match_keys` (batch, feature dims)', where, dims=(0, 2))
  _check_compatible(predictions, query_mask, '`predictions` and `query_mask`',
                    where, dims=(0, 1))
  _check_compatible(targets, key_mask, '`targets` and `key_mask`', where,
                    dims=(0, 1))

  z = _l2_normalize(predictions)  # [B, Nq, D]
  h = _l2_normalize(targets)  # [B, Nk, D]
  query_valid = tf.cast(query_mask, tf.bool)
  key_valid = tf.cast(key_mask, tf.bool)

  target_index = nearest_region_index(match_queries, match_keys, key_mask)
  has_key = tf.reduce_any(key_valid, axis=1)  # [B]
  valid = tf.logical_and(query_valid, has_key[:, tf.newaxis])  # [B, Nq]

  positive = tf.gather(h, target_index, batch_dims=1)  # [B, Nq, D]
  positive_logit = tf.reduce_sum(z * positive, axis=-1) / temperature

  # Negatives: valid target regions of the other videos of the global batch.
  h_all = cross_replica_concat(h)  # [G, Nk, D]
  key_valid_all = cross_replica_concat(tf.cast(key_valid, tf.float32)) > 0.5
  batch, num_queries = tf.shape(z)[0], tf.shape(z)[1]
  global_batch, num_keys = tf.shape(h_all)[0], tf.shape(h_all)[1]
  depth = tf.shape(z)[2]
  negative_logits = tf.matmul(
      tf.reshape(z, [batch * num_queries, depth]),
      tf.reshape(h_all, [global_batch * num_keys, depth]),
      transpose_b=True) / temperature
  negative_logits = tf.reshape(
      negative_logits, [batch, num_queries, global_batch, num_keys])
  video_id = replica_offset(batch) + tf.range(batch)  # [B]
  other_video = tf.not_equal(video_id[:, tf.newaxis],
                             tf.range(global_batch)[tf.newaxis, :])  # [B, G]
  negative_valid = tf.logical_and(other_video[:, tf.newaxis, :, tf.newaxis],
                                  key_valid_all[tf.newaxis, tf.newaxis])
  negative_logits = tf.where(negative_valid, negative_logits,
                             tf.constant(_MASK_VALUE, tf.float32))
  negative_logits = tf.reshape(negative_logits,
                               [batch, num_queries, global_batch * num_keys])

  logits = tf.concat([positive_logit[..., tf.newaxis], negative_logits],
                     axis=-1)
  per_region = tf.reduce_logsumexp(logits, axis=-1) - positive_logit
  per_region = tf.where(valid, per_region, tf.zeros_like(per_region))

  valid_f = tf.cast(valid, tf.float32)
  num_valid = tf.reduce_sum(valid_f)
  num_valid_global = cross_replica_sum(num_valid)
  loss = tf.math.divide_no_nan(
      tf.reduce_sum(per_region) * float(num_replicas()), num_valid_global)

  correct = tf.cast(
      positive_logit > tf.reduce_max(negative_logits, axis=-1), tf.float32)
  accuracy = tf.math.divide_no_nan(tf.reduce_sum(correct * valid_f),
                                   num_valid)
  return {
      'loss': loss,
      'accuracy': accuracy,
      'num_valid': num_valid,
      'num_valid_global': num_valid_global,
      'target_index': target_index,
  }


def const_cl_loss(global_out: Mapping[str, tf.Tensor],
                  region_a2b: Mapping[str, tf.Tensor],
                  region_b2a: Mapping[str, tf.Tensor],
                  region_weight: float = 0.01) -> dict[str, tf.Tensor]:
  """ConST-CL objective L = Lg + w * Lr (eq. 6), Lr symmetric over views.

  Args:
    global_out: output of `global_infonce`.
    region_a2b: output of `instance_infonce` with view a as source.
    region_b2a: output of `instance_infonce` with view b as source.
    region_weight: w, the scale of the region loss (paper: 0.01).

  Returns:
    Dict of float32 scalars: 'total_loss', 'global_loss', 'region_loss'
    (mean of the two directions), 'global_accuracy', 'region_accuracy' (mean
    of the two directions). Same per-replica convention as the inputs: divide
    'total_loss' by num_replicas_in_sync before taking gradients.
  """
  if region_weight < 0:
    raise ValueError('contrastive.const_cl_loss: region_weight must be >= 0, '
                     f'got {region_weight}.')
  for name, out in (('global_out', global_out), ('region_a2b', region_a2b),
                    ('region_b2a', region_b2a)):
    missing = {'loss', 'accuracy'} - set(out)
    if missing:
      raise ValueError(f'contrastive.const_cl_loss: `{name}` lacks keys '
                       f'{sorted(missing)}; got {sorted(out)}.')
  global_loss = tf.cast(global_out['loss'], tf.float32)
  region_loss = 0.5 * (tf.cast(region_a2b['loss'], tf.float32) +
                       tf.cast(region_b2a['loss'], tf.float32))
  region_accuracy = 0.5 * (tf.cast(region_a2b['accuracy'], tf.float32) +
                           tf.cast(region_b2a['accuracy'], tf.float32))
  return {
      'total_loss': global_loss + region_weight * region_loss,
      'global_loss': global_loss,
      'region_loss': region_loss,
      'global_accuracy': tf.cast(global_out['accuracy'], tf.float32),
      'region_accuracy': region_accuracy,
  }
