"""Structural names of a model's variables (checkpoint object-graph paths).

A variable's path is the shortest chain of trackable attribute names from a
root object, breadth first -- exactly the key TensorFlow's object-based
checkpoints save it under (without the '/.ATTRIBUTES/VARIABLE_VALUE'
suffix). Unlike `tf.Variable.name` it does not depend on Keras's global
auto-naming counters, and unlike `layer.weights` its order does not depend on
which weights are trainable.
"""

import collections
from typing import Dict

import tensorflow as tf


def _escape(name: str) -> str:
  # Checkpoint keys escape '.' and '/' inside object names.
  return name.replace('.', '..').replace('/', '.S')


def variable_paths(root: tf.Module, prefix: str = '') -> Dict[str, tf.Variable]:
  """{path: variable} for every variable reachable from `root`.

  Args:
    root: a trackable object (layer, model, checkpoint).
    prefix: prepended to every path ('' -> paths relative to `root`).

  Returns:
    Paths like 'layer_with_weights-0/kernel' (or 'prefix/...').
  """
  paths = {}
  seen = set()
  queue = collections.deque([(prefix, root)])
  while queue:
    path, node = queue.popleft()
    if id(node) in seen:
      continue
    seen.add(id(node))
    if isinstance(node, tf.Variable):
      paths[path] = node
      continue
    view = tf.train.TrackableView(node)
    for name, child in view.children(node).items():
      child_path = f'{path}/{_escape(name)}' if path else _escape(name)
      queue.append((child_path, child))
  return paths
