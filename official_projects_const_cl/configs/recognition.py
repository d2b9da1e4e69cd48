"""Experiment configs for downstream action recognition (supplementary §3.1).

A pretrained backbone (ConST-CL or CVRL) becomes a video classifier: its
`res5_g` branch (ConST-CL) or single `res5` (CVRL), global average pooling
and one linear layer. Two protocols:

* Linear evaluation: the whole backbone is frozen (weights and batch-norm
  statistics); pooled features are L2-normalized before the linear layer, as
  in CVRL's released linear-evaluation recipe (which is what makes the paper's
  learning rate of 32 usable); no dropout, no weight decay.
* Fine-tuning: every layer trains; dropout 0.5 before the linear layer;
  weight decay 1e-5.

Both train on one 32-frame clip at stride 2 per video with a temporally
consistent random crop (area 0.3-1, aspect 0.5-2), resize to 224^2 and flip,
and test on 10 temporal clips x 3 spatial crops of 256^2 per video, softmax
scores averaged (top-1 / top-5 per video). SGD momentum 0.9 with a cosine
schedule (the paper gives only the initial learning rates; the schedule and
a 1-epoch linear warm-up are our choice, as in CVRL's pretraining).
"""

import dataclasses
import os
from typing import Optional, Tuple

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.vision.configs import video_classification
from official_projects_const_cl.configs import const_cl as const_cl_cfg
from official_projects_const_cl.configs import demo_paths
from official_projects_const_cl.configs import validation as checks

PROTOCOLS = ('linear_eval', 'finetune')
RES5_BRANCHES = ('res5_g', 'res5_r')

# Official sizes (training / test videos; UCF101 and HMDB51 split 1).
K400_TRAIN_VIDEOS = const_cl_cfg.K400_TRAIN_EXAMPLES
K400_VAL_VIDEOS = const_cl_cfg.K400_VAL_EXAMPLES
UCF101_TRAIN_VIDEOS = 9_537
UCF101_TEST_VIDEOS = 3_783
HMDB51_TRAIN_VIDEOS = 3_570
HMDB51_TEST_VIDEOS = 1_530


@dataclasses.dataclass
class RecognitionDataConfig(video_classification.DataConfig,
                            const_cl_cfg.RecordInputConfig):
  """Clips of labelled videos (the clip records of docs/datasets.md).

  Training yields one augmented clip per video: 'image' [T, H, W, 3].
  Evaluation yields `num_test_clips * num_test_crops` views per video:
  'image' [V, T, H, W, 3] -- clips evenly spaced in time, each frame resized
  so that its shorter side is `min_image_size`, then 1 (center) or 3 crops of
  `feature_shape[1:3]` along the longer side (for a square frame: left,
  center and right).
  """
  feature_shape: Tuple[int, ...] = (32, 224, 224, 3)
  temporal_stride: int = 2
  num_classes: int = 101
  one_hot: bool = False
  num_test_clips: int = 10
  num_test_crops: int = 3
  min_image_size: int = 256
  aug_min_area_ratio: float = 0.3
  aug_max_area_ratio: float = 1.0
  aug_min_aspect_ratio: float = 0.5
  aug_max_aspect_ratio: float = 2.0
  aug_flip: bool = True
  # If set, the demo world lives here; the entry points make it on first use
  # (`dataloaders/demo_data.py:prepare_for`).
  demo_data_dir: str = ''
  shuffle_buffer_size: int = 256
  cycle_length: int = 8

  def value_errors(self) -> checks.Problems:
    problems = super().value_errors() + checks.field_errors(
        self, num_test_clips=checks.at_least(1),
        num_test_crops=checks.one_of(1, 3),
        min_image_size=checks.at_least(1),
        aug_min_area_ratio=checks.between(0.0, 1.0, low_open=True),
        aug_max_area_ratio=checks.between(0.0, 1.0, low_open=True),
        aug_min_aspect_ratio=checks.POSITIVE,
        aug_max_aspect_ratio=checks.POSITIVE)
    for low, high in (('aug_min_area_ratio', 'aug_max_area_ratio'),
                      ('aug_min_aspect_ratio', 'aug_max_aspect_ratio')):
      problems += checks.ordered_errors(self, low, high)
    crop = tuple(self.feature_shape[1:3])
    if (not self.is_training and len(crop) == 2 and
        max(crop) > self.min_image_size):
      problems.append(('min_image_size', f'test crops of {list(crop)} '
                       '(feature_shape[1:3]) do not fit frames resized to a '
                       f'shorter side of {self.min_image_size}'))
    return problems


@dataclasses.dataclass
class VideoClassifierModel(const_cl_cfg.DownstreamModel):
  """Pretrained backbone + global average pooling + linear classifier.

  `backbone` describes the PRETRAINING backbone (`branch_res5=True` for a
  ConST-CL checkpoint, False for CVRL); the classifier itself keeps only the
  `res5_branch` branch, as a single `res5` (paper §3.4).
  """
  model_type: str = 'const_cl_classifier'
  # L2-normalize the pooled features before the linear layer.
  normalize_features: bool = False
  dropout_rate: float = 0.0

  def value_errors(self) -> checks.Problems:
    return super().value_errors() + checks.field_errors(
        self, dropout_rate=checks.FRACTION)


@dataclasses.dataclass
class RecognitionLosses(hyperparams.Config):
  label_smoothing: float = 0.0
  # Applied as an L2 regularizer on kernels (SGD weight decay).
  l2_weight_decay: float = 0.0

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(self, label_smoothing=checks.FRACTION,
                               l2_weight_decay=checks.NON_NEGATIVE)


@dataclasses.dataclass
class RetrievalConfig(hyperparams.Config):
  """Nearest-neighbour video retrieval (VCLR Table 4 protocol).

  Validation videos are queries, training videos the gallery; a video's
  feature is the mean over its clips of the pooled backbone features; cosine
  similarity; R@k = fraction of queries with a same-class video among their k
  nearest neighbours.
  """
  recall_at: Tuple[int, ...] = (1, 5, 10, 20)
  num_test_clips: int = 10
  num_test_crops: int = 1

  def value_errors(self) -> checks.Problems:
    problems = checks.field_errors(self, num_test_clips=checks.at_least(1),
                                   num_test_crops=checks.one_of(1, 3))
    if any(k < 1 for k in self.recall_at):
      problems.append(('recall_at', f'must be >= 1, got '
                       f'{list(self.recall_at)}'))
    return problems


@dataclasses.dataclass
class RecognitionTask(cfg.TaskConfig):
  """Linear evaluation or fine-tuning of a pretrained backbone."""
  model: VideoClassifierModel = dataclasses.field(
      default_factory=VideoClassifierModel)
  train_data: RecognitionDataConfig = dataclasses.field(
      default_factory=lambda: RecognitionDataConfig(  # pylint: disable=g-long-lambda
          is_training=True, drop_remainder=True))
  validation_data: RecognitionDataConfig = dataclasses.field(
      default_factory=lambda: RecognitionDataConfig(  # pylint: disable=g-long-lambda
          is_training=False, drop_remainder=False,
          feature_shape=(32, 256, 256, 3), global_batch_size=8))
  losses: RecognitionLosses = dataclasses.field(
      default_factory=RecognitionLosses)
  retrieval: RetrievalConfig = dataclasses.field(
      default_factory=RetrievalConfig)
  # A pretraining model_dir (latest checkpoint) or checkpoint path; None
  # trains from random initialization.
  init_checkpoint: Optional[str] = None

  def value_errors(self) -> checks.Problems:
    return checks.equal_errors(self, 'train_data.num_classes',
                               'validation_data.num_classes')


def recognition_experiment(
    *, protocol: str, train_path: str, val_path: str, num_train: int,
    num_val: int, num_classes: int, epochs: int, batch_size: int,
    base_lr: float, weight_decay: float = 0.0, dropout_rate: float = 0.0,
    feature_shape: Tuple[int, ...] = (32, 224, 224, 3),
    eval_feature_shape: Tuple[int, ...] = (32, 256, 256, 3),
    min_image_size: int = 256, temporal_stride: int = 2,
    eval_batch_size: int = 8) -> cfg.ExperimentConfig:
  """A recognition experiment for `protocol` in {'linear_eval', 'finetune'}."""
  if protocol not in PROTOCOLS:
    raise ValueError(f'Unknown protocol {protocol!r}; expected one of '
                     f'{PROTOCOLS}.')
  linear = protocol == 'linear_eval'
  task = RecognitionTask()
  task.model.freeze_backbone = linear
  task.model.normalize_features = linear
  task.model.dropout_rate = dropout_rate
  task.losses.l2_weight_decay = weight_decay
  for data, path, n, training, shape, batch in (
      (task.train_data, train_path, num_train, True, feature_shape,
       batch_size),
      (task.validation_data, val_path, num_val, False, eval_feature_shape,
       eval_batch_size)):
    data.input_path = path
    data.num_examples = n
    data.num_classes = num_classes
    data.feature_shape = shape
    data.temporal_stride = temporal_stride
    data.min_image_size = min_image_size
    data.global_batch_size = batch
    data.is_training = training
    data.drop_remainder = training
  steps_per_epoch = max(num_train // batch_size, 1)
  train_steps = epochs * steps_per_epoch
  return cfg.ExperimentConfig(
      runtime=cfg.RuntimeConfig(mixed_precision_dtype='float32'),
      task=task,
      trainer=cfg.TrainerConfig(
          train_steps=train_steps,
          validation_steps=-1,
          validation_interval=min(10 * steps_per_epoch, train_steps),
          steps_per_loop=min(steps_per_epoch, 1000),
          summary_interval=min(steps_per_epoch, 1000),
          checkpoint_interval=min(10 * steps_per_epoch, train_steps),
          max_to_keep=3,
          best_checkpoint_eval_metric='top_1_accuracy',
          best_checkpoint_metric_comp='higher',
          best_checkpoint_export_subdir='best_ckpt',
          optimizer_config=const_cl_cfg.sgd_cosine_optimizer(
              base_lr, train_steps, warmup_steps=steps_per_epoch),
      ),
      restrictions=[
          'task.train_data.is_training != None',
          'task.validation_data.is_training != None',
      ])


_K400_TRAIN = 'gs://your-bucket/kinetics400/train*'
_K400_VAL = 'gs://your-bucket/kinetics400/valid*'
_UCF_TRAIN = 'gs://your-bucket/ucf101/train_split1*'
_UCF_TEST = 'gs://your-bucket/ucf101/test_split1*'
_HMDB_TRAIN = 'gs://your-bucket/hmdb51/train_split1*'
_HMDB_TEST = 'gs://your-bucket/hmdb51/test_split1*'


@exp_factory.register_config_factory('const_cl_linear_eval_k400')
def const_cl_linear_eval_k400() -> cfg.ExperimentConfig:
  """Linear evaluation on Kinetics-400: 100 epochs, LR 32, batch 1024."""
  return recognition_experiment(
      protocol='linear_eval', train_path=_K400_TRAIN, val_path=_K400_VAL,
      num_train=K400_TRAIN_VIDEOS, num_val=K400_VAL_VIDEOS, num_classes=400,
      epochs=100, batch_size=1024, base_lr=32.0)


@exp_factory.register_config_factory('const_cl_linear_eval_ucf101')
def const_cl_linear_eval_ucf101() -> cfg.ExperimentConfig:
  """Linear evaluation on UCF101 split 1: 50 epochs, LR 0.84, batch 128."""
  return recognition_experiment(
      protocol='linear_eval', train_path=_UCF_TRAIN, val_path=_UCF_TEST,
      num_train=UCF101_TRAIN_VIDEOS, num_val=UCF101_TEST_VIDEOS,
      num_classes=101, epochs=50, batch_size=128, base_lr=0.84)


@exp_factory.register_config_factory('const_cl_linear_eval_hmdb51')
def const_cl_linear_eval_hmdb51() -> cfg.ExperimentConfig:
  """Linear evaluation on HMDB51 split 1: 50 epochs, LR 0.84, batch 128."""
  return recognition_experiment(
      protocol='linear_eval', train_path=_HMDB_TRAIN, val_path=_HMDB_TEST,
      num_train=HMDB51_TRAIN_VIDEOS, num_val=HMDB51_TEST_VIDEOS,
      num_classes=51, epochs=50, batch_size=128, base_lr=0.84)


@exp_factory.register_config_factory('const_cl_finetune_ucf101')
def const_cl_finetune_ucf101() -> cfg.ExperimentConfig:
  """Fine-tuning on UCF101: 50 epochs, batch 128, LR 0.72, wd 1e-5, drop 0.5."""
  return recognition_experiment(
      protocol='finetune', train_path=_UCF_TRAIN, val_path=_UCF_TEST,
      num_train=UCF101_TRAIN_VIDEOS, num_val=UCF101_TEST_VIDEOS,
      num_classes=101, epochs=50, batch_size=128, base_lr=0.72,
      weight_decay=1e-5, dropout_rate=0.5)


@exp_factory.register_config_factory('const_cl_finetune_hmdb51')
def const_cl_finetune_hmdb51() -> cfg.ExperimentConfig:
  """Fine-tuning on HMDB51: 50 epochs, batch 128, LR 0.84, wd 1e-5, drop 0.5."""
  return recognition_experiment(
      protocol='finetune', train_path=_HMDB_TRAIN, val_path=_HMDB_TEST,
      num_train=HMDB51_TRAIN_VIDEOS, num_val=HMDB51_TEST_VIDEOS,
      num_classes=51, epochs=50, batch_size=128, base_lr=0.84,
      weight_decay=1e-5, dropout_rate=0.5)


def _demo(protocol: str) -> cfg.ExperimentConfig:
  """The demo world's scene classes, with the demo pretraining backbone.

  8-frame clips at stride 2 as in `const_cl_pretrain_demo`; 56^2 training
  crops; test views are 10 clips x 3 crops of 56^2 from frames resized to
  64^2. Run with `task.init_checkpoint=<const_cl_pretrain_demo model_dir>`
  (or none, for the random-initialization baseline).
  """
  demo_dir = demo_paths.default_demo_dir()
  linear = protocol == 'linear_eval'
  exp = recognition_experiment(
      protocol=protocol,
      train_path=os.path.join(demo_dir, 'train-*.tfrecord'),
      val_path=os.path.join(demo_dir, 'val-*.tfrecord'),
      num_train=const_cl_cfg.DEMO_NUM_TRAIN,
      num_val=const_cl_cfg.DEMO_NUM_VAL,
      num_classes=const_cl_cfg.DEMO_NUM_CLASSES,
      epochs=50 if linear else 15, batch_size=32,
      # Tuned on the demo world (50 epochs of linear probe from the
      # pretrained demo checkpoint: LR 0.84 -> 79.2%, LR 8 -> 87.5%).
      base_lr=8.0 if linear else 0.1,
      weight_decay=0.0 if linear else 1e-5,
      dropout_rate=0.0 if linear else 0.5,
      feature_shape=(8, 56, 56, 3), eval_feature_shape=(8, 56, 56, 3),
      min_image_size=64, eval_batch_size=16)
  task = exp.task
  const_cl_cfg.use_demo_backbone(task.model)
  for data in (task.train_data, task.validation_data):
    data.demo_data_dir = demo_dir
  exp.trainer.validation_interval = exp.trainer.train_steps
  exp.trainer.checkpoint_interval = exp.trainer.train_steps
  exp.trainer.steps_per_loop = 12
  exp.trainer.summary_interval = 12
  return exp


@exp_factory.register_config_factory('const_cl_linear_eval_demo')
def const_cl_linear_eval_demo() -> cfg.ExperimentConfig:
  """Linear probe on the demo world's scene classes."""
  return _demo('linear_eval')


@exp_factory.register_config_factory('const_cl_finetune_demo')
def const_cl_finetune_demo() -> cfg.ExperimentConfig:
  """Fine-tuning on the demo world's scene classes."""
  return _demo('finetune')
