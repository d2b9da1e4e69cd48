"""SiamFC hyperparameters (Bertinetto et al., ECCVW 2016; supp. §3.3)."""

import dataclasses

from official.modeling import hyperparams


@dataclasses.dataclass
class SiamFCConfig(hyperparams.Config):
  """SiamFC hyperparameters; defaults are the published SiamFC-3s values.

  Sources: [M] the authors' MATLAB release `bertinetto/siamese-fc`
  (`tracking/tracker.m`, "default hyper-params for SiamFC-3S", and
  `training/experiment.m`, `make_siameseFC.m`); [P] `siamfc-pytorch` by the
  GOT-10k toolkit's author (`TrackerSiamFC.parse_args`, `Pair`); [E] the
  paper (ECCVW 2016). The paper's own tracker (SiamFC, 5 scales 1.025^{-2..2},
  scale damping 0.35; [M] `params-5s.txt`: 1.0255 / 0.962 / 0.34 / 0.168)
  differs from the 3-scale defaults used here and by [P].
  """
  # Crop geometry. [E] sec. 2.4 (127 / 255, context p = (w + h) / 4 on each
  # side, i.e. 0.5 * (w + h) in total); [M] p.exemplarSize, p.instanceSize,
  # p.contextAmount; [P] exemplar_sz, instance_sz, context.
  exemplar_size: int = 127
  instance_size: int = 255
  context_amount: float = 0.5
  # Score map of a 255 search crop and the network's stride. [E] sec. 2.4
  # (17 x 17, stride 8); [M] p.scoreSize, p.totalStride; [P] response_sz,
  # total_stride.
  response_size: int = 17
  total_stride: int = 8
  # Output adjustment: score = out_scale * xcorr + bias. [M] make_siameseFC:
  # add_adjust_layer(..., gain 1e-3, bias 0, lr_gain 0, lr_bias 1), i.e. a
  # fixed 1e-3 gain and a learned bias; [P] out_scale = 0.001 (no bias).
  out_scale: float = 0.001
  # Tracking (SiamFC-3s). [M] tracker.m: numScale 3, scaleStep 1.0375,
  # scalePenalty 0.9745, scaleLR 0.59, responseUp 16, windowing 'cosine',
  # wInfluence 0.176; [P] the same six numbers.
  scale_num: int = 3
  scale_step: float = 1.0375
  scale_penalty: float = 0.9745
  scale_lr: float = 0.59
  response_up: int = 16
  window_influence: float = 0.176
  # Size saturation relative to the initial size. [M] tracker.m:
  # min_s_x = 0.2 * s_x, max_s_x = 5 * s_x ([P] does not clip).
  min_scale: float = 0.2
  max_scale: float = 5.0
  # Training. [M] experiment.m: instanceSize = 255 - 2 * 8 (search crops of
  # 239, response 15 x 15, leaving room for the +-8 px translation
  # augmentation), loss.rPos = 16 (search-crop pixels; Euclidean distance to
  # the center, divided by the stride in create_labels), rNeg = 0,
  # labelWeight 'balanced', frameRange = 100 (vid_get_random_batch: x is
  # within 100 positions of z, before or after it, x != z, counted in the
  # track's list of valid frames); [P] r_pos = 16 (block distance, the same
  # 13 cells at radius 2 cells), RandomCrop(instance_sz - 2 * 8),
  # BalancedLoss, Pair: sorted frame indices with t_x - t_z < 100. The
  # pair sampler is not part of this module.
  train_instance_size: int = 239
  positive_radius: float = 16.0
  label_weighting: str = 'balanced'
  max_frame_gap: int = 100
  # Frame stacks for video backbones: the embedding receives, per crop, the
  # same window cut from frames t - n .. t + n (edge frames repeated). 0
  # means single frames. Our choice (not SiamFC).
  num_neighbors: int = 0
