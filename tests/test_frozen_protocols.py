"""Frozen-feature protocols of the local tasks (`model.freeze_backbone`).

As the linear probe (tests/test_recognition.py): with the backbone frozen,
training steps leave every backbone variable, batch-norm moving statistics
included, bit-identical and change only the head; without it, the same
steps change every backbone kernel and every moving statistic.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official_projects_const_cl.tasks import localization
from official_projects_const_cl.tasks import tracking


def _values(variables):
  return [v.numpy().copy() for v in variables]


def _localization(freeze):
  exp = exp_factory.get_exp_config('const_cl_action_localization_demo')
  exp.task.model.freeze_backbone = freeze
  task = localization.LocalizationTask(exp.task)
  model = task.build_model()
  rng = np.random.default_rng(0)

  def batch():
    return {'image': tf.constant(rng.uniform(size=(2, 8, 32, 32, 3)),
                                 tf.float32),
            'boxes': tf.constant([[[0.1, 0.1, 0.6, 0.5], [0.4, 0.3, 0.9, 0.9]],
                                  [[0.2, 0.3, 0.9, 0.9], [0.0, 0.0, 0.5, 0.5]]],
                                 tf.float32),
            'labels': tf.constant(rng.integers(0, 2, (2, 2, 6)), tf.float32),
            'boxes_mask': tf.ones([2, 2], tf.float32),
            'num_dropped_boxes': tf.zeros([2], tf.int32),
            'num_corrupt_frames': tf.zeros([2], tf.int32)}
  return task, model, batch


def _tracking(freeze):
  exp = exp_factory.get_exp_config('const_cl_tracking_demo')
  exp.task.model.freeze_backbone = freeze
  task = tracking.TrackingTask(exp.task)
  model = task.build_model()
  frames = 2 * exp.task.model.siamfc.num_neighbors + 1
  rng = np.random.default_rng(0)

  def batch():
    return {'exemplar': tf.constant(rng.uniform(size=(2, frames, 31, 31, 3)),
                                    tf.float32),
            'search': tf.constant(rng.uniform(size=(2, frames, 55, 55, 3)),
                                  tf.float32)}
  return task, model, batch


def _train(task, model, batch, steps=3):
  model(batch(), training=False)  # Builds the head.
  optimizer = tf_keras.optimizers.SGD(learning_rate=0.5, momentum=0.9)
  for _ in range(steps):
    task.train_step(batch(), model, optimizer, task.build_metrics())


@pytest.mark.parametrize('build', [_localization, _tracking],
                         ids=['localization', 'tracking'])
@pytest.mark.parametrize('freeze', [True, False], ids=['frozen', 'finetuned'])
def test_frozen_backbone_is_bit_identical_after_training(build, freeze):
  task, model, batch = build(freeze)
  backbone = (model.backbone if hasattr(model, 'backbone') else
              model.embedder.backbone)
  model(batch(), training=False)
  variables = backbone.weights
  moving = [v for v in variables if 'moving_' in v.name]
  kernels = [v for v in variables if 'kernel' in v.name]
  assert moving and kernels
  backbone_ids = {id(v) for v in variables}
  head = [v for v in model.trainable_variables if id(v) not in backbone_ids]
  assert head
  before, head_before = _values(variables), _values(head)
  _train(task, model, batch)
  changed = [not np.array_equal(b, a)
             for b, a in zip(before, _values(variables))]
  assert any(not np.array_equal(b, a)
             for b, a in zip(head_before, _values(head)))
  if freeze:
    assert not any(changed)
    assert not any(id(v) in backbone_ids for v in model.trainable_variables)
  else:
    assert all(c for v, c in zip(variables, changed) if 'moving_' in v.name)
    assert all(c for v, c in zip(variables, changed) if 'kernel' in v.name)


def test_frozen_tracking_trains_only_the_head_bias():
  """SiamFC's scale has learning rate 0 (fixed out_scale): only its bias."""
  _, model, batch = _tracking(True)
  model(batch(), training=False)
  names = sorted(v.name for v in model.trainable_variables)
  assert len(names) == 1 and 'bias' in names[0], names
