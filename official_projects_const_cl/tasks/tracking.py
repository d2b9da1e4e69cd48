"""Single-object tracking: SiamFC on the pretrained 3D backbone (supp. §3.3).

Training: exemplar / search frame stacks from GOT-10k-layout sequences
(`dataloaders/tracking_input.py`), response = SiamFC head(phi(z), phi(x)),
SiamFC's balanced logistic loss against the fixed label map (positives
within 16 search-crop pixels of the center).

Validation: the trained embedding drives `SiamFCTracker` (scale pyramid,
scale penalty, cosine window, upsampled response) over the OTB-layout
sequences of `validation_data`, one pass from the ground-truth first box;
precision at 20 px, success AUC and success rate at IoU 0.5 are computed by
`evaluation/otb_metrics.py` (the GOT-10k toolkit's conventions), the boxes
are written in the toolkit's result layout and the precision / success
plots as PNG under `<model_dir>/tracking_eval/`.
"""

import os
from typing import Any, Dict, List, Mapping, Optional

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import task_factory
from official_projects_const_cl.configs import siamfc as siamfc_cfg
from official_projects_const_cl.configs import tracking as tracking_cfg
from official_projects_const_cl.dataloaders import tracking_datasets
from official_projects_const_cl.dataloaders import tracking_input
from official_projects_const_cl.evaluation import otb_metrics
from official_projects_const_cl.evaluation import otb_plots
from official_projects_const_cl.losses import siamfc_loss
from official_projects_const_cl.modeling import checkpoint_loading
from official_projects_const_cl.modeling import siamfc_model
from official_projects_const_cl.modeling import siamfc_tracker
from official_projects_const_cl.modeling import tracking_embedder
from official_projects_const_cl.modeling.heads import siamfc_head
from official_projects_const_cl.tasks import gradient_step


def tracker_from_checkpoint(params, checkpoint: str,
                            name: str = 'ConST-CL'
                            ) -> siamfc_tracker.SiamFCTracker:
  """The tracker of a trained tracking run (for the GOT-10k toolkit).

  Args:
    params: the run's experiment config (e.g. its `params.yaml`, or the
      registered experiment with the same overrides).
    checkpoint: the run's model_dir (latest checkpoint) or a checkpoint.

  Returns:
    A `SiamFCTracker` with the run's embedding and head.

  Raises:
    FileNotFoundError: no checkpoint at `checkpoint`.
  """
  prefix = checkpoint_loading.resolve_checkpoint(checkpoint)
  task = TrackingTask(params.task)
  model = task.build_model()
  cfg = params.task.model.siamfc
  frames = 2 * cfg.num_neighbors + 1
  model({'exemplar': tf.zeros([1, frames, cfg.exemplar_size,
                               cfg.exemplar_size, 3]),
         'search': tf.zeros([1, frames, cfg.train_instance_size,
                             cfg.train_instance_size, 3])}, training=False)
  status = tf.train.Checkpoint(model=model).read(prefix)
  status.expect_partial().assert_existing_objects_matched()
  logging.info('Tracker restored from %s.', prefix)
  return siamfc_model.make_tracker(model, cfg, name=name)


class TrackingResults:
  """Sequence indices seen by the validation steps."""

  def __init__(self):
    self.indices: List[int] = []


@task_factory.register_task_cls(tracking_cfg.TrackingTask)
class TrackingTask(base_task.Task):
  """SiamFC fine-tuning of a pretrained backbone, OTB-style evaluation."""

  def __init__(self, params, logging_dir: Optional[str] = None,
               name: Optional[str] = None):
    super().__init__(params, logging_dir=logging_dir, name=name)
    self._model: Optional[siamfc_model.SiamFCModel] = None

  @property
  def siamfc_config(self) -> siamfc_cfg.SiamFCConfig:
    return self.task_config.model.siamfc

  def build_model(self) -> tf_keras.Model:
    model_cfg = self.task_config.model
    frames = 2 * model_cfg.siamfc.num_neighbors + 1
    input_specs = tf_keras.layers.InputSpec(
        shape=[None, frames, None, None, 3])
    l2_regularizer = gradient_step.weight_decay_regularizer(
        self.task_config.losses.l2_weight_decay)
    embedder = tracking_embedder.build_tracking_embedder(
        input_specs, model_cfg, l2_regularizer)
    head = siamfc_head.SiamFCHead(out_scale=model_cfg.siamfc.out_scale,
                                  name='siamfc_head')
    self._model = siamfc_model.SiamFCModel(embedder, head, name='siamfc')
    self._model.build_heads()  # Traced once: see pretrain.build_model.
    return self._model

  def initialize(self, model: tf_keras.Model):
    checkpoint_loading.initialize_downstream_backbone(
        model.embedder.backbone, self.task_config.init_checkpoint,
        self.task_config.model)

  def _sequences_root(self, params: tracking_cfg.TrackingDataConfig) -> str:
    if not tf.io.gfile.isdir(params.input_path):
      raise FileNotFoundError(
          f'input_path {params.input_path!r} is not a folder of tracking '
          f'sequences ({params.layout} layout).')
    return params.input_path

  def build_inputs(self, params: tracking_cfg.TrackingDataConfig,
                   input_context: Optional[tf.distribute.InputContext] = None
                   ) -> tf.data.Dataset:
    """Training: endless pairs. Validation: the indices of the sequences."""
    root = self._sequences_root(params)
    batch = (input_context.get_per_replica_batch_size(
        params.global_batch_size) if input_context else
             params.global_batch_size)
    if not params.is_training:
      names = self._validation_names(params)
      return tf.data.Dataset.range(len(names)).batch(1)
    if params.layout != 'got10k':
      raise ValueError('Training pairs need the GOT-10k layout, got '
                       f'layout={params.layout!r}.')
    cfg = self.siamfc_config
    settings = tracking_input.PairSettings(
        exemplar_size=cfg.exemplar_size, instance_size=cfg.instance_size,
        train_instance_size=cfg.train_instance_size,
        context_amount=cfg.context_amount, max_frame_gap=cfg.max_frame_gap,
        num_neighbors=cfg.num_neighbors, stretch=params.stretch)
    seed = params.seed
    if seed is not None and input_context is not None:
      seed += input_context.input_pipeline_id
    pairs = tracking_input.TrainingPairs(root, settings, seed=seed)
    frames = 2 * cfg.num_neighbors + 1
    signature = {
        'exemplar': tf.TensorSpec(
            [frames, cfg.exemplar_size, cfg.exemplar_size, 3], tf.float32),
        'search': tf.TensorSpec(
            [frames, cfg.train_instance_size, cfg.train_instance_size, 3],
            tf.float32),
    }
    dataset = tf.data.Dataset.from_generator(lambda: iter(pairs),
                                             output_signature=signature)
    return dataset.batch(batch, drop_remainder=True).prefetch(
        tf.data.AUTOTUNE)

  def _validation_names(self, params) -> List[str]:
    names = (tracking_datasets.list_otb_sequences(params.input_path)
             if params.layout == 'otb' else
             tracking_datasets.list_got10k_sequences(params.input_path))
    if params.max_sequences:
      names = names[:params.max_sequences]
    if not names:
      raise ValueError(f'{params.input_path}: no tracking sequences.')
    return names

  def build_losses(self, labels: Any, model_outputs: tf.Tensor,
                   aux_losses: Optional[List[tf.Tensor]] = None) -> tf.Tensor:
    loss = siamfc_loss.balanced_logistic_loss(
        tf.cast(model_outputs, tf.float32), labels)
    if aux_losses:
      loss += tf.add_n([tf.cast(l, tf.float32) for l in aux_losses])
    return loss

  def _labels(self, logits: tf.Tensor) -> np.ndarray:
    cfg = self.siamfc_config
    return siamfc_loss.response_labels(
        tuple(logits.shape[1:3]), cfg.total_stride, cfg.positive_radius)

  def build_metrics(self, training: bool = True):
    if not training:
      return []
    return [tf_keras.metrics.Mean('response_loss', dtype=tf.float32)]

  def train_step(self, inputs: Mapping[str, tf.Tensor], model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer, metrics=None
                 ) -> Dict[str, tf.Tensor]:
    with tf.GradientTape() as tape:
      logits = model(inputs, training=True)
      response_loss = self.build_losses(self._labels(logits), logits)
      loss = response_loss
      if model.losses:
        loss += tf.add_n([tf.cast(l, tf.float32) for l in model.losses])
      scaled_loss = gradient_step.scale_loss(loss, optimizer)
    gradient_step.apply_gradients(tape, scaled_loss, model, optimizer)
    for m in metrics or []:
      m.update_state(response_loss)
    return {self.loss: loss}

  def validation_step(self, inputs: tf.Tensor, model: tf_keras.Model,
                      metrics=None) -> Dict[str, tf.Tensor]:
    """Passes the sequence indices on; tracking runs on the host."""
    return {'sequence_index': tf.identity(inputs)}

  def aggregate_logs(self, state=None, step_outputs=None):
    state = state or TrackingResults()
    if step_outputs:
      values = step_outputs['sequence_index']
      parts = values if isinstance(values, (tuple, list)) else [values]
      for part in parts:
        state.indices.extend(int(i) for i in np.asarray(part).reshape(-1))
    return state

  def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
    if aggregated_logs is None or self._model is None:
      return {}
    params = self.task_config.validation_data
    names = self._validation_names(params)
    chosen = [names[i] for i in sorted(set(aggregated_logs.indices))]
    results = evaluate_tracker(
        siamfc_model.make_tracker(self._model, self.siamfc_config),
        params.input_path,
        chosen, params.layout,
        os.path.join(self.logging_dir, 'tracking_eval')
        if self.logging_dir else None)
    logging.info('Tracking on %d sequences: precision@20px %.4f, success '
                 'AUC %.4f', results['num_sequences'],
                 results['precision_score'], results['success_score'])
    return {k: np.float32(results[k]) for k in
            ('precision_score', 'success_score', 'success_rate',
             'num_sequences', 'speed_fps')}


def evaluate_tracker(tracker: siamfc_tracker.SiamFCTracker, root: str,
                     names: List[str], layout: str = 'otb',
                     output_dir: Optional[str] = None) -> Dict[str, Any]:
  """One-pass evaluation of `tracker` on sequences of `root`.

  Writes, when `output_dir` is given, `<output_dir>/<tracker>/<seq>.txt`
  (one comma-separated box per line, the toolkit's layout) and the
  precision / success plots.
  """
  read = tracking_datasets.read_otb_sequence if layout == 'otb' else (
      tracking_datasets.read_got10k_sequence)
  pairs, times = {}, {}
  for name in names:
    sequence = read(root, name)
    boxes, seconds = tracker.track(sequence.img_files, sequence.boxes[0])
    pairs[name] = (boxes, sequence.boxes)
    times[name] = seconds
    if output_dir:
      folder = os.path.join(output_dir, tracker.name)
      tf.io.gfile.makedirs(folder)
      np.savetxt(os.path.join(folder, f'{name}.txt'), boxes, fmt='%.3f',
                 delimiter=',')
  results = otb_metrics.evaluate_sequences(pairs, times=times)
  if output_dir:
    otb_plots.plot_curves({tracker.name: results}, output_dir)
  return results
