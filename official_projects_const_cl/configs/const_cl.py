"""Experiment configs for ConST-CL and CVRL pretraining.

Numbers follow the ConST-CL paper (Yuan et al., CVPR 2022) §4.1 and its
supplementary Tables 1–2, and CVRL (Qian et al., CVPR 2021) eq. 1. Each
registered experiment is a short factory on top of `_pretrain_experiment`,
which is parameterized by dataset and method.
"""

import dataclasses
import os
from typing import Optional, Tuple

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.modeling import optimization
from official.vision.configs import backbones_3d
from official.vision.configs import common
from official.vision.configs import video_classification
from official_projects_const_cl.configs import demo_paths
from official_projects_const_cl.configs import validation as checks

REGION_SOURCES = ('random', 'slic', 'fh', 'stored')
TEMPORAL_SAMPLINGS = ('center', 'nearest', 'random')
LOSS_ENDPOINTS = ('res5_g+res5_r', 'res5', 'res4_pooled')
# How a pretraining example's clips are drawn (DataConfig.clip_sampling).
CLIP_SAMPLINGS = ('two_clips', 'vclr_segments')

# Kinetics-400 as used by the paper: 200k steps at batch 1024 are "around 850
# epochs", i.e. about 240k training clips (235 steps per epoch).
K400_TRAIN_EXAMPLES = 240_000
K400_VAL_EXAMPLES = 19_881


@dataclasses.dataclass
class ResNet3DYBlockSpec(hyperparams.Config):
  """One residual stage: `repeats` bottlenecks of `filters` (x4 out)."""
  filters: int = 64
  repeats: int = 3
  temporal_kernel_sizes: Tuple[int, ...] = (1, 1, 1)

  def value_errors(self) -> checks.Problems:
    problems = checks.field_errors(self, filters=checks.at_least(1),
                                   repeats=checks.at_least(1))
    if len(self.temporal_kernel_sizes) != self.repeats:
      problems.append(('temporal_kernel_sizes', 'must have one entry per '
                       f'block (repeats={self.repeats}), got '
                       f'{list(self.temporal_kernel_sizes)}'))
    return problems


# Supplementary Table 1: R3D-50, res2/res3 temporal kernels 1, res4/res5 3.
PAPER_BLOCK_SPECS = (
    ResNet3DYBlockSpec(filters=64, repeats=3, temporal_kernel_sizes=(1,) * 3),
    ResNet3DYBlockSpec(filters=128, repeats=4, temporal_kernel_sizes=(1,) * 4),
    ResNet3DYBlockSpec(filters=256, repeats=6, temporal_kernel_sizes=(3,) * 6),
    ResNet3DYBlockSpec(filters=512, repeats=3, temporal_kernel_sizes=(3,) * 3),
)

# A narrow, shallow variant for the demo world on a laptop CPU.
DEMO_BLOCK_SPECS = (
    ResNet3DYBlockSpec(filters=16, repeats=1, temporal_kernel_sizes=(1,)),
    ResNet3DYBlockSpec(filters=32, repeats=1, temporal_kernel_sizes=(1,)),
    ResNet3DYBlockSpec(filters=64, repeats=1, temporal_kernel_sizes=(3,)),
    ResNet3DYBlockSpec(filters=128, repeats=1, temporal_kernel_sizes=(3,)),
)


@dataclasses.dataclass
class ResNet3DYBackbone(hyperparams.Config):
  """The "Y" backbone: R3D-50 whose res5 is duplicated into res5_g/res5_r."""
  block_specs: Tuple[ResNet3DYBlockSpec, ...] = PAPER_BLOCK_SPECS
  stem_filters: int = 64
  stem_conv_temporal_kernel_size: int = 5
  stem_conv_spatial_kernel_size: int = 7
  stem_conv_temporal_stride: int = 2
  stem_pool_temporal_stride: int = 1
  branch_res5: bool = True
  # Tracking (supplementary §3.3): first block of res4 / res5 with spatial
  # stride 1 and dilation 2 / 4.
  tracking_dilation: bool = False

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(
        self, stem_filters=checks.at_least(1),
        stem_conv_temporal_kernel_size=checks.at_least(1),
        stem_conv_spatial_kernel_size=checks.at_least(1),
        stem_conv_temporal_stride=checks.at_least(1),
        stem_pool_temporal_stride=checks.at_least(1))

  def num_feature_frames(self, num_frames: int) -> int:
    """T', the frames of the res4 / res5 maps of a `num_frames` clip."""
    stride = self.stem_conv_temporal_stride * self.stem_pool_temporal_stride
    return max(num_frames // stride, 1)


@dataclasses.dataclass
class Backbone3D(backbones_3d.Backbone3D):
  """Model Garden's 3D backbone OneOf, extended with `resnet_3d_y`."""
  type: Optional[str] = 'resnet_3d_y'
  resnet_3d_y: ResNet3DYBackbone = dataclasses.field(
      default_factory=ResNet3DYBackbone)


@dataclasses.dataclass
class DownstreamModel(hyperparams.Config):
  """What every downstream model shares.

  `backbone` describes the PRETRAINING backbone (`branch_res5=True` for a
  ConST-CL checkpoint, False for CVRL); the downstream model keeps only the
  `res5_branch` branch, as a single `res5` (paper §3.4).
  """
  backbone: Backbone3D = dataclasses.field(default_factory=Backbone3D)
  norm_activation: common.NormActivation = dataclasses.field(
      default_factory=lambda: common.NormActivation(  # pylint: disable=g-long-lambda
          activation='relu', use_sync_bn=True, norm_momentum=0.997,
          norm_epsilon=1e-5))
  res5_branch: str = 'res5_g'
  # The frozen-feature protocol: the backbone is not trained at all (its
  # batch-norm statistics included; it always runs in inference mode), only
  # the task's head is. Recognition: the linear probe; localization: the
  # action head on frozen features; tracking: only the SiamFC head's scalar
  # adjust and bias on the frozen embedding.
  freeze_backbone: bool = False

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(self, res5_branch=checks.one_of('res5_g',
                                                                'res5_r'))


@dataclasses.dataclass
class MLPHead(hyperparams.Config):
  """Global projection head: 3 x (Dense 2048 + BN + ReLU) + Dense 128."""
  num_hidden_layers: int = 3
  num_hidden_channels: int = 2048
  num_output_channels: int = 128

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(
        self, num_hidden_layers=checks.NON_NEGATIVE,
        num_hidden_channels=checks.at_least(1),
        num_output_channels=checks.at_least(1))


@dataclasses.dataclass
class RegionHead(hyperparams.Config):
  """Local head g: an MLP when context_length == 0, else a transformer.

  The transformer fields follow supplementary Table 2 (hidden 128, 3 heads,
  3 layers, output 2048). The feed-forward width is not given in the paper;
  2048 (the width of every other hidden layer of the method) puts the full
  model at 71.96M parameters against the paper's 71.7M (Table 3).
  """
  # MLP variant (paper eq. 3-4).
  num_hidden_layers: int = 3
  num_hidden_channels: int = 2048
  num_output_channels: int = 128
  # Transformer variant (paper eq. 5-6).
  num_layers: int = 3
  num_heads: int = 3
  hidden_channels: int = 128
  ffn_channels: int = 2048
  # Must equal the channels of the local endpoint (h and z are contrasted);
  # -1 takes them from the backbone (2048 for res5_r, 1024 for res4_pooled).
  output_channels: int = -1

  def value_errors(self) -> checks.Problems:
    problems = checks.field_errors(
        self, num_hidden_layers=checks.NON_NEGATIVE,
        num_hidden_channels=checks.at_least(1),
        num_output_channels=checks.at_least(1),
        num_layers=checks.at_least(1), num_heads=checks.at_least(1),
        hidden_channels=checks.at_least(1), ffn_channels=checks.at_least(1))
    if self.output_channels != -1 and self.output_channels < 1:
      problems.append(('output_channels', 'must be -1 (the backbone\'s) or '
                       f'>= 1, got {self.output_channels}'))
    return problems


@dataclasses.dataclass
class ConstClModel(hyperparams.Config):
  """The pretraining model: backbone f, global head, local head g."""
  model_type: str = 'const_cl'
  backbone: Backbone3D = dataclasses.field(default_factory=Backbone3D)
  norm_activation: common.NormActivation = dataclasses.field(
      default_factory=lambda: common.NormActivation(  # pylint: disable=g-long-lambda
          activation='relu', use_sync_bn=True, norm_momentum=0.997,
          norm_epsilon=1e-5))
  global_head: MLPHead = dataclasses.field(default_factory=MLPHead)
  region_head: RegionHead = dataclasses.field(default_factory=RegionHead)
  # False gives CVRL: global loss only, a single res5.
  use_region_loss: bool = True
  # Frames of the other view's C5r used as context (0 = vanilla MLP variant).
  context_length: int = 5
  loss_endpoint: str = 'res5_g+res5_r'
  num_boxes: int = 8
  roi_crop_size: int = 4
  roi_sampling_ratio: int = 2

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(
        self, context_length=checks.NON_NEGATIVE,
        loss_endpoint=checks.one_of(*LOSS_ENDPOINTS),
        num_boxes=checks.at_least(1), roi_crop_size=checks.at_least(1),
        roi_sampling_ratio=checks.at_least(1))


@dataclasses.dataclass
class RecordInputConfig(hyperparams.Config):
  """Fields and checks of every data config that reads video records.

  Bad videos (no frames, no readable sampled frame: `dataloaders/records.py`)
  are skipped, counted ('skipped_videos' in the training and validation
  metrics) and named once in the log, until the bad videos read exceed BOTH
  `max_bad_videos` and `max_bad_video_fraction` of the videos read; the one
  that exceeds them stops the run with an error naming it. Counted per input
  pipeline (worker); a video read in several epochs counts each time, as do
  the videos read, so the fraction is the same in every epoch. 0 and 0.0
  stop at the first bad video; max_bad_video_fraction=1.0 never stops.
  """
  max_bad_videos: int = 100
  max_bad_video_fraction: float = 0.01

  def value_errors(self) -> checks.Problems:
    problems = checks.field_errors(
        self, max_bad_videos=checks.NON_NEGATIVE,
        max_bad_video_fraction=checks.PROBABILITY)
    # Model Garden's reader caches the parser's output, which here is the
    # augmented clips: a cached training input would repeat one
    # augmentation forever. Only the pretraining input caches before it
    # samples and augments (`DataConfig.cache`).
    if (getattr(self, 'cache', False) and getattr(self, 'is_training', False)
        and not isinstance(self, DataConfig)):
      problems.append(('cache', 'must be false for a training input other '
                       'than pretraining: the cache would hold augmented '
                       'clips and repeat them every epoch'))
    for name in ('global_batch_size', 'temporal_stride', 'num_classes',
                 'shuffle_buffer_size', 'cycle_length'):
      if hasattr(self, name):
        problems += checks.field_errors(self, **{name: checks.at_least(1)})
    if hasattr(self, 'feature_shape'):
      problems += checks.shape_errors(self, 'feature_shape', rank=4)
    return problems


@dataclasses.dataclass
class DataConfig(video_classification.DataConfig, RecordInputConfig):
  """Two-view clips with region boxes (paper §3.3, supplementary §2).

  `cache=True` keeps every video decoded in memory after its first read
  (uint8 frames: about T x H x W x 3 bytes per video) and samples and
  augments the cached frames afresh in every epoch; it removes the JPEG
  decode from the loop, for datasets that fit in host memory (the demo).
  """
  feature_shape: Tuple[int, ...] = (16, 224, 224, 3)
  temporal_stride: int = 2
  one_hot: bool = False
  num_classes: int = 400
  # Region boxes per frame.
  num_boxes: int = 8
  region_source: str = 'random'
  box_min_size: float = 0.1
  box_max_size: float = 0.5
  box_min_aspect_ratio: float = 0.5
  box_max_aspect_ratio: float = 2.0
  # SLIC / Felzenszwalb-Huttenlocher boxes (supplementary §2).
  num_segments: int = 16
  fh_scale: float = 500.0
  segment_box_min_size: float = 0.05
  segment_box_max_size: float = 0.7
  # Temporally consistent augmentation (same for every frame of a clip).
  aug_min_area_ratio: float = 0.3
  aug_max_area_ratio: float = 1.0
  aug_min_aspect_ratio: float = 0.5
  aug_max_aspect_ratio: float = 2.0
  aug_flip: bool = True
  aug_color_jitter_prob: float = 0.8
  aug_color_jitter_strength: float = 1.0
  aug_grayscale_prob: float = 0.2
  aug_blur_prob: float = 0.5
  # 'two_clips': two random clips (views a, b) of `feature_shape` frames;
  # 'vclr_segments': VCLR (Wang et al. 2021) §3.2-3.3 tuples, one clip per
  # segment of the video, with the temporal-order label
  # (dataloaders/pretrain_input.py). A 1-frame `feature_shape` is the 2D
  # frame setting of VCLR's main results, longer clips its §5.3 3D setting.
  clip_sampling: str = 'two_clips'
  # K = 3: VCLR §4.2 ("each tuple contains three frames", §5.2) and the
  # authors' release (github.com/amazon-science/video-contrastive-learning
  # at 4fb66c3), dataset/dataset_kinetics.py line 120.
  vclr_num_segments: int = 3
  # p = 0.5: VCLR §3.3 ("a balanced 4-way classification problem"); the
  # release draws `random.randint(0, 1)` per tuple, same file lines 182-183.
  vclr_order_shuffle_prob: float = 0.5
  # Validation only: training videos forming the kNN memory bank.
  knn_bank_input_path: str = ''
  # If set, the demo world lives here; the entry points make it on first use
  # (`dataloaders/demo_data.py:prepare_for`).
  demo_data_dir: str = ''
  shuffle_buffer_size: int = 256
  cycle_length: int = 8

  def value_errors(self) -> checks.Problems:
    problems = super().value_errors() + checks.field_errors(
        self, num_boxes=checks.at_least(1),
        region_source=checks.one_of(*REGION_SOURCES),
        box_min_size=checks.between(0.0, 1.0, low_open=True),
        box_max_size=checks.between(0.0, 1.0, low_open=True),
        box_min_aspect_ratio=checks.POSITIVE,
        box_max_aspect_ratio=checks.POSITIVE,
        num_segments=checks.at_least(1), fh_scale=checks.POSITIVE,
        segment_box_min_size=checks.between(0.0, 1.0, low_open=True),
        segment_box_max_size=checks.between(0.0, 1.0, low_open=True),
        aug_min_area_ratio=checks.between(0.0, 1.0, low_open=True),
        aug_max_area_ratio=checks.between(0.0, 1.0, low_open=True),
        aug_min_aspect_ratio=checks.POSITIVE,
        aug_max_aspect_ratio=checks.POSITIVE,
        aug_color_jitter_prob=checks.PROBABILITY,
        aug_color_jitter_strength=checks.NON_NEGATIVE,
        aug_grayscale_prob=checks.PROBABILITY,
        aug_blur_prob=checks.PROBABILITY,
        clip_sampling=checks.one_of(*CLIP_SAMPLINGS),
        vclr_num_segments=checks.at_least(1),
        vclr_order_shuffle_prob=checks.PROBABILITY)
    if (self.clip_sampling == 'vclr_segments' and self.vclr_num_segments == 1
        and self.vclr_order_shuffle_prob and
        self.vclr_order_shuffle_prob > 0):
      problems.append(('vclr_order_shuffle_prob', 'must be 0 with '
                       'vclr_num_segments=1 (one clip cannot be shuffled), '
                       f'got {self.vclr_order_shuffle_prob!r}'))
    for low, high in (('box_min_size', 'box_max_size'),
                      ('box_min_aspect_ratio', 'box_max_aspect_ratio'),
                      ('segment_box_min_size', 'segment_box_max_size'),
                      ('aug_min_area_ratio', 'aug_max_area_ratio'),
                      ('aug_min_aspect_ratio', 'aug_max_aspect_ratio')):
      problems += checks.ordered_errors(self, low, high)
    return problems


@dataclasses.dataclass
class ConstClLosses(hyperparams.Config):
  """L = Lg + w * Lr (paper eq. 6, §4.1)."""
  global_temperature: float = 0.1
  region_temperature: float = 0.2
  region_weight: float = 0.01
  # Applied as an L2 regularizer on kernels (SGD weight decay 1e-6).
  l2_weight_decay: float = 1e-6

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(
        self, global_temperature=checks.POSITIVE,
        region_temperature=checks.POSITIVE,
        region_weight=checks.NON_NEGATIVE,
        l2_weight_decay=checks.NON_NEGATIVE)


@dataclasses.dataclass
class KnnEval(hyperparams.Config):
  """Online kNN top-1 of global features (validation vs. training videos)."""
  enabled: bool = True
  num_neighbors: int = 20
  temperature: float = 0.07

  def value_errors(self) -> checks.Problems:
    return checks.field_errors(self, num_neighbors=checks.at_least(1),
                               temperature=checks.POSITIVE)


@dataclasses.dataclass
class ConstClPretrainTask(cfg.TaskConfig):
  """ConST-CL (or CVRL) pretraining task."""
  model: ConstClModel = dataclasses.field(default_factory=ConstClModel)
  train_data: DataConfig = dataclasses.field(
      default_factory=lambda: DataConfig(is_training=True, drop_remainder=True))
  validation_data: DataConfig = dataclasses.field(
      default_factory=lambda: DataConfig(  # pylint: disable=g-long-lambda
          is_training=False, drop_remainder=False))
  losses: ConstClLosses = dataclasses.field(default_factory=ConstClLosses)
  # Which feature-map time slice of each view the regions come from
  # (paper Table 4): center | nearest | random.
  temporal_sampling: str = 'center'
  knn: KnnEval = dataclasses.field(default_factory=KnnEval)
  init_checkpoint: Optional[str] = None

  def num_feature_frames(self) -> int:
    """T': frames of the local feature map (the training clips')."""
    return self.model.backbone.resnet_3d_y.num_feature_frames(
        self.train_data.feature_shape[0])

  def value_errors(self) -> checks.Problems:
    problems = checks.field_errors(
        self, temporal_sampling=checks.one_of(*TEMPORAL_SAMPLINGS))
    for name in ('train_data', 'validation_data'):
      sampling = getattr(self, name).clip_sampling
      if sampling in CLIP_SAMPLINGS and sampling != 'two_clips':
        problems.append((f'{name}.clip_sampling', 'must be \'two_clips\' '
                         'for ConST-CL / CVRL pretraining (two views with '
                         f'region boxes), got {sampling!r}'))
    if not self.train_data.feature_shape:
      return problems
    frames = self.num_feature_frames()
    backbone = self.model.backbone.resnet_3d_y
    if self.model.use_region_loss and self.model.context_length > frames:
      problems.append((
          'model.context_length',
          f'{self.model.context_length} exceeds the {frames} frames T\' of '
          'the local feature map (train_data.feature_shape[0]='
          f'{self.train_data.feature_shape[0]} divided by the stem temporal '
          f'strides {backbone.stem_conv_temporal_stride} x '
          f'{backbone.stem_pool_temporal_stride}); context frames must be '
          'distinct'))
    return problems


def sgd_cosine_optimizer(base_lr: float, train_steps: int,
                         warmup_steps: int
                         ) -> optimization.OptimizationConfig:
  """SGD momentum 0.9, linear warm-up, then half-period cosine to 0."""
  return optimization.OptimizationConfig({
      'optimizer': {'type': 'sgd', 'sgd': {'momentum': 0.9}},
      'learning_rate': {
          'type': 'cosine',
          'cosine': {
              'initial_learning_rate': base_lr,
              'decay_steps': max(train_steps - warmup_steps, 1),
              'offset': warmup_steps,
          },
      },
      'warmup': {
          'type': 'linear',
          'linear': {'warmup_steps': warmup_steps, 'warmup_learning_rate': 0.0},
      },
  })


def _pretrain_experiment(*, method: str, train_path: str, val_path: str,
                         num_train: int, num_val: int, batch_size: int,
                         train_steps: int, warmup_steps: int, base_lr: float,
                         feature_shape: Tuple[int, ...], temporal_stride: int,
                         num_classes: int) -> cfg.ExperimentConfig:
  """Builds a pretraining experiment for `method` in {'const_cl', 'cvrl'}."""
  if method not in ('const_cl', 'cvrl'):
    raise ValueError(f'Unknown method {method!r}.')
  task = ConstClPretrainTask()
  task.model.use_region_loss = method == 'const_cl'
  task.model.backbone.resnet_3d_y.branch_res5 = method == 'const_cl'
  for data, path, n, training in ((task.train_data, train_path, num_train,
                                   True), (task.validation_data, val_path,
                                           num_val, False)):
    data.input_path = path
    data.num_examples = n
    data.num_classes = num_classes
    data.feature_shape = feature_shape
    data.temporal_stride = temporal_stride
    data.global_batch_size = batch_size
    data.is_training = training
    data.drop_remainder = training
  task.validation_data.knn_bank_input_path = train_path
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
          optimizer_config=sgd_cosine_optimizer(base_lr, train_steps,
                                                warmup_steps),
      ),
      restrictions=[
          'task.train_data.is_training != None',
          'task.validation_data.is_training != None',
      ])


def _k400(method: str, train_steps: int) -> cfg.ExperimentConfig:
  """Paper recipe: batch 1024, LR 40.96, 5 warm-up epochs (§4.1)."""
  batch = 1024
  steps_per_epoch = K400_TRAIN_EXAMPLES // batch
  return _pretrain_experiment(
      method=method,
      train_path='gs://your-bucket/kinetics400/train*',
      val_path='gs://your-bucket/kinetics400/valid*',
      num_train=K400_TRAIN_EXAMPLES, num_val=K400_VAL_EXAMPLES,
      batch_size=batch, train_steps=train_steps,
      warmup_steps=5 * steps_per_epoch, base_lr=40.96,
      feature_shape=(16, 224, 224, 3), temporal_stride=2, num_classes=400)


@exp_factory.register_config_factory('const_cl_pretrain_k400')
def const_cl_pretrain_k400() -> cfg.ExperimentConfig:
  """ConST-CL main results (Tables 1-2): 200k steps, context 5."""
  return _k400('const_cl', 200_000)


@exp_factory.register_config_factory('const_cl_pretrain_k400_100k')
def const_cl_pretrain_k400_100k() -> cfg.ExperimentConfig:
  """ConST-CL ablation schedule (Tables 4-7): 100k steps."""
  return _k400('const_cl', 100_000)


@exp_factory.register_config_factory('cvrl_pretrain_k400')
def cvrl_pretrain_k400() -> cfg.ExperimentConfig:
  """CVRL baseline: global InfoNCE only on a single res5, 200k steps."""
  return _k400('cvrl', 200_000)


# The demo world (tools/demo_data.py): 64x64 videos of 32 frames, generated
# with its defaults under `demo_paths.default_demo_dir()` on first use.
DEMO_NUM_TRAIN = demo_paths.DEFAULT_NUM_TRAIN
DEMO_NUM_VAL = demo_paths.DEFAULT_NUM_VAL
DEMO_NUM_CLASSES = demo_paths.NUM_CLASSES


def _demo(method: str) -> cfg.ExperimentConfig:
  """A CPU-sized run on the embedded demo world."""
  demo_dir = demo_paths.default_demo_dir()
  batch = 16
  exp = _pretrain_experiment(
      method=method,
      train_path=os.path.join(demo_dir, 'train-*.tfrecord'),
      val_path=os.path.join(demo_dir, 'val-*.tfrecord'),
      num_train=DEMO_NUM_TRAIN, num_val=DEMO_NUM_VAL, batch_size=batch,
      train_steps=1000, warmup_steps=50, base_lr=1.0,
      feature_shape=(8, 56, 56, 3), temporal_stride=2,
      num_classes=DEMO_NUM_CLASSES)
  task = exp.task
  for data in (task.train_data, task.validation_data):
    data.demo_data_dir = demo_dir
  # The 384 decoded training videos take 150 MB; caching them removes the
  # JPEG decode from the loop, which shares the 2 CPU cores with the step
  # (docs/performance.md).
  task.train_data.cache = True
  task.model.backbone.resnet_3d_y.block_specs = DEMO_BLOCK_SPECS
  task.model.backbone.resnet_3d_y.stem_filters = 16
  # A 3x5x5 stem instead of 5x7x7: the stem held 60% of the multiply-adds
  # of the narrowed network and its weight gradient was the costliest op of
  # the CPU step (docs/performance.md).
  task.model.backbone.resnet_3d_y.stem_conv_temporal_kernel_size = 3
  task.model.backbone.resnet_3d_y.stem_conv_spatial_kernel_size = 5
  task.model.norm_activation.use_sync_bn = False
  # A short run: BN moving averages must settle within ~100 steps.
  task.model.norm_activation.norm_momentum = 0.9
  task.model.global_head = MLPHead(num_hidden_layers=2,
                                   num_hidden_channels=256,
                                   num_output_channels=64)
  task.model.region_head = RegionHead(
      num_hidden_layers=2, num_hidden_channels=256, num_output_channels=64,
      num_layers=1, num_heads=2, hidden_channels=64, ffn_channels=256)
  task.model.context_length = 3
  task.knn.num_neighbors = 10
  exp.trainer.validation_interval = 500
  exp.trainer.steps_per_loop = 100
  exp.trainer.summary_interval = 100
  exp.trainer.checkpoint_interval = 500
  return exp


def use_demo_backbone(model: DownstreamModel) -> DownstreamModel:
  """Gives a downstream model the backbone of `const_cl_pretrain_demo`."""
  pretrain = _demo('const_cl').task.model
  model.backbone = pretrain.backbone
  model.norm_activation = pretrain.norm_activation
  return model


@exp_factory.register_config_factory('const_cl_pretrain_demo')
def const_cl_pretrain_demo() -> cfg.ExperimentConfig:
  """ConST-CL on the demo world (README's main command)."""
  return _demo('const_cl')


@exp_factory.register_config_factory('cvrl_pretrain_demo')
def cvrl_pretrain_demo() -> cfg.ExperimentConfig:
  """CVRL on the demo world, for a side-by-side comparison."""
  return _demo('cvrl')
