"""k-nearest-neighbour probe of global features (online representation check).

Validation videos (queries) are classified by a weighted vote of their k most
cosine-similar training videos (the memory bank), as in the instance
discrimination literature (Wu et al., 2018): neighbour j votes for its class
with weight exp(s_j / T). Top-1 accuracy is reported over queries whose label
is known. Used by the pretraining task to compare a learned network with a
randomly initialized one (docs/demo.md).
"""

from typing import Dict, Optional

import numpy as np


def knn_classify(query_features: np.ndarray, bank_features: np.ndarray,
                 bank_labels: np.ndarray, num_classes: int,
                 num_neighbors: int = 20,
                 temperature: float = 0.07) -> np.ndarray:
  """Predicts query classes by weighted kNN over a labelled bank.

  Args:
    query_features: [Q, D] features (any scale; cosine similarity is used).
    bank_features: [M, D] features of the labelled bank.
    bank_labels: [M] int labels in [0, num_classes).
    num_classes: number of classes.
    num_neighbors: k; clipped to the bank size.
    temperature: vote weight exp(similarity / temperature).

  Returns:
    [Q] int predictions, or an empty array when there are no queries.
  """
  query_features = np.asarray(query_features, np.float64)
  bank_features = np.asarray(bank_features, np.float64)
  bank_labels = np.asarray(bank_labels, np.int64)
  if query_features.shape[0] == 0:
    return np.zeros([0], np.int64)
  if bank_features.shape[0] == 0:
    raise ValueError('kNN needs a non-empty memory bank of labelled videos.')
  if bank_labels.min() < 0 or bank_labels.max() >= num_classes:
    raise ValueError(f'Bank labels must lie in [0, {num_classes}); got '
                     f'[{bank_labels.min()}, {bank_labels.max()}].')

  def _normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

  sims = _normalize(query_features) @ _normalize(bank_features).T  # [Q, M]
  k = min(num_neighbors, bank_features.shape[0])
  # Stable sort, so equal similarities resolve to the lower bank index.
  neighbors = np.argsort(-sims, axis=1, kind='stable')[:, :k]
  neighbor_sims = np.take_along_axis(sims, neighbors, axis=1)
  weights = np.exp((neighbor_sims - 1.0) / temperature)  # Shift for range.
  votes = np.zeros([query_features.shape[0], num_classes])
  np.add.at(votes, (np.arange(votes.shape[0])[:, None],
                    bank_labels[neighbors]), weights)
  return np.argmax(votes, axis=1)


class KnnEvaluator:
  """Accumulates bank and query features over batches; reports top-1."""

  def __init__(self, num_classes: int, num_neighbors: int = 20,
               temperature: float = 0.07):
    self._num_classes = num_classes
    self._num_neighbors = num_neighbors
    self._temperature = temperature
    self.reset()

  def reset(self):
    self._features, self._labels, self._is_query = [], [], []

  def update(self, features: np.ndarray, labels: np.ndarray,
             is_query: np.ndarray):
    """Adds a batch: features [B, D], labels [B] (-1 = unknown), is_query [B]."""
    self._features.append(np.asarray(features, np.float32))
    self._labels.append(np.asarray(labels, np.int64).reshape([-1]))
    self._is_query.append(np.asarray(is_query, bool).reshape([-1]))

  def result(self) -> Dict[str, float]:
    """Returns knn_top1 (fraction), and the query and bank counts used."""
    if not self._features:
      return {}
    features = np.concatenate(self._features)
    labels = np.concatenate(self._labels)
    is_query = np.concatenate(self._is_query)
    labelled = labels >= 0
    bank = ~is_query & labelled
    queries = is_query & labelled
    out = {'knn_num_queries': float(queries.sum()),
           'knn_num_bank': float(bank.sum())}
    if not queries.any() or not bank.any():
      return out
    predictions = knn_classify(features[queries], features[bank], labels[bank],
                               self._num_classes, self._num_neighbors,
                               self._temperature)
    out['knn_top1'] = float(np.mean(predictions == labels[queries]))
    return out


def merge_replica_values(value) -> Optional[np.ndarray]:
  """Concatenates per-replica outputs (tuples) of a validation step on host."""
  if isinstance(value, (tuple, list)):
    parts = [np.asarray(v) for v in value]
    return np.concatenate(parts, axis=0) if parts else None
  return np.asarray(value)
