"""kNN probe against worked examples."""

import numpy as np
import pytest

from official_projects_const_cl.evaluation import knn


def test_knn_classify_worked_example():
  # Bank: two class-0 points near +x, one class-1 point at +y.
  bank = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
  labels = np.array([0, 0, 1])
  queries = np.array([[1.0, 0.2], [0.1, 1.0], [-1.0, 0.0]])
  # k=1: nearest neighbour by cosine.
  np.testing.assert_array_equal(
      knn.knn_classify(queries, bank, labels, 2, num_neighbors=1), [0, 1, 1])


def test_knn_weighted_vote_beats_majority():
  # Query is very close to one class-1 point and far from two class-0 points.
  bank = np.array([[1.0, 0.0], [0.0, 1.0], [0.05, 1.0]])
  bank = np.array([[0.0, 1.0], [1.0, 0.05], [1.0, -0.05]])
  labels = np.array([1, 0, 0])
  query = np.array([[0.02, 1.0]])
  # cos to class 1 ~ 1.0; to class 0 ~ 0.07. With T=0.07 one strong vote wins
  # against two weak ones: exp(0/T) > 2 * exp((0.07-1)/T).
  assert knn.knn_classify(query, bank, labels, 2, num_neighbors=3,
                          temperature=0.07)[0] == 1
  # With a huge temperature the vote is a plain majority.
  assert knn.knn_classify(query, bank, labels, 2, num_neighbors=3,
                          temperature=1e6)[0] == 0


def test_knn_evaluator_accumulates_and_ignores_unlabelled():
  ev = knn.KnnEvaluator(num_classes=2, num_neighbors=1)
  ev.update(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]),
            np.array([False, False]))
  ev.update(np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 1.0]]),
            np.array([0, 0, -1]), np.array([True, True, True]))
  out = ev.result()
  assert out['knn_num_bank'] == 2 and out['knn_num_queries'] == 2
  assert out['knn_top1'] == pytest.approx(0.5)


def test_knn_rejects_bad_bank_labels():
  with pytest.raises(ValueError, match='Bank labels'):
    knn.knn_classify(np.ones([1, 2]), np.ones([1, 2]), np.array([5]), 2)
