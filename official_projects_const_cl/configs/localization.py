"""Experiment configs for spatio-temporal action localization (supp. §3.2).

The pretrained backbone's local branch `res5_r` (a single res5 downstream)
feeds the action transformer head of Girdhar et al. (CVPR 2019): each person
box, ROIAligned on the keyframe's feature slice, is a query that attends to
every voxel of the clip's feature map; a sigmoid per class gives multi-label
action scores. Training uses ground-truth person boxes; evaluation uses
ground-truth or detected boxes (score threshold) and reports frame-mAP@0.5
over the evaluated classes (`evaluation/ava_metrics.py`).

Paper recipe (supplementary §3.2): 32 frames at stride 2, resolution 400,
batch 256, 50k steps, SGD momentum 0.9; AVA v2.2: LR 3e-2, weight decay 1e-4;
AVA-Kinetics: LR 1e-2, weight decay 1e-7. Our choices where the paper is
silent: frames resized to 400 x 400 (boxes are normalized, so they follow),
random horizontal flip in training, 1k warm-up steps then cosine decay,
sigmoid cross-entropy averaged over (valid box, class) pairs.
"""

import dataclasses
import os
from typing import Optional, Tuple

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official_projects_const_cl.configs import ava_protocols
from official_projects_const_cl.configs import const_cl as const_cl_cfg
from official_projects_const_cl.configs import demo_paths
from official_projects_const_cl.configs import validation as checks

EVAL_BOXES = ('groundtruth', 'detected')
# AVA v2.2: 80 action ids (1..80), 60 of them evaluated.
AVA_NUM_CLASSES = 80
AVA_TRAIN_KEYFRAMES = 210_634
AVA_VAL_KEYFRAMES = 57_371


@dataclasses.dataclass
class LocalizationDataConfig(cfg.DataConfig, const_cl_cfg.RecordInputConfig):
  """Keyframe examples written by `tools/convert_ava.py`.

  `feature_shape[0]` frames at `temporal_stride` STORED frames (the converter
  already applied the source stride, so 1 reproduces the stored clip),
  centered on the keyframe; frames resized to `feature_shape[1:3]`.
  """
  feature_shape: Tuple[int, ...] = (32, 400, 400, 3)
  temporal_stride: int = 1
  compressed_input: bool = False
  num_classes: int = AVA_NUM_CLASSES
  # Person boxes per keyframe after padding (more are dropped and counted).
  max_num_boxes: int = 32
  # Evaluation: 'groundtruth' or 'detected' (stored detections with a score
  # >= detection_score_threshold) boxes are classified.
  eval_boxes: str = 'groundtruth'
  detection_score_threshold: float = 0.8
  aug_flip: bool = True
  # If set, the demo world (and its keyframe records) is made here first.
  demo_data_dir: str = ''
  shuffle_buffer_size: int = 256
  cycle_length: int = 8
  drop_remainder: bool = True

  def value_errors(self) -> checks.Problems:
    return super().value_errors() + checks.field_errors(
        self, max_num_boxes=checks.at_least(1),
        eval_boxes=checks.one_of(*EVAL_BOXES),
        detection_score_threshold=checks.PROBABILITY)


@dataclasses.dataclass
class ActionTransformerHead(hyperparams.Config):
  """The Tx head (Girdhar et al. 2019): 128-d, 2 heads, 3 layers."""
  num_layers: int = 3
  num_heads: int = 2
  hidden_channels: int = 128
  ffn_channels: int = 128
  dropout_rate: float = 0.3
  roi_crop_size: int = 7
  roi_sampling_ratio: int = 2

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(
        self, num_layers=checks.at_least(1), num_heads=checks.at_least(1),
        hidden_channels=checks.at_least(1), ffn_channels=checks.at_least(1),
        dropout_rate=checks.FRACTION, roi_crop_size=checks.at_least(1),
        roi_sampling_ratio=checks.at_least(1))


@dataclasses.dataclass
class LocalizationModel(const_cl_cfg.DownstreamModel):
  """Pretrained backbone (its `res5_branch`) + action transformer head.

  `backbone` describes the PRETRAINING backbone, as in recognition.
  """
  model_type: str = 'const_cl_action_localizer'
  res5_branch: str = 'res5_r'
  head: ActionTransformerHead = dataclasses.field(
      default_factory=ActionTransformerHead)


@dataclasses.dataclass
class LocalizationLosses(hyperparams.Config):
  l2_weight_decay: float = 1e-4

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(self, l2_weight_decay=checks.NON_NEGATIVE)


@dataclasses.dataclass
class LocalizationEval(hyperparams.Config):
  """Frame-mAP settings."""
  # The evaluated classes (ActivityNet label map pbtxt); empty = all
  # `num_classes` ids.
  label_map_path: str = ''
  # Official excluded-timestamps CSV (optional).
  excluded_timestamps_path: str = ''
  iou_threshold: float = 0.5
  max_detections_per_keyframe: int = 50
  # Keyframe rules of ActivityNet's script (`configs/ava_protocols.py`):
  # '2018' (SlowFast / MMAction2) or 'current'. The task adds ground truth
  # (possibly no box) for every validation keyframe, so both evaluate the
  # same keyframes here; they differ on files (docs/metrics.md).
  protocol: str = ava_protocols.DEFAULT_PROTOCOL
  # Written to model_dir after every evaluation (official CSV format).
  detections_csv_name: str = 'ava_detections.csv'

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(
        self, iou_threshold=checks.between(0.0, 1.0, low_open=True),
        max_detections_per_keyframe=checks.at_least(1),
        protocol=checks.one_of(*ava_protocols.PROTOCOLS))


@dataclasses.dataclass
class LocalizationTask(cfg.TaskConfig):
  """Action localization fine-tuning of a pretrained backbone."""
  model: LocalizationModel = dataclasses.field(
      default_factory=LocalizationModel)
  train_data: LocalizationDataConfig = dataclasses.field(
      default_factory=lambda: LocalizationDataConfig(is_training=True))
  validation_data: LocalizationDataConfig = dataclasses.field(
      default_factory=lambda: LocalizationDataConfig(  # pylint: disable=g-long-lambda
          is_training=False, drop_remainder=False))
  losses: LocalizationLosses = dataclasses.field(
      default_factory=LocalizationLosses)
  evaluation: LocalizationEval = dataclasses.field(
      default_factory=LocalizationEval)
  init_checkpoint: Optional[str] = None

  def value_errors(self) -> checks.Problems:
    return checks.equal_errors(self, 'train_data.num_classes',
                               'validation_data.num_classes')


def localization_experiment(
    *, train_path: str, val_path: str, num_classes: int, batch_size: int,
    train_steps: int, warmup_steps: int, base_lr: float, weight_decay: float,
    feature_shape: Tuple[int, ...], label_map_path: str = '',
    excluded_timestamps_path: str = '', eval_batch_size: int = 64
) -> cfg.ExperimentConfig:
  """A localization experiment (SGD 0.9, warm-up, cosine)."""
  task = LocalizationTask()
  task.losses.l2_weight_decay = weight_decay
  task.evaluation.label_map_path = label_map_path
  task.evaluation.excluded_timestamps_path = excluded_timestamps_path
  for data, path, training, batch in (
      (task.train_data, train_path, True, batch_size),
      (task.validation_data, val_path, False, eval_batch_size)):
    data.input_path = path
    data.num_classes = num_classes
    data.feature_shape = feature_shape
    data.global_batch_size = batch
    data.is_training = training
    data.drop_remainder = training
  interval = min(5000, train_steps)
  return cfg.ExperimentConfig(
      runtime=cfg.RuntimeConfig(mixed_precision_dtype='float32'),
      task=task,
      trainer=cfg.TrainerConfig(
          train_steps=train_steps,
          validation_steps=-1,
          validation_interval=interval,
          steps_per_loop=min(500, train_steps),
          summary_interval=min(500, train_steps),
          checkpoint_interval=interval,
          max_to_keep=3,
          best_checkpoint_eval_metric='frame_mAP',
          best_checkpoint_metric_comp='higher',
          best_checkpoint_export_subdir='best_ckpt',
          optimizer_config=const_cl_cfg.sgd_cosine_optimizer(
              base_lr, train_steps, warmup_steps)),
      restrictions=[
          'task.train_data.is_training != None',
          'task.validation_data.is_training != None',
      ])


@exp_factory.register_config_factory('const_cl_ava_v22')
def const_cl_ava_v22() -> cfg.ExperimentConfig:
  """AVA v2.2 (paper Table 1: 31.1 mAP with GT boxes, 24.1 detected)."""
  return localization_experiment(
      train_path='gs://your-bucket/ava/train-*',
      val_path='gs://your-bucket/ava/val-*',
      num_classes=AVA_NUM_CLASSES, batch_size=256, train_steps=50_000,
      warmup_steps=1000, base_lr=3e-2, weight_decay=1e-4,
      feature_shape=(32, 400, 400, 3),
      label_map_path=('gs://your-bucket/ava/'
                      'ava_action_list_v2.2_for_activitynet_2019.pbtxt'),
      excluded_timestamps_path=('gs://your-bucket/ava/'
                                'ava_val_excluded_timestamps_v2.2.csv'))


@exp_factory.register_config_factory('const_cl_ava_kinetics')
def const_cl_ava_kinetics() -> cfg.ExperimentConfig:
  """AVA-Kinetics: LR 1e-2, wd 1e-7 (paper Table 1: 39.4 GT / 30.5 detected)."""
  return localization_experiment(
      train_path='gs://your-bucket/ava_kinetics/train-*',
      val_path='gs://your-bucket/ava_kinetics/val-*',
      num_classes=AVA_NUM_CLASSES, batch_size=256, train_steps=50_000,
      warmup_steps=1000, base_lr=1e-2, weight_decay=1e-7,
      feature_shape=(32, 400, 400, 3),
      label_map_path=('gs://your-bucket/ava/'
                      'ava_action_list_v2.2_for_activitynet_2019.pbtxt'),
      excluded_timestamps_path=('gs://your-bucket/ava/'
                                'ava_val_excluded_timestamps_v2.2.csv'))


DEMO_NUM_ACTIONS = demo_paths.NUM_ACTIONS


def demo_ava_paths(demo_dir: str) -> dict:
  """Where the demo world's AVA-style files and keyframe records live."""
  return {
      'train_records': os.path.join(demo_dir, 'ava_records',
                                    'train-*.tfrecord'),
      'val_records': os.path.join(demo_dir, 'ava_records', 'val-*.tfrecord'),
      'label_map': os.path.join(demo_dir, 'ava_action_list.pbtxt'),
  }


@exp_factory.register_config_factory('const_cl_action_localization_demo')
def const_cl_action_localization_demo() -> cfg.ExperimentConfig:
  """Action localization on the demo world's per-object motion actions.

  8-frame clips (stride 2 at conversion) centered on 1 Hz keyframes, 64^2,
  evaluated with ground-truth boxes. Run with
  `task.init_checkpoint=<const_cl_pretrain_demo model_dir>` (or a CVRL one
  with `task.model.backbone.resnet_3d_y.branch_res5=false`, or none).
  """
  demo_dir = demo_paths.default_demo_dir()
  paths = demo_ava_paths(demo_dir)
  exp = localization_experiment(
      train_path=paths['train_records'], val_path=paths['val_records'],
      num_classes=DEMO_NUM_ACTIONS, batch_size=16, train_steps=1200,
      warmup_steps=60, base_lr=0.1, weight_decay=1e-5,
      feature_shape=(8, 64, 64, 3), label_map_path=paths['label_map'],
      eval_batch_size=32)
  task = exp.task
  const_cl_cfg.use_demo_backbone(task.model)
  task.model.head = ActionTransformerHead(
      num_layers=1, num_heads=2, hidden_channels=64, ffn_channels=128,
      dropout_rate=0.1, roi_crop_size=4, roi_sampling_ratio=2)
  for data in (task.train_data, task.validation_data):
    data.demo_data_dir = demo_dir
    data.max_num_boxes = 4
    # The demo's actions include moving-left / moving-right: a flip would
    # turn one into the other.
    data.aug_flip = False
  exp.trainer.validation_interval = 600
  exp.trainer.checkpoint_interval = 600
  exp.trainer.steps_per_loop = 100
  exp.trainer.summary_interval = 100
  return exp
