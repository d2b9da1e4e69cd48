"""Experiment configs for VCLR pretraining (Kuang et al., ICCV 2021).

VCLR (video-level contrastive learning) on this project's R3D backbone: the
four terms of `losses/vclr.py` on the segment tuples of the pretraining
parser (`clip_sampling='vclr_segments'`). Values are the paper's (§4.2,
§5.3, appendix A) where its text keeps them, else the authors' release
(github.com/amazon-science/video-contrastive-learning @ 4fb66c3), cited
file and line beside each; the rest are marked as this project's choice.

Negatives are in-batch (the other videos of the global batch, all
replicas). The release's MoCo momentum encoder and its two queues (A.1) are
not part of this task: `losses.negatives` accepts only 'in_batch'.
"""

import dataclasses
from typing import Tuple

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.modeling import optimization
from official.vision.configs import common
from official_projects_const_cl.configs import const_cl as const_cl_cfg
from official_projects_const_cl.configs import validation as checks

NEGATIVES = ('in_batch',)

# UCF101 split 1 (Soomro et al. 2012): 9,537 training and 3,783 test videos.
UCF101_TRAIN_EXAMPLES = 9_537
UCF101_VAL_EXAMPLES = 3_783


def _single_res5_backbone() -> const_cl_cfg.Backbone3D:
  """The R3D-50 with a single res5, as CVRL (`branch_res5=False`)."""
  backbone = const_cl_cfg.Backbone3D()
  backbone.resnet_3d_y.branch_res5 = False
  return backbone


@dataclasses.dataclass
class VclrHead(hyperparams.Config):
  """Each of the four heads: FC -> ReLU -> FC (VCLR appendix A.1).

  The release's head is Linear(c_in, c_in), ReLU, Linear(c_in, 128)
  (models/resnet_mlp.py lines 30-35; 128 from train_vclr.py line 52,
  `MemorySeCo(128, ...)`): `num_hidden_channels=-1` takes the backbone's
  feature channels c_in (2048 for R3D-50).
  """
  num_hidden_channels: int = -1
  num_output_channels: int = 128

  def value_errors(self) -> checks.Problems:
    problems = checks.field_errors(self,
                                   num_output_channels=checks.at_least(1))
    if self.num_hidden_channels != -1 and self.num_hidden_channels < 1:
      problems.append(('num_hidden_channels', 'must be -1 (the backbone\'s '
                       f'channels) or >= 1, got {self.num_hidden_channels}'))
    return problems


@dataclasses.dataclass
class VclrModel(hyperparams.Config):
  """Backbone (single res5) and the four VCLR heads."""
  backbone: const_cl_cfg.Backbone3D = dataclasses.field(
      default_factory=_single_res5_backbone)
  norm_activation: common.NormActivation = dataclasses.field(
      default_factory=lambda: common.NormActivation(  # pylint: disable=g-long-lambda
          activation='relu', use_sync_bn=True, norm_momentum=0.997,
          norm_epsilon=1e-5))
  head: VclrHead = dataclasses.field(default_factory=VclrHead)

  def value_errors(self) -> checks.Problems:
    problems = []
    if self.backbone.resnet_3d_y.branch_res5:
      problems.append(('backbone.resnet_3d_y.branch_res5', 'must be false '
                       'for VCLR (a single res5, as CVRL)'))
    return problems


@dataclasses.dataclass
class VclrLosses(hyperparams.Config):
  """The unweighted sum of the enabled terms (A.1; switches of Table 6).

  Temperatures 0.1: utils/util.py lines 209-210 (`--nce_t`,
  `--nce_t_intra`). Weight decay 1e-4: utils/util.py line 223, applied as
  an L2 kernel regularizer (gradient wd * w).
  """
  video_temperature: float = 0.1
  inter_temperature: float = 0.1
  intra_temperature: float = 0.1
  use_video: bool = True
  use_inter: bool = True
  use_intra: bool = True
  use_order: bool = True
  # The release's intra-frame variant (one 2-way softmax per negative,
  # models/Contrast.py lines 56-58) instead of the paper's eq. 3.
  intra_separate_negatives: bool = False
  # 'in_batch' only; the momentum-queue variant is not implemented here.
  negatives: str = 'in_batch'
  l2_weight_decay: float = 1e-4

  def value_errors(self) -> checks.Problems:
    problems = checks.field_errors(
        self, video_temperature=checks.POSITIVE,
        inter_temperature=checks.POSITIVE,
        intra_temperature=checks.POSITIVE,
        negatives=checks.one_of(*NEGATIVES),
        l2_weight_decay=checks.NON_NEGATIVE)
    if not any((self.use_video, self.use_inter, self.use_intra,
                self.use_order)):
      problems.append(('use_video', 'at least one of use_video, use_inter, '
                       'use_intra, use_order must be true'))
    return problems


def _vclr_data(is_training: bool) -> const_cl_cfg.DataConfig:
  return const_cl_cfg.DataConfig(is_training=is_training,
                                 drop_remainder=is_training,
                                 clip_sampling='vclr_segments')


@dataclasses.dataclass
class VclrPretrainTask(cfg.TaskConfig):
  """VCLR pretraining task (tasks/vclr_pretrain.py)."""
  model: VclrModel = dataclasses.field(default_factory=VclrModel)
  train_data: const_cl_cfg.DataConfig = dataclasses.field(
      default_factory=lambda: _vclr_data(True))
  validation_data: const_cl_cfg.DataConfig = dataclasses.field(
      default_factory=lambda: _vclr_data(False))
  losses: VclrLosses = dataclasses.field(default_factory=VclrLosses)

  def value_errors(self) -> checks.Problems:
    problems = []
    for name in ('train_data', 'validation_data'):
      data = getattr(self, name)
      if data.clip_sampling != 'vclr_segments':
        problems.append((f'{name}.clip_sampling', 'must be '
                         f"'vclr_segments' for VCLR, got "
                         f'{data.clip_sampling!r}'))
    k_train = self.train_data.vclr_num_segments
    k_val = self.validation_data.vclr_num_segments
    if k_train != k_val:
      problems.append(('validation_data.vclr_num_segments', 'must equal '
                       f'train_data.vclr_num_segments={k_train} (the order '
                       f'classifier takes 2 K embeddings), got {k_val}'))
    if self.losses.use_intra and k_train < 2:
      problems.append(('train_data.vclr_num_segments', 'must be >= 2 with '
                       'losses.use_intra (the negatives are the other clips '
                       f'of the anchor tuple), got {k_train}'))
    if (self.train_data.feature_shape and self.validation_data.feature_shape
        and tuple(self.train_data.feature_shape) != tuple(
            self.validation_data.feature_shape)):
      problems.append(('validation_data.feature_shape', 'must equal '
                       'train_data.feature_shape '
                       f'{list(self.train_data.feature_shape)}, got '
                       f'{list(self.validation_data.feature_shape)}'))
    return problems


def sgd_cosine_optimizer(base_lr: float, train_steps: int, warmup_steps: int,
                         warmup_learning_rate: float
                         ) -> optimization.OptimizationConfig:
  """SGD momentum 0.9, linear warm-up, then half-period cosine to 0."""
  config = const_cl_cfg.sgd_cosine_optimizer(base_lr, train_steps,
                                             warmup_steps)
  config.warmup.linear.warmup_learning_rate = warmup_learning_rate
  return config


def sgd_step_optimizer(base_lr: float, boundaries: Tuple[int, ...],
                       factor: float) -> optimization.OptimizationConfig:
  """SGD momentum 0.9; the LR divided by `factor` at each boundary."""
  values = [base_lr / factor**i for i in range(len(boundaries) + 1)]
  return optimization.OptimizationConfig({
      'optimizer': {'type': 'sgd', 'sgd': {'momentum': 0.9}},
      'learning_rate': {
          'type': 'stepwise',
          'stepwise': {'boundaries': list(boundaries), 'values': values},
      },
  })


def _experiment(*, train_path: str, val_path: str, num_train: int,
                num_val: int, num_classes: int, batch_size: int,
                feature_shape: Tuple[int, ...], temporal_stride: int,
                train_steps: int,
                optimizer_config: optimization.OptimizationConfig
                ) -> cfg.ExperimentConfig:
  """A VCLR pretraining experiment; trainer intervals as in const_cl.py."""
  task = VclrPretrainTask()
  for data, path, n, training in ((task.train_data, train_path, num_train,
                                   True),
                                  (task.validation_data, val_path, num_val,
                                   False)):
    data.input_path = path
    data.num_examples = n
    data.num_classes = num_classes
    data.feature_shape = feature_shape
    data.temporal_stride = temporal_stride
    data.global_batch_size = batch_size
    data.is_training = training
    data.drop_remainder = training
  steps_per_epoch = max(num_train // batch_size, 1)
  return cfg.ExperimentConfig(
      runtime=cfg.RuntimeConfig(mixed_precision_dtype='float32'),
      task=task,
      trainer=cfg.TrainerConfig(
          train_steps=train_steps,
          validation_steps=-1,
          validation_interval=min(5 * steps_per_epoch, train_steps),
          steps_per_loop=min(steps_per_epoch, 1000),
          summary_interval=min(steps_per_epoch, 1000),
          checkpoint_interval=min(5 * steps_per_epoch, 5000),
          max_to_keep=5,
          optimizer_config=optimizer_config),
      restrictions=[
          'task.train_data.is_training != None',
          'task.validation_data.is_training != None',
      ])


# Kinetics-400 (appendix A.1): batch 512, 400 epochs, SGD, cosine to zero.
K400_BATCH_SIZE = 512
K400_EPOCHS = 400  # A.1; also utils/util.py line 225 (`--epochs`).
# utils/util.py line 213: `--base_lr` 0.1 "when batch size = 256", scaled
# linearly with the global batch (train_vclr.py line 56):
# 512 / 256 * 0.1 = 0.2.
K400_BASE_LR = K400_BATCH_SIZE / 256 * 0.1
# utils/util.py lines 217-218: 5 warm-up epochs from LR / 100
# (`--warmup_epoch`, `--warmup_multiplier`; utils/lr_scheduler.py).
K400_WARMUP_EPOCHS = 5
K400_WARMUP_MULTIPLIER = 100


@exp_factory.register_config_factory('vclr_pretrain_k400')
def vclr_pretrain_k400() -> cfg.ExperimentConfig:
  """VCLR on Kinetics-400, the frame setting of the main results (§4.2).

  One 224 x 224 frame per segment (`feature_shape` (1, 224, 224, 3); crop
  224: utils/util.py line 199), K = 3 segments (§4.2), on the R3D-50 (a
  1-frame clip makes its temporal kernels see one frame; the paper's main
  model is a 2D ResNet-50 initialized from MoCo v2, shell/main_train.sh
  line 5, which this config does not do: set `task.init_checkpoint`).
  SGD momentum 0.9 (utils/util.py line 224), weight decay 1e-4 (line 223).
  """
  steps_per_epoch = const_cl_cfg.K400_TRAIN_EXAMPLES // K400_BATCH_SIZE
  train_steps = K400_EPOCHS * steps_per_epoch
  warmup_steps = K400_WARMUP_EPOCHS * steps_per_epoch
  return _experiment(
      train_path='gs://your-bucket/kinetics400/train*',
      val_path='gs://your-bucket/kinetics400/valid*',
      num_train=const_cl_cfg.K400_TRAIN_EXAMPLES,
      num_val=const_cl_cfg.K400_VAL_EXAMPLES, num_classes=400,
      batch_size=K400_BATCH_SIZE, feature_shape=(1, 224, 224, 3),
      temporal_stride=1, train_steps=train_steps,
      optimizer_config=sgd_cosine_optimizer(
          K400_BASE_LR, train_steps, warmup_steps,
          warmup_learning_rate=K400_BASE_LR / K400_WARMUP_MULTIPLIER))


# UCF101 3D pretraining (§5.3, appendix A "VCLR with 3D CNNs"): 3 segments,
# a 32-frame clip from each, 300 epochs at batch 64, LR divided by 10 at
# epochs 250 and 280.
UCF101_BATCH_SIZE = 64
UCF101_EPOCHS = 300
UCF101_DECAY_EPOCHS = (250, 280)
UCF101_CLIP_FRAMES = 32
# Not in the text (the number was lost) nor in the release (no UCF101
# pretraining script): this project's choice, the release's rule of
# utils/util.py line 213 and train_vclr.py line 56 at batch 64:
# 64 / 256 * 0.1.
UCF101_BASE_LR = UCF101_BATCH_SIZE / 256 * 0.1
# Frame size lost from the text; 128 x 128 is CoCLR's (the setting the
# appendix says it follows), this project's choice.
UCF101_FRAME_SIZE = 128


@exp_factory.register_config_factory('vclr_r3d_pretrain_ucf101')
def vclr_r3d_pretrain_ucf101() -> cfg.ExperimentConfig:
  """VCLR with 3D clips on UCF101 (§5.3, Table 8), on our R3D-50.

  The paper trains an R3D-50 (§5.3 text; the appendix names S3D following
  CoCLR). Temporal stride 1: 32 consecutive frames fit in a third of an
  average UCF101 video (~7 s at 25 fps); this project's choice.
  """
  steps_per_epoch = UCF101_TRAIN_EXAMPLES // UCF101_BATCH_SIZE
  size = UCF101_FRAME_SIZE
  return _experiment(
      train_path='gs://your-bucket/ucf101/train*',
      val_path='gs://your-bucket/ucf101/test*',
      num_train=UCF101_TRAIN_EXAMPLES, num_val=UCF101_VAL_EXAMPLES,
      num_classes=101, batch_size=UCF101_BATCH_SIZE,
      feature_shape=(UCF101_CLIP_FRAMES, size, size, 3), temporal_stride=1,
      train_steps=UCF101_EPOCHS * steps_per_epoch,
      optimizer_config=sgd_step_optimizer(
          UCF101_BASE_LR,
          tuple(e * steps_per_epoch for e in UCF101_DECAY_EPOCHS), 10.0))


@exp_factory.register_config_factory('vclr_pretrain_demo')
def vclr_pretrain_demo() -> cfg.ExperimentConfig:
  """VCLR on the demo world, beside `cvrl_pretrain_demo`.

  The same data, clip shape (8, 56, 56, 3), batch, schedule, backbone,
  optimizer and weight decay as `cvrl_pretrain_demo` (copied from it), with
  K = 3 clips per tuple; heads 512 -> 512 -> 64 (the demo backbone's 512
  channels, CVRL demo's 64-d embedding). A step runs the backbone on
  2K + 1 = 7 clips per video against CVRL's 2.
  """
  cvrl = const_cl_cfg.cvrl_pretrain_demo()
  exp = _experiment(
      train_path=cvrl.task.train_data.input_path,
      val_path=cvrl.task.validation_data.input_path,
      num_train=cvrl.task.train_data.num_examples,
      num_val=cvrl.task.validation_data.num_examples,
      num_classes=cvrl.task.train_data.num_classes,
      batch_size=cvrl.task.train_data.global_batch_size,
      feature_shape=tuple(cvrl.task.train_data.feature_shape),
      temporal_stride=cvrl.task.train_data.temporal_stride,
      train_steps=cvrl.trainer.train_steps,
      optimizer_config=cvrl.trainer.optimizer_config)
  exp.trainer = cvrl.trainer
  exp.runtime = cvrl.runtime
  task = exp.task
  for data in (task.train_data, task.validation_data):
    data.demo_data_dir = cvrl.task.train_data.demo_data_dir
  task.train_data.cache = cvrl.task.train_data.cache
  task.model.backbone = cvrl.task.model.backbone
  task.model.norm_activation = cvrl.task.model.norm_activation
  task.model.head = VclrHead(num_hidden_channels=-1,
                             num_output_channels=(
                                 cvrl.task.model.global_head
                                 .num_output_channels))
  task.losses.l2_weight_decay = cvrl.task.losses.l2_weight_decay
  return exp
