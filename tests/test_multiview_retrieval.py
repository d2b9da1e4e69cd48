"""Multi-view aggregation and retrieval recall on hand-computed cases."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official_projects_const_cl.evaluation import multiview
from official_projects_const_cl.evaluation import retrieval
from official_projects_const_cl.tasks import recognition


def _logits(probabilities):
  return np.log(np.asarray(probabilities, np.float64))


# Video 0, two views. Mean of softmax: [0.375, 0.35, 0.275] -> class 0.
# (Mean of logits would pick class 1: ln(.7*.05)/2 = -1.68 < ln(.2*.5)/2 =
# -1.15; the per-view votes tie.)
VIDEO0 = [[0.7, 0.2, 0.1], [0.05, 0.5, 0.45]]
# Video 1: [0.1, 0.3, 0.6] and [0.2, 0.2, 0.6] -> mean [0.15, 0.25, 0.6].
VIDEO1 = [[0.1, 0.3, 0.6], [0.2, 0.2, 0.6]]


def test_video_probabilities_average_softmax_over_views():
  logits = tf.constant(np.stack([_logits(VIDEO0), _logits(VIDEO1)]))
  probs = multiview.video_probabilities(logits).numpy()
  np.testing.assert_allclose(probs, [[0.375, 0.35, 0.275], [0.15, 0.25, 0.6]],
                             atol=1e-6)
  # Shift invariance per view (softmax, not raw logits, is averaged).
  shifted = multiview.video_probabilities(logits + tf.constant(
      [[[5.0], [-3.0]], [[0.0], [10.0]]], tf.float64)).numpy()
  np.testing.assert_allclose(shifted, probs, atol=1e-6)


def test_top_k_correct_ranks():
  probs = tf.constant([[0.375, 0.35, 0.275], [0.15, 0.25, 0.6]])
  labels = tf.constant([0, 1])
  assert multiview.top_k_correct(probs, labels, 1).numpy().tolist() == [
      True, False]
  assert multiview.top_k_correct(probs, labels, 2).numpy().tolist() == [
      True, True]
  # A label tied with the top score is not beaten by it: rank 1.
  tied = tf.constant([[0.5, 0.5, 0.0]])
  assert multiview.top_k_correct(tied, tf.constant([1]), 1).numpy()[0]


class _ChannelMeans(tf_keras.Model):
  """Logits = per-channel means of a clip (3 channels -> 3 classes)."""

  def call(self, inputs, training=None):
    return tf.reduce_mean(inputs, axis=[1, 2, 3])


def test_validation_step_scores_per_video_not_per_clip():
  exp = exp_factory.get_exp_config('const_cl_linear_eval_demo')
  exp.task.train_data.num_classes = 3
  exp.task.validation_data.num_classes = 3
  task = recognition.RecognitionTask(exp.task)
  # Per-view logits are written into the pixels: [B=2, V=2, T=1, 2, 2, 3].
  view_logits = np.stack([_logits(VIDEO0), _logits(VIDEO1)])
  images = np.broadcast_to(view_logits[:, :, None, None, None, :],
                           (2, 2, 1, 2, 2, 3)).astype(np.float32)
  metrics = task.build_metrics(training=False)
  logs = task.validation_step(
      {'image': tf.constant(images), 'label': tf.constant([0, 1]),
       'num_corrupt_frames': tf.constant([0, 1])}, _ChannelMeans(), metrics)
  results = {m.name: float(m.result()) for m in metrics}
  assert results['top_1_accuracy'] == pytest.approx(0.5)  # Video 0 only.
  assert results['top_5_accuracy'] == pytest.approx(1.0)  # k = min(5, 3).
  assert results['num_videos'] == 2.0 and results['corrupt_frames'] == 1.0
  # Loss: -(ln 0.375 + ln 0.25) / 2.
  assert float(logs[task.loss]) == pytest.approx(
      -(np.log(0.375) + np.log(0.25)) / 2, rel=1e-5)


def test_recall_at_k_hand_built():
  gallery = np.array([[1.0, 0.0],    # label 0
                      [0.0, 1.0],    # label 1
                      [10.0, 1.0],   # label 2 (far away, but same direction)
                      [1.0, 1.0],    # label 1
                      [-1.0, 0.2]])  # label 0
  gallery_labels = np.array([0, 1, 2, 1, 0])
  queries = np.array([[1.0, 0.1],    # label 2: nearest by cosine is item 2
                      [0.0, 2.0],    # label 0
                      [-1.0, 0.0]])  # label 1
  query_labels = np.array([2, 0, 1])
  # Cosine order, query 0: 2 (1.0), 0 (.995), 3 (.774), 1 (.100), 4 (-.956).
  np.testing.assert_array_equal(
      retrieval.nearest_neighbors(queries, gallery, 5)[0], [2, 0, 3, 1, 4])
  res = retrieval.recall_at_k(queries, query_labels, gallery, gallery_labels,
                              ks=(1, 2, 3, 5))
  # q0: hit at rank 1. q1 (label 0): order 1, 3, 4, 2, 0 (labels 1, 1, 0,
  # ...) -> rank 3. q2 (label 1): order 4, 1, ... (labels 0, 1) -> rank 2.
  assert res['R@1'] == pytest.approx(1 / 3)
  assert res['R@2'] == pytest.approx(2 / 3)
  assert res['R@3'] == pytest.approx(1.0)
  assert res['R@5'] == pytest.approx(1.0)
  assert res['num_queries'] == 3 and res['num_gallery'] == 5


def test_recall_at_k_rejects_bad_input():
  with pytest.raises(ValueError, match='at least one query'):
    retrieval.recall_at_k(np.zeros([0, 2]), np.zeros([0]), np.ones([1, 2]),
                          np.zeros([1]))
  with pytest.raises(ValueError, match='differ in number'):
    retrieval.recall_at_k(np.ones([2, 2]), np.zeros([1]), np.ones([1, 2]),
                          np.zeros([1]))
  with pytest.raises(ValueError, match='>= 1'):
    retrieval.recall_at_k(np.ones([1, 2]), np.zeros([1]), np.ones([1, 2]),
                          np.zeros([1]), ks=(0,))
