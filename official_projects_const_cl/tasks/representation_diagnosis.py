"""What demo pretraining did to a network, measured (issue 11, item 1).

For a pretraining checkpoint (ConST-CL or CVRL) or a random initialization:

* **weight change per stage**: ||W - W0|| / ||W0|| over the trainable
  variables of each backbone stage and head, W0 the initial weights of the
  run. `run_demo --local` seeds every pretraining with
  `tf.keras.utils.set_random_seed(seed)`; building the same experiment's
  model after the same call gives the same W0
  (tests/test_representation_diagnosis.py checks this against a one-step
  run at warm-up learning rate 0);
* **the local features the downstream heads receive**: ROI-pooled (mean
  ROIAlign, as the region head and the action localizer pool) from the
  center time slice of the local endpoint (`res5_r`; CVRL's single `res5`,
  which a downstream task reads into the `res5_r` place), at every object's
  box on held-out probe clips (`dataloaders/demo_probe.py`), inference-mode
  batch norm as a frozen backbone runs: their scale and sparsity, and the
  moving statistics of the endpoint's last batch norm;
* **linear decodability**: closed-form ridge probes
  (`evaluation/decodability.py`) of the object's shape, texture and action
  at that frame (classification accuracy) and of its box center
  (R^2), trained on the features of two thirds of the probe videos and
  tested on the rest.
"""

import re
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import tensorflow as tf
import tf_keras

from official.core import config_definitions as cfg
from official_projects_const_cl.dataloaders import demo_probe
from official_projects_const_cl.dataloaders import demo_world
from official_projects_const_cl.evaluation import decodability
from official_projects_const_cl.ops import roi_align
from official_projects_const_cl.ops import temporal
from official_projects_const_cl.tasks import pretrained_model

# Variable groups, first match wins (res5_g / res5_r before res5).
GROUPS = ('stem', 'res2', 'res3', 'res4', 'res5_g', 'res5_r', 'res5',
          'global_head', 'region_head')
_GROUP_PATTERNS = [(g, re.compile(rf'(^|/|_){g}(_|/|$)')) for g in GROUPS]
# Probe targets: (name, kind, number of classes).
PROBES = (('shape', 'class', len(demo_world.SHAPES)),
          ('texture', 'class', len(demo_world.TEXTURES)),
          ('action', 'class', len(demo_world.ACTIONS)),
          ('position', 'regression', 2))
MIN_VISIBILITY = 0.5


def variable_group(name: str) -> Optional[str]:
  """The stage or head a variable belongs to, from its name (None: other)."""
  for group, pattern in _GROUP_PATTERNS:
    if pattern.search(name):
      return group
  return None


def _named_trainables(model: tf_keras.Model) -> Dict[str, np.ndarray]:
  return {v.name: v.numpy() for v in model.trainable_variables}


def relative_weight_change(model: tf_keras.Model, initial: tf_keras.Model
                           ) -> Dict[str, float]:
  """{group: ||W - W0|| / ||W0||} over each group's trainable variables.

  Raises:
    ValueError: the two models do not have the same trainable variables.
  """
  now, before = _named_trainables(model), _named_trainables(initial)
  if sorted(now) != sorted(before):
    raise ValueError('The models differ in their trainable variables: '
                     f'{sorted(set(now) ^ set(before))[:5]}')
  moved: Dict[str, float] = {}
  norm: Dict[str, float] = {}
  for name, value in now.items():
    group = variable_group(name)
    if group is None:
      continue
    moved[group] = moved.get(group, 0.0) + float(
        np.sum((value - before[name]) ** 2))
    norm[group] = norm.get(group, 0.0) + float(np.sum(before[name] ** 2))
  return {g: float(np.sqrt(moved[g] / norm[g])) for g in GROUPS
          if g in moved and norm[g] > 0}


def local_endpoint(model: tf_keras.Model) -> str:
  """`res5_r` of a two-branch backbone, else `res5`."""
  specs = model.backbone.output_specs
  return 'res5_r' if 'res5_r' in specs else 'res5'


def object_features(model: tf_keras.Model, probe: Mapping[str, np.ndarray],
                    batch_size: int = 16,
                    endpoint: Optional[str] = None) -> Dict[str, np.ndarray]:
  """Region features of every visible object, with its labels.

  Args:
    model: a `ConstClModel`.
    probe: `demo_probe.probe_clips(...)` output.
    batch_size: clips per backbone call.
    endpoint: the backbone endpoint to pool (default `local_endpoint`).

  Returns:
    {'features': float32 [N, C], 'video': [N], 'shape', 'texture',
     'action': int [N], 'position': float [N, 2] (box center y, x), and
     'skipped_invisible': objects left out because less than
     MIN_VISIBILITY of them is visible at the frame}.
  """
  endpoint = endpoint or local_endpoint(model)
  _, t_out, _, _, _ = model.backbone.output_specs[endpoint]
  frames = probe['frames']
  t_in = frames.shape[1]
  frame = int(temporal.slice_frame(t_in, int(t_out), int(t_out) // 2))
  # The backbone's input size; the probe frames are resized to it whole
  # (normalized boxes stay valid).
  size = tuple(model.backbone.input_shape[2:4])
  features = []
  for start in range(0, len(frames), batch_size):
    clips = tf.image.convert_image_dtype(frames[start:start + batch_size],
                                         tf.float32)
    if None not in size and size != tuple(clips.shape[2:4]):
      v, t, h, w, c = clips.shape
      clips = tf.reshape(tf.image.resize(
          tf.reshape(clips, [v * t, h, w, c]), tuple(size)),
                         [v, t, *size, c])
    maps = model.backbone(clips, training=False)[endpoint][:, int(t_out) // 2]
    boxes = tf.constant(probe['boxes'][start:start + batch_size, frame])
    features.append(roi_align.roi_pool_mean(maps, boxes).numpy())
  features = np.concatenate(features)  # [V, K, C]
  keep = probe['valid'] & (probe['visibility'][:, frame] >= MIN_VISIBILITY)
  boxes = probe['boxes'][:, frame]
  centers = np.stack([(boxes[..., 0] + boxes[..., 2]) / 2,
                      (boxes[..., 1] + boxes[..., 3]) / 2], axis=-1)
  video = np.broadcast_to(np.arange(len(frames))[:, None], keep.shape)
  return {
      'features': features[keep],
      'video': video[keep],
      'shape': probe['shapes'][keep],
      'texture': probe['textures'][keep],
      'action': probe['actions'][:, frame][keep],
      'position': centers[keep],
      'skipped_invisible': int(np.sum(probe['valid'] & ~keep)),
  }


def probe_scores(objects: Mapping[str, np.ndarray], l2: float = 10.0,
                 test_every: int = 3) -> Dict[str, float]:
  """Ridge probe scores, trained on videos v % test_every != 0, tested on
  the rest (objects of one video never on both sides).

  Returns:
    {'<probe>': accuracy or R^2, '<probe>_chance': majority-class accuracy
     (classification probes)}.
  """
  test = objects['video'] % test_every == 0
  x = objects['features']
  if test.all() or not test.any():
    raise ValueError('The probe needs videos on both sides of the split; '
                     f'got {len(set(objects["video"].tolist()))} videos.')
  scores = {}
  for name, kind, num_classes in PROBES:
    y = objects[name]
    if kind == 'class':
      scores[name] = decodability.ridge_classification_accuracy(
          x[~test], y[~test], x[test], y[test], num_classes, l2)
      scores[f'{name}_chance'] = decodability.majority_accuracy(
          y[~test], y[test])
    else:
      scores[name] = decodability.ridge_regression_r2(
          x[~test], y[~test], x[test], y[test], l2)
  return scores


def batch_norm_statistics(model: tf_keras.Model) -> Dict[str, float]:
  """Moving mean / variance of the local endpoint's last batch norm."""
  endpoint = local_endpoint(model)
  layers = [l for l in model.backbone.layers
            if l.name.startswith(endpoint + '_') or l.name == endpoint]
  norms: List[Any] = []
  for layer in layers:
    for sub in getattr(layer, 'submodules', ()):
      if isinstance(sub, tf_keras.layers.BatchNormalization):
        norms.append(sub)
  if not norms:
    return {}
  last = norms[-1]
  mean, var = last.moving_mean.numpy(), last.moving_variance.numpy()
  return {'bn_moving_mean_abs': float(np.mean(np.abs(mean))),
          'bn_moving_variance': float(np.mean(var)),
          'bn_gamma_abs': float(np.mean(np.abs(last.gamma.numpy())))}


def diagnose(params: cfg.ExperimentConfig, checkpoint: Optional[str],
             seed: int, probe: Mapping[str, np.ndarray]) -> Dict[str, Any]:
  """Every measurement of the module docstring for one network.

  Args:
    params: the pretraining experiment the checkpoint comes from (for a
      random init: the experiment whose architecture to draw).
    checkpoint: its model_dir or checkpoint; None: the random init itself.
    seed: the `tf.keras.utils.set_random_seed` value the run started with.
    probe: `demo_probe.probe_clips(...)`.

  Returns:
    {'weight_change': {group: relative change} (absent for a random init),
     'features': `decodability.feature_statistics`, 'batch_norm': ...,
     'probes': `probe_scores`, 'num_objects', 'skipped_invisible'}.
  """
  tf_keras.utils.set_random_seed(seed)
  initial, _ = pretrained_model.build_pretrained_model(params, None)
  result: Dict[str, Any] = {}
  model = initial
  if checkpoint:
    model, _ = pretrained_model.build_pretrained_model(
        params, checkpoint, with_heads=True)
    result['weight_change'] = relative_weight_change(model, initial)
  objects = object_features(model, probe)
  result['features'] = decodability.feature_statistics(objects['features'])
  result['batch_norm'] = batch_norm_statistics(model)
  result['probes'] = probe_scores(objects)
  result['num_objects'] = int(len(objects['features']))
  result['skipped_invisible'] = objects['skipped_invisible']
  return result


def default_probe(params: cfg.ExperimentConfig, num_videos: int = 384
                  ) -> Dict[str, np.ndarray]:
  """Probe clips with the experiment's clip length and stride."""
  data = params.task.train_data
  return demo_probe.probe_clips(num_videos, int(data.feature_shape[0]),
                                int(data.temporal_stride))


_PROBES: Dict[Any, Dict[str, np.ndarray]] = {}


def diagnose_experiment(experiment: str, params_override: str,
                        checkpoint: Optional[str], seed: int,
                        num_probe_videos: int = 384) -> Dict[str, Any]:
  """`diagnose` for a registered experiment and its override string.

  The probe clips (one set per clip length, stride and size) are rendered
  once per process.
  """
  from official_projects_const_cl.tasks import experiment_runner  # pylint: disable=g-import-not-at-top
  params = experiment_runner.experiment_config(experiment, params_override,
                                               'train')
  data = params.task.train_data
  key = (int(data.feature_shape[0]), int(data.temporal_stride),
         num_probe_videos)
  if key not in _PROBES:
    _PROBES[key] = default_probe(params, num_probe_videos)
  return diagnose(params, checkpoint, seed, _PROBES[key])
