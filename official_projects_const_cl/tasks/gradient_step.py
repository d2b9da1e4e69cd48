"""The backward half of a training step, shared by every task.

Model Garden's convention: each replica's loss is divided by the number of
replicas (the optimizer sums gradients over replicas), and a mixed-precision
`LossScaleOptimizer` scales the loss up before differentiation and the
gradients back down after.
"""

import tensorflow as tf
import tf_keras


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
