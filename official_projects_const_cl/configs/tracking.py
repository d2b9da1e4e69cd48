"""Experiment configs for single-object tracking (supplementary §3.3).

SiamFC (Bertinetto et al. 2016) on the pretrained 3D backbone: the `res5_r`
path with the first block of res4 / res5 at spatial stride 1 and dilation
2 / 4; each frame enters with its 2 neighbours on each side and the center
time slice of res5 is the embedding. Fine-tuned on GOT-10k pairs (SGD 0.9,
batch 256, LR 0.1, weight decay 1e-4, 20 epochs), evaluated one-pass on
OTB2015 (precision at 20 px, success AUC).

Our choices where the paper is silent: an epoch is one pair per training
sequence (as the GOT-10k toolkit's SiamFC); one epoch of linear warm-up then
cosine decay; SiamFC's published 3-scale tracking hyperparameters
(`configs/siamfc.py`).
"""

import dataclasses
import os
from typing import Optional

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official_projects_const_cl.configs import const_cl as const_cl_cfg
from official_projects_const_cl.configs import demo_paths
from official_projects_const_cl.configs import siamfc as siamfc_lib
from official_projects_const_cl.configs import validation as checks

GOT10K_TRAIN_SEQUENCES = 9_335
LAYOUTS = ('got10k', 'otb')


@dataclasses.dataclass
class TrackingDataConfig(cfg.DataConfig):
  """Sequences in the GOT-10k (training pairs) or OTB (evaluation) layout.

  `input_path` is a folder: a GOT-10k subset folder with `list.txt` for
  training, an OTB root (one folder per sequence) for evaluation.
  """
  layout: str = 'got10k'
  # SiamFC's scale augmentation of the search crop (1 +- stretch).
  stretch: float = 0.05
  # Evaluation: track at most this many sequences (0 = all).
  max_sequences: int = 0
  seed: Optional[int] = None
  demo_data_dir: str = ''

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(
        self, layout=checks.one_of(*LAYOUTS), stretch=checks.FRACTION,
        max_sequences=checks.NON_NEGATIVE,
        global_batch_size=checks.at_least(1))


@dataclasses.dataclass
class TrackingModel(const_cl_cfg.DownstreamModel):
  """Pretrained backbone (its `res5_branch`) + SiamFC head."""
  model_type: str = 'const_cl_siamfc'
  res5_branch: str = 'res5_r'
  siamfc: siamfc_lib.SiamFCConfig = dataclasses.field(
      default_factory=lambda: siamfc_lib.SiamFCConfig(num_neighbors=2))


@dataclasses.dataclass
class TrackingLosses(hyperparams.Config):
  l2_weight_decay: float = 1e-4

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(self, l2_weight_decay=checks.NON_NEGATIVE)


@dataclasses.dataclass
class TrackingTask(cfg.TaskConfig):
  """SiamFC fine-tuning and OTB-style evaluation."""
  model: TrackingModel = dataclasses.field(default_factory=TrackingModel)
  train_data: TrackingDataConfig = dataclasses.field(
      default_factory=lambda: TrackingDataConfig(is_training=True,
                                                 global_batch_size=256))
  validation_data: TrackingDataConfig = dataclasses.field(
      default_factory=lambda: TrackingDataConfig(  # pylint: disable=g-long-lambda
          is_training=False, layout='otb', global_batch_size=1))
  losses: TrackingLosses = dataclasses.field(default_factory=TrackingLosses)
  init_checkpoint: Optional[str] = None


def tracking_experiment(*, train_path: str, val_path: str, batch_size: int,
                        num_train_sequences: int, epochs: int,
                        base_lr: float, weight_decay: float
                        ) -> cfg.ExperimentConfig:
  """A SiamFC fine-tuning experiment (SGD 0.9, warm-up, cosine)."""
  task = TrackingTask()
  task.losses.l2_weight_decay = weight_decay
  task.train_data.input_path = train_path
  task.train_data.global_batch_size = batch_size
  task.validation_data.input_path = val_path
  steps_per_epoch = max(num_train_sequences // batch_size, 1)
  train_steps = epochs * steps_per_epoch
  return cfg.ExperimentConfig(
      runtime=cfg.RuntimeConfig(mixed_precision_dtype='float32'),
      task=task,
      trainer=cfg.TrainerConfig(
          train_steps=train_steps,
          validation_steps=-1,
          validation_interval=train_steps,
          steps_per_loop=min(steps_per_epoch, train_steps),
          summary_interval=min(steps_per_epoch, train_steps),
          checkpoint_interval=min(5 * steps_per_epoch, train_steps),
          max_to_keep=3,
          optimizer_config=const_cl_cfg.sgd_cosine_optimizer(
              base_lr, train_steps, warmup_steps=steps_per_epoch)),
      restrictions=['task.train_data.is_training != None'])


@exp_factory.register_config_factory('const_cl_tracking_got10k')
def const_cl_tracking_got10k() -> cfg.ExperimentConfig:
  """GOT-10k fine-tuning, OTB2015 evaluation (paper: 78.1 / 55.2)."""
  return tracking_experiment(
      train_path='/data/GOT-10k/train', val_path='/data/OTB2015',
      batch_size=256, num_train_sequences=GOT10K_TRAIN_SEQUENCES, epochs=20,
      base_lr=0.1, weight_decay=1e-4)


@exp_factory.register_config_factory('const_cl_tracking_demo')
def const_cl_tracking_demo() -> cfg.ExperimentConfig:
  """The demo world's main objects: GOT-10k-style train, OTB-style val.

  Frames are 64 x 64, so the crops are halved (exemplar 63, search 127,
  training search 111: responses 9 x 9 when tracking, 7 x 7 in training).
  """
  demo_dir = demo_paths.default_demo_dir()
  exp = tracking_experiment(
      train_path=os.path.join(demo_dir, demo_paths.TRACKING_DIR,
                              'got10k_train'),
      val_path=os.path.join(demo_dir, demo_paths.TRACKING_DIR, 'otb_val'),
      batch_size=16, num_train_sequences=demo_paths.DEFAULT_NUM_TRAIN,
      epochs=8, base_lr=0.01, weight_decay=1e-4)
  task = exp.task
  const_cl_cfg.use_demo_backbone(task.model)
  task.model.siamfc = siamfc_lib.SiamFCConfig(
      exemplar_size=63, instance_size=127, train_instance_size=111,
      response_size=9, num_neighbors=2)
  for data in (task.train_data, task.validation_data):
    data.demo_data_dir = demo_dir
  task.validation_data.max_sequences = 32
  return exp
