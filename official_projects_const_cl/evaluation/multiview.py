"""Multi-view video classification scores (supplementary §3.1).

A test video is seen through V views (temporal clips x spatial crops). Its
score is the average over views of the per-view softmax probabilities; top-k
accuracy is then counted once per video, never per clip.
"""

import tensorflow as tf


def video_probabilities(logits: tf.Tensor) -> tf.Tensor:
  """Per-video class probabilities from per-view logits.

  Args:
    logits: float [B, V, C] logits of the V views of each of B videos.

  Returns:
    float32 [B, C]: mean over views of softmax(logits).
  """
  logits = tf.cast(logits, tf.float32)
  return tf.reduce_mean(tf.nn.softmax(logits, axis=-1), axis=1)


def top_k_correct(probabilities: tf.Tensor, labels: tf.Tensor,
                  k: int) -> tf.Tensor:
  """Whether each video's label is among its k highest scores.

  Ties with the k-th score count as correct only if the label's score is
  strictly greater than the (k+1)-th highest, i.e. the label's rank
  (1 + number of classes with a strictly higher score) is <= k.

  Args:
    probabilities: float [B, C].
    labels: int [B] in [0, C).
    k: k >= 1.

  Returns:
    bool [B].
  """
  probabilities = tf.cast(probabilities, tf.float32)
  labels = tf.cast(labels, tf.int32)
  label_score = tf.gather(probabilities, labels, axis=1, batch_dims=1)
  higher = tf.reduce_sum(
      tf.cast(probabilities > label_score[:, None], tf.int32), axis=1)
  return higher < k
