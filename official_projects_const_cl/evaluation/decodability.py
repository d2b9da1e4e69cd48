"""What a frozen feature linearly encodes: closed-form ridge probes.

A diagnosis, not a benchmark protocol (issue 11): given region features of
held-out objects and what is known about each object (identity, motion,
position), how much of it can a linear map read out? The probes are
deterministic closed-form ridge regressions on features standardized with
the training part's statistics:

* `ridge_classification_accuracy`: one-vs-rest regression onto one-hot
  targets, the class of the largest output (a least-squares classifier);
* `ridge_regression_r2`: regression onto real targets, the coefficient of
  determination on the test part, averaged over target columns.

Pure numpy (float64).
"""

from typing import Dict, Tuple

import numpy as np


def _check_pair(x: np.ndarray, y: np.ndarray, name: str) -> None:
  if x.ndim != 2:
    raise ValueError(f'{name} features must be [N, D], got shape {x.shape}.')
  if len(x) != len(y):
    raise ValueError(f'{name}: {len(x)} feature rows but {len(y)} targets.')
  if not len(x):
    raise ValueError(f'{name}: no examples.')


def standardize(train: np.ndarray, test: np.ndarray
                ) -> Tuple[np.ndarray, np.ndarray]:
  """Both parts minus the training mean, over the training std.

  A channel's std is floored at 1% of the mean channel std (1 if all are
  0): a channel almost constant on the training part but not on the test
  part would otherwise be scaled up by orders of magnitude on the test
  part (measured: R^2 of -50 from a random network's near-constant
  channels).
  """
  mean = train.mean(axis=0)
  std = train.std(axis=0)
  floor = 0.01 * float(std.mean()) if std.size and std.mean() > 0 else 1.0
  std = np.maximum(std, floor)
  return (train - mean) / std, (test - mean) / std


def ridge_fit(x: np.ndarray, y: np.ndarray, l2: float
              ) -> Tuple[np.ndarray, np.ndarray]:
  """(W [D, K], b [K]) minimizing ||x W + b - y||^2 + l2 ||W||^2.

  The bias is not penalized (it is the mean of y on centered x).
  """
  if l2 < 0:
    raise ValueError(f'l2 must be >= 0, got {l2}.')
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  if y.ndim == 1:
    y = y[:, None]
  x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
  xc, yc = x - x_mean, y - y_mean
  n, d = xc.shape
  if d <= n:  # Primal: a [D, D] system.
    w = np.linalg.solve(xc.T @ xc + l2 * np.eye(d), xc.T @ yc)
  else:  # Dual: a [N, N] system, same solution.
    w = xc.T @ np.linalg.solve(xc @ xc.T + l2 * np.eye(n), yc)
  return w, y_mean - x_mean @ w


def ridge_classification_accuracy(x_train: np.ndarray, y_train: np.ndarray,
                                  x_test: np.ndarray, y_test: np.ndarray,
                                  num_classes: int, l2: float = 1.0) -> float:
  """Test accuracy of the least-squares classifier trained on (x, y)_train."""
  _check_pair(x_train, y_train, 'train')
  _check_pair(x_test, y_test, 'test')
  for name, y in (('train', y_train), ('test', y_test)):
    if np.any((y < 0) | (y >= num_classes)):
      raise ValueError(f'{name} labels must be in [0, {num_classes}), got '
                       f'{sorted(set(np.asarray(y).tolist()))}.')
  x_train, x_test = standardize(np.asarray(x_train, np.float64),
                                np.asarray(x_test, np.float64))
  w, b = ridge_fit(x_train, np.eye(num_classes)[y_train], l2)
  predicted = np.argmax(x_test @ w + b, axis=1)
  return float(np.mean(predicted == y_test))


def ridge_regression_r2(x_train: np.ndarray, y_train: np.ndarray,
                        x_test: np.ndarray, y_test: np.ndarray,
                        l2: float = 1.0) -> float:
  """Test R^2 = 1 - SSE / SST (SST about the test mean), mean over columns.

  1 is a perfect read-out, 0 is predicting the mean, below 0 is worse.
  """
  _check_pair(x_train, y_train, 'train')
  _check_pair(x_test, y_test, 'test')
  y_train = np.asarray(y_train, np.float64).reshape(len(y_train), -1)
  y_test = np.asarray(y_test, np.float64).reshape(len(y_test), -1)
  x_train, x_test = standardize(np.asarray(x_train, np.float64),
                                np.asarray(x_test, np.float64))
  w, b = ridge_fit(x_train, y_train, l2)
  residual = ((x_test @ w + b - y_test) ** 2).sum(axis=0)
  total = ((y_test - y_test.mean(axis=0)) ** 2).sum(axis=0)
  total = np.where(total > 0, total, 1.0)
  return float(np.mean(1.0 - residual / total))


def majority_accuracy(y_train: np.ndarray, y_test: np.ndarray) -> float:
  """Accuracy on the test part of always answering the commonest train class
  (the chance level a probe must beat)."""
  values, counts = np.unique(y_train, return_counts=True)
  return float(np.mean(np.asarray(y_test) == values[np.argmax(counts)]))


def feature_statistics(features: np.ndarray) -> Dict[str, float]:
  """Scale and sparsity of [N, D] post-ReLU features.

  Returns:
    {'mean': mean value, 'std': std over all entries, 'rms': root mean
     square, 'zero_fraction': entries exactly 0, 'dead_channel_fraction':
     channels that are 0 on every example, 'mean_channel_std': the mean over
     channels of their std across examples (how much the feature varies
     between objects, the part a probe can use)}.
  """
  f = np.asarray(features, np.float64)
  if f.ndim != 2 or not f.size:
    raise ValueError(f'features must be a non-empty [N, D], got {f.shape}.')
  return {
      'mean': float(f.mean()),
      'std': float(f.std()),
      'rms': float(np.sqrt(np.mean(f ** 2))),
      'zero_fraction': float(np.mean(f == 0)),
      'dead_channel_fraction': float(np.mean(np.all(f == 0, axis=0))),
      'mean_channel_std': float(f.std(axis=0).mean()),
  }
