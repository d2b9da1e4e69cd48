"""Optimization pieces shared by every task: weight decay, backward step.

Model Garden's convention: each replica's loss is divided by the number of
replicas (the optimizer sums gradients over replicas), and a mixed-precision
`LossScaleOptimizer` scales the loss up before differentiation and the
gradients back down after.
"""

from typing import Optional

import tensorflow as tf
import tf_keras


def weight_decay_regularizer(weight_decay: float
                             ) -> Optional[tf_keras.regularizers.Regularizer]:
  """SGD weight decay `wd` as a kernel regularizer, or None for 0.

  l2(wd / 2) adds wd / 2 * |w|^2 to the loss, whose gradient is wd * w.
  """
  weight_decay = float(weight_decay)
  return tf_keras.regularizers.l2(weight_decay / 2.0) if weight_decay else None


def scale_loss(loss: tf.Tensor,
               optimizer: tf_keras.optimizers.Optimizer) -> tf.Tensor:
  """The loss to differentiate; call it INSIDE the gradient tape."""
  scaled = loss / tf.distribute.get_strategy().num_replicas_in_sync
  if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
    scaled = optimizer.get_scaled_loss(scaled)
  return scaled


def apply_gradients(tape: tf.GradientTape, scaled_loss: tf.Tensor,
                    model: tf_keras.Model,
                    optimizer: tf_keras.optimizers.Optimizer) -> None:
  """Differentiates `scaled_loss` and updates the trainable variables."""
  tvars = model.trainable_variables
  grads = tape.gradient(scaled_loss, tvars)
  if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
    grads = optimizer.get_unscaled_gradients(grads)
  optimizer.apply_gradients(list(zip(grads, tvars)))
