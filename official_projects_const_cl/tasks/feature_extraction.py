"""Per-clip and per-video features of a pretrained backbone.

A video (a file or frame folder that `tools/convert_videos.py` reads, or a
clip record of docs/datasets.md) gives `num_clips` clips of the experiment's
`feature_shape[0]` frames at its `temporal_stride`, their starts evenly
spaced over the video (`round(linspace(0, Tv - span, num_clips))`; a video
shorter than the span is looped, as in the input pipeline). Each clip is
center-cropped as the evaluation view (`augmentations.eval_clip`) and
embedded as the global average of one res5 endpoint (res5_g by default;
`export_module.backbone_features`); a video's feature is the mean over its
clips. Unreadable frames are replaced by the nearest readable one
(`frames.decode_clips`); a video that cannot be read is a `VideoFailure`.
"""

import dataclasses
import os
from typing import Callable, Iterator, List, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from official_projects_const_cl.dataloaders import augmentations
from official_projects_const_cl.dataloaders import features as features_lib
from official_projects_const_cl.dataloaders import frames as frames_lib
from official_projects_const_cl.dataloaders import records
from official_projects_const_cl.dataloaders.conversion import video_sources
from official_projects_const_cl.modeling import export_module


class VideoFailure(Exception):
  """One video cannot be embedded; the message says why."""


@dataclasses.dataclass
class Video:
  """A video to embed: its id, file and a reader of its JPEG frames."""
  video_id: str
  file: str
  read_frames: Callable[[], List[bytes]]


def clip_starts(num_video_frames: int, span: int, num_clips: int
                ) -> np.ndarray:
  """Evenly spaced clip starts: `round(linspace(0, max(Tv - span, 0), C))`."""
  last = max(int(num_video_frames) - int(span), 0)
  return np.round(np.linspace(0, last, num_clips)).astype(np.int32)


def clip_indices(num_video_frames: int, num_frames: int, stride: int,
                 num_clips: int) -> Tuple[np.ndarray, np.ndarray]:
  """(starts [C], frame indices [C, T]) of the clips, looped if short."""
  span = (num_frames - 1) * stride + 1
  starts = clip_starts(num_video_frames, span, num_clips)
  indices = starts[:, None] + np.arange(num_frames)[None] * stride
  return starts, np.mod(indices, max(int(num_video_frames), 1)).astype(
      np.int32)


def _tfrecord_videos(files: List[str], compressed: bool
                     ) -> Iterator[Tuple[str, object]]:
  """(file, Video or VideoFailure) for every record of the files."""
  for path in files:
    dataset = tf.data.TFRecordDataset(
        path, compression_type='GZIP' if compressed else None)
    index = -1
    try:
      for index, serialized in enumerate(dataset):
        context, sequences = tf.io.parse_single_sequence_example(
            serialized,
            {features_lib.MEDIA_ID_KEY: tf.io.FixedLenFeature(
                [], tf.string, default_value='')},
            {features_lib.IMAGE_KEY: tf.io.FixedLenSequenceFeature(
                [], tf.string, allow_missing=True)})
        media_id = context[features_lib.MEDIA_ID_KEY].numpy().decode()
        jpegs = list(sequences[features_lib.IMAGE_KEY].numpy())
        yield path, Video(media_id or f'{os.path.basename(path)}:{index}',
                          f'{path} record {index}',
                          lambda jpegs=jpegs: jpegs)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
      first = (e.message or str(e)).strip().split('\n')[0]
      yield path, VideoFailure(
          f'damaged TFRecord file after record {index}: {first}')


def iter_videos(input_path: str, compressed: bool = False
                ) -> Iterator[object]:
  """The videos of a folder of videos / frame folders, or of TFRecords.

  Args:
    input_path: a folder (every video file and frame folder under it,
      `video_sources.discover_media`) or TFRecord files / globs
      (comma-separated).
    compressed: the TFRecords are GZIP files.

  Yields:
    `Video`s, and `(file, VideoFailure)` pairs for what cannot be read at
    all (a damaged record file).

  Raises:
    records.InputPathError: `input_path` matches nothing.
  """
  if os.path.isdir(input_path):
    for path in video_sources.discover_media(input_path):
      if os.path.isdir(path):
        read = lambda p=path: video_sources.decode_frame_folder(p).frames_jpeg
      else:
        read = lambda p=path: video_sources.decode_video_file(p).frames_jpeg
      yield Video(video_sources.media_key(path, input_path), path, read)
    return
  files = records.check_input_path(input_path)
  for path in files:
    problem = records.file_problem(path, compressed)
    if problem:
      yield path, VideoFailure(problem)
      continue
    for _, item in _tfrecord_videos([path], compressed):
      yield (path, item) if isinstance(item, VideoFailure) else item


class ClipEmbedder:
  """Pooled backbone features of evenly spaced clips of a video."""

  def __init__(self, backbone: tf_keras.Model, clip_shape: Tuple[int, int,
                                                                 int],
               temporal_stride: int, num_clips: int,
               endpoint: str = 'res5_g'):
    """Initializes the embedder.

    Args:
      backbone: the pretrained backbone (restored).
      clip_shape: (T, H, W) of a clip.
      temporal_stride: frames between sampled frames.
      num_clips: clips per video.
      endpoint: the pooled endpoint (a key of the backbone's output specs).

    Raises:
      ValueError: an endpoint the backbone does not have, or num_clips < 1.
    """
    if endpoint not in backbone.output_specs:
      raise ValueError(f'--endpoint={endpoint!r} is not an endpoint of the '
                       f'backbone; it has {sorted(backbone.output_specs)}.')
    if num_clips < 1:
      raise ValueError(f'--num_clips must be >= 1, got {num_clips}.')
    self._backbone = backbone
    self._clip_shape = tuple(int(s) for s in clip_shape)
    self._stride = int(temporal_stride)
    self._num_clips = int(num_clips)
    self._endpoint = endpoint
    t, h, w = self._clip_shape
    self._embed = tf.function(self._embed_clips, input_signature=[
        tf.TensorSpec([None], tf.string),
        tf.TensorSpec([self._num_clips, t], tf.int32)])

  def _embed_clips(self, jpegs: tf.Tensor, indices: tf.Tensor):
    t, h, w = self._clip_shape
    clips = frames_lib.decode_clips(jpegs, indices, (h, w))
    images = tf.map_fn(
        lambda c: augmentations.eval_clip(c, (h, w))[0], clips.images,
        fn_output_signature=tf.TensorSpec([t, h, w, 3], tf.float32))
    outputs = export_module.backbone_features(images, self._backbone)
    pooled = outputs.get(export_module.POOLED_PREFIX + self._endpoint)
    if pooled is None:  # An endpoint without a pooled output (res2..res4).
      pooled = tf.reduce_mean(outputs[self._endpoint], axis=[1, 2, 3])
    return pooled, clips.problem

  def __call__(self, jpegs: List[bytes]) -> Tuple[np.ndarray, np.ndarray]:
    """(features float32 [C, channels], starts int [C]) of one video.

    Raises:
      VideoFailure: no frames, or a clip without a readable frame.
    """
    if not jpegs:
      raise VideoFailure('the video has no frames')
    starts, indices = clip_indices(len(jpegs), self._clip_shape[0],
                                   self._stride, self._num_clips)
    pooled, problem = self._embed(tf.constant(jpegs, tf.string),
                                  tf.constant(indices))
    problem = problem.numpy().decode()
    if problem:
      raise VideoFailure(problem)
    return pooled.numpy(), starts
