"""Attention of the region head over the context frames (paper Fig. 4).

The pretraining model runs on one clip used as both views: the query is the
region feature h of one box on the clip's center feature-map slice (ROIAlign
on res5_r), the keys / values are the clip's own res5_r voxels of the
`context_length` context slices F'c (§3.2). The head's attention
probabilities `[layers, heads, M]` over the M = L * H' * W' context tokens
are reshaped to one `[H', W']` map per context slice (tokens are laid out
slice-major, then row, then column, as the model flattens them).

The clip is view 0 of the evaluation pipeline (dataloaders/pretrain_input.py):
the temporally centered clip at the experiment's `feature_shape` and
`temporal_stride`, center crop, float32 [0, 1]; boxes are in its
normalized coordinates.
"""

import dataclasses
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from official.core import config_definitions as cfg
from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import pretrain_input
from official_projects_const_cl.dataloaders import records
from official_projects_const_cl.modeling import const_cl_model
from official_projects_const_cl.modeling.heads import instance_reconstructor


@dataclasses.dataclass
class Clip:
  """One evaluation clip with its stored boxes."""
  images: np.ndarray  # float32 [T, H, W, 3] in [0, 1].
  boxes: np.ndarray  # float32 [T, N, 4] normalized (ymin, xmin, ymax, xmax).
  boxes_mask: np.ndarray  # float32 [T, N].
  frame_index: np.ndarray  # int [T], frames of the video.
  source: str  # '<file> record <i>'.


@dataclasses.dataclass
class AttentionMaps:
  """The region head's attention of one query box."""
  maps: np.ndarray  # float32 [layers, heads, L, H', W'], sums to 1 per head.
  context_slices: np.ndarray  # int [L], feature-map time slices.
  context_frames: np.ndarray  # int [L], clip frames shown for them.
  query_slice: int  # Feature-map slice of the query region.
  query_frame: int  # Clip frame whose box is the query.
  box: np.ndarray  # float32 [4], the query box (ymin, xmin, ymax, xmax).


def read_clip(params: cfg.ExperimentConfig, input_path: str,
              record_index: int = 0, stored_boxes: bool = True) -> Clip:
  """Reads record `record_index` of `input_path` as an evaluation clip.

  Args:
    params: the pretraining experiment (clip shape, stride, boxes per frame).
    input_path: TFRecord files / glob of the project's clip format; records
      count across the matched files in sorted order.
    record_index: which record.
    stored_boxes: read the `region/bbox/*` boxes (else random boxes).

  Returns:
    The clip.

  Raises:
    errors.UserError: no such file / record, or a bad video.
  """
  data = params.task.train_data
  files = records.matched_record_files(input_path, data.compressed_input,
                                       '--input_path')
  data = data.replace(region_source='stored' if stored_boxes else 'random',
                      is_training=False)
  decoder = pretrain_input.Decoder(image_key=data.image_field_key,
                                   label_key=data.label_field_key,
                                   load_boxes=stored_boxes)
  parser = pretrain_input.Parser.from_config(data)
  dataset = records.dataset_fn_with_source(
      files, 'GZIP' if data.compressed_input else None)
  found = list(dataset.skip(record_index).take(1))
  if record_index < 0 or not found:
    raise errors.UserError(
        f'--record_index={record_index}: {input_path} holds fewer records '
        f'({len(files)} files).')
  example = parser.parse_fn(False)(decoder.decode(found[0]))
  source = example['source'].numpy().decode()
  problem = example['problem'].numpy().decode()
  if problem:
    raise errors.UserError(f'{source}: {problem}')
  return Clip(images=example['image'][0].numpy(),
              boxes=example['boxes'][0].numpy(),
              boxes_mask=example['boxes_mask'][0].numpy(),
              frame_index=example['frame_index'][0].numpy(), source=source)


def attention_maps(model: tf_keras.Model, clip: Clip,
                   box: Optional[Sequence[float]] = None,
                   box_index: int = 0) -> AttentionMaps:
  """The head's attention of one box over the clip's context frames.

  Args:
    model: a `ConstClModel` with a transformer region head.
    clip: the clip (`read_clip`).
    box: the query box (ymin, xmin, ymax, xmax) normalized in the clip; None
      takes stored box `box_index` on the query frame.
    box_index: which stored box (the demo: the object of that track).

  Returns:
    The maps (module doc).

  Raises:
    errors.UserError: a model without a transformer head, a bad box, or no
      stored box `box_index` on the query frame.
  """
  if not isinstance(model.region_head,
                    instance_reconstructor.InstanceReconstructor):
    raise errors.UserError(
        'attention maps need the transformer region head (ConST-CL with '
        'model.context_length >= 1); this experiment has '
        f'{type(model.region_head).__name__ if model.region_head else "none"}.')
  num_frames = clip.images.shape[0]
  num_slices, height, width = model.local_feature_shape
  query_slice = num_slices // 2
  query_frame = int(const_cl_model.input_frame_index(
      tf.constant(query_slice), num_frames, num_slices))
  boxes = np.array(clip.boxes, np.float32)
  if box is None:
    if not 0 <= box_index < boxes.shape[1] or not (
        clip.boxes_mask[query_frame, box_index] > 0):
      raise errors.UserError(
          f'{clip.source} has no stored box {box_index} on frame '
          f'{int(clip.frame_index[query_frame])} (clip frame {query_frame}, '
          'the query frame); pass --box or another --box_index.')
    box = boxes[query_frame, box_index]
  box = np.asarray(box, np.float32)
  if box.shape != (4,) or not (0 <= box[0] < box[2] <= 1 and
                               0 <= box[1] < box[3] <= 1):
    raise errors.UserError(
        f'--box must be ymin,xmin,ymax,xmax with 0 <= ymin < ymax <= 1 and '
        f'0 <= xmin < xmax <= 1, got {box.tolist()}.')
  boxes[:, 0] = box  # The query is slot 0 on every frame.
  inputs = {
      const_cl_model.IMAGE: tf.constant(np.stack([clip.images] * 2)),
      const_cl_model.BOXES: tf.constant(np.stack([boxes] * 2)),
      const_cl_model.BOXES_MASK: tf.ones([2] + list(boxes.shape[:2])),
      const_cl_model.REGION_TIME_INDEX: tf.constant([query_slice] * 2,
                                                    tf.int32),
  }
  outputs = model(inputs, training=False, return_attention_scores=True)
  scores = outputs[const_cl_model.ATTENTION_SCORES][0, :, :, 0].numpy()
  slices = instance_reconstructor.context_frame_indices(
      num_slices, model.context_length)
  maps = scores.reshape(scores.shape[:2] + (len(slices), height, width))
  frames = const_cl_model.input_frame_index(tf.constant(slices), num_frames,
                                            num_slices).numpy()
  return AttentionMaps(maps=maps, context_slices=np.array(slices),
                       context_frames=frames, query_slice=query_slice,
                       query_frame=query_frame, box=box)
