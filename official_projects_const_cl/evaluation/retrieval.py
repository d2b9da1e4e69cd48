"""Nearest-neighbour video retrieval (VCLR, Wang et al. 2021, Table 4).

Each query video (validation set) retrieves its nearest training videos by
cosine similarity of their features. R@k is the fraction of queries for which
at least one of the k nearest training videos has the query's class.
"""

from typing import Dict, Sequence

import numpy as np


def _normalize(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest_neighbors(query_features: np.ndarray, gallery_features: np.ndarray,
                      k: int) -> np.ndarray:
  """Indices [Q, min(k, G)] of the most cosine-similar gallery items.

  Equal similarities resolve to the lower gallery index.
  """
  sims = (_normalize(np.asarray(query_features, np.float64)) @
          _normalize(np.asarray(gallery_features, np.float64)).T)
  k = min(k, sims.shape[1])
  return np.argsort(-sims, axis=1, kind='stable')[:, :k]


def recall_at_k(query_features: np.ndarray, query_labels: np.ndarray,
                gallery_features: np.ndarray, gallery_labels: np.ndarray,
                ks: Sequence[int] = (1, 5, 10, 20)) -> Dict[str, float]:
  """R@k of video retrieval.

  Args:
    query_features: [Q, D].
    query_labels: [Q] int.
    gallery_features: [G, D].
    gallery_labels: [G] int.
    ks: the k values (each >= 1; a k above G counts the whole gallery).

  Returns:
    {'R@k': fraction in [0, 1]} for each k, and 'num_queries' /
    'num_gallery'.

  Raises:
    ValueError: empty queries or gallery, mismatched sizes, or k < 1.
  """
  query_features = np.asarray(query_features)
  gallery_features = np.asarray(gallery_features)
  query_labels = np.asarray(query_labels).reshape(-1)
  gallery_labels = np.asarray(gallery_labels).reshape(-1)
  if query_features.shape[0] == 0 or gallery_features.shape[0] == 0:
    raise ValueError('Retrieval needs at least one query and one gallery '
                     f'video; got {query_features.shape[0]} queries and '
                     f'{gallery_features.shape[0]} gallery videos.')
  if (query_features.shape[0] != query_labels.shape[0] or
      gallery_features.shape[0] != gallery_labels.shape[0]):
    raise ValueError('Features and labels differ in number: queries '
                     f'{query_features.shape[0]} vs {query_labels.shape[0]}, '
                     f'gallery {gallery_features.shape[0]} vs '
                     f'{gallery_labels.shape[0]}.')
  if min(ks) < 1:
    raise ValueError(f'Every k must be >= 1, got {tuple(ks)}.')
  neighbors = nearest_neighbors(query_features, gallery_features, max(ks))
  hits = gallery_labels[neighbors] == query_labels[:, None]  # [Q, K]
  results = {}
  for k in ks:
    results[f'R@{k}'] = float(np.mean(np.any(hits[:, :k], axis=1)))
  results['num_queries'] = int(query_features.shape[0])
  results['num_gallery'] = int(gallery_features.shape[0])
  return results
