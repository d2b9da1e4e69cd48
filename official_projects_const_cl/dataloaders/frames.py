"""Decoding the sampled JPEG frames of a video without failing on bad ones.

Used by every video input pipeline (pretraining, recognition, localization).
For the frames sampled from a video (one or several clips):

* A frame whose bytes are not a complete JPEG (no `FF D8 FF` start, or no
  `FF D9` end marker within its last 32 bytes: garbage or truncated data),
  or that libjpeg refuses to decode although its markers are intact (e.g. a
  damaged header: `jpeg::Uncompress failed`), is unreadable. It is replaced
  by the nearest readable frame of the same clip (ties: the earlier one) and
  counted in `num_corrupt`. A JPEG whose entropy-coded data is damaged but
  that libjpeg decodes (with a warning) is used as decoded.
* Frames are resized (bilinear) to the size of the first readable sampled
  frame, so a video whose frames have different sizes still gives clips of
  one size (the views are cropped and resized afterwards anyway).
* A video with no frame, or with a clip none of whose sampled frames is
  readable, is BAD: the clip frames are grey placeholders and `problem`
  says why (with the frame indices); the input pipelines skip bad videos
  within a budget (`records.skip_bad_videos`).

`decode_video` decodes a whole video once (for a cache of decoded videos),
and `clips_from_video` samples clips from it with the same rules.

Decoding is guarded by a small `tf.data` pipeline per video whose
`ignore_errors` drops the frames libjpeg rejects (graph mode, no Python).
"""

from typing import NamedTuple, Sequence

import tensorflow as tf

# How far from the end of a frame's bytes the JPEG end marker may be (some
# writers pad after it).
_JPEG_END_SEARCH = 32
_PLACEHOLDER_LEVEL = 128


def readable_jpeg(frames: tf.Tensor) -> tf.Tensor:
  """Whether each string looks like a complete JPEG.

  Args:
    frames: string [T].

  Returns:
    bool [T]: starts with `FF D8 FF` and has the end marker `FF D9` within
    its last 32 bytes.
  """
  starts = tf.equal(tf.strings.substr(frames, 0, 3), b'\xff\xd8\xff')
  length = tf.strings.length(frames)
  tail_start = tf.maximum(length - _JPEG_END_SEARCH, 0)
  tail = tf.strings.substr(frames, tail_start, length - tail_start)
  # Zero padding to a fixed length cannot create an FF D9 pair.
  tail = tf.io.decode_raw(tail, tf.uint8, fixed_length=_JPEG_END_SEARCH)
  ends = tf.reduce_any(
      tf.logical_and(tf.equal(tail[:, :-1], 0xff), tf.equal(tail[:, 1:], 0xd9)),
      axis=1)
  return tf.logical_and(starts, ends)


def nearest_readable(readable: tf.Tensor) -> tf.Tensor:
  """For every slot, the position of the nearest readable slot.

  Args:
    readable: bool [..., T].

  Returns:
    int32 [..., T] positions along the last axis (ties resolved to the
    earlier slot); meaningless where nothing is readable.
  """
  positions = tf.range(tf.shape(readable)[-1])
  distance = tf.abs(positions[:, None] - positions[None, :])  # [T, T]
  distance = tf.where(readable[..., None, :], distance, tf.int32.max)
  return tf.argmin(distance, axis=-1, output_type=tf.int32)


def _decode_all_or_none(frames: tf.Tensor):
  """Decodes N (static) frames at once; (images, True) or (?, False).

  One small guarded `tf.data` pipeline for the whole set: a frame libjpeg
  rejects, or frames of different sizes, make it give up (False), and the
  caller takes the frame-by-frame path. About 4x cheaper than that path
  for the common case of a clean video.
  """
  num = frames.shape[0]
  decoded = tf.data.Dataset.from_tensors(frames).map(
      lambda f: (tf.stack([tf.io.decode_jpeg(f[i], channels=3)  # pylint: disable=g-long-lambda
                           for i in range(num)]), True)).ignore_errors()
  failed = tf.data.Dataset.from_tensors(
      (tf.zeros([num, 1, 1, 3], tf.uint8), False))
  return decoded.concatenate(failed).take(1).get_single_element()


def decode_frames(frames: tf.Tensor) -> tf.Tensor:
  """Decodes the readable frames; drops the others; one size for all.

  A clean set of frames (all complete JPEGs, accepted by libjpeg, of one
  size) is decoded in one guarded step; otherwise frame by frame
  (`_decode_each`).

  Args:
    frames: string [N] JPEG frames.

  Returns:
    positions: int32 [K], which of the N frames were decoded (K <= N).
    images: uint8 [K, H, W, 3], every frame resized (bilinear) to the size
      of the first decoded one.
  """
  num = frames.shape[0]
  if not num:  # Unknown or zero: frame by frame.
    return _decode_each(frames)
  images, ok = _decode_all_or_none(frames)
  ok = tf.logical_and(ok, tf.reduce_all(readable_jpeg(frames)))
  positions, images = tf.cond(
      ok, lambda: (tf.range(num), images), lambda: _decode_each(frames))
  images.set_shape([None, None, None, 3])
  return positions, images


def _decode_each(frames: tf.Tensor):
  """`decode_frames`, one guarded frame at a time (bad frames dropped)."""
  candidates = tf.data.Dataset.from_tensor_slices(
      (tf.range(tf.shape(frames)[0]), frames, readable_jpeg(frames)))
  decoded = candidates.filter(lambda i, f, ok: ok).map(
      lambda i, f, ok: (i, tf.io.decode_jpeg(f, channels=3))).ignore_errors()

  def to_first_size(size, element):
    position, image = element
    shape = tf.shape(image)[:2]
    size = tf.where(size[0] < 0, shape, size)
    image = tf.cond(
        tf.reduce_all(tf.equal(shape, size)), lambda: image,
        lambda: tf.cast(tf.clip_by_value(tf.round(  # pylint: disable=g-long-lambda
            tf.image.resize(image, size)), 0, 255), tf.uint8))
    return size, (position, image)

  decoded = decoded.scan(tf.constant([-1, -1]), to_first_size)
  batched = decoded.batch(tf.cast(tf.maximum(tf.shape(frames)[0], 1),
                                  tf.int64))
  nothing = tf.data.Dataset.from_tensors(
      (tf.zeros([0], tf.int32), tf.zeros([0, 1, 1, 3], tf.uint8)))
  positions, images = batched.concatenate(nothing).take(1).get_single_element()
  images.set_shape([None, None, None, 3])
  return positions, images


class Clips(NamedTuple):
  """Decoded clips of one video (see `decode_clips`)."""
  images: tf.Tensor       # uint8 [C, T, H, W, 3]
  indices: tf.Tensor      # int32 [C, T], frames actually shown
  num_corrupt: tf.Tensor  # int32 scalar, replaced frame slots
  problem: tf.Tensor      # string scalar, '' unless the video is bad


def decode_clips(frames: tf.Tensor, indices: tf.Tensor,
                 placeholder_size: Sequence[int],
                 image_key: str = 'image/encoded') -> Clips:
  """Decodes the sampled frames of C clips, replacing unreadable ones.

  Args:
    frames: string [Tv] JPEGs of the whole video (Tv may be 0).
    indices: int32 [C, T] sampled frame indices (static C, T), computed for
      a video of max(Tv, 1) frames.
    placeholder_size: (h, w) of the grey frames of a bad video.
    image_key: the frames' feature key, for `problem`.

  Returns:
    `Clips`; for a bad video (no frames, or a clip without a readable
    sampled frame) `images` are grey placeholders of `placeholder_size` and
    `problem` says what is wrong (module doc).
  """
  num_stored = tf.shape(frames)[0]
  frames = tf.cond(num_stored > 0, lambda: frames,
                   lambda: tf.constant([b''], tf.string))
  flat = tf.reshape(indices, [-1])
  positions, decoded = decode_frames(tf.gather(frames, flat))
  # Row of every sampled frame slot in `decoded` (-1: not decoded).
  rows = tf.tensor_scatter_nd_update(
      -tf.ones_like(flat), positions[:, None], tf.range(tf.size(positions)))
  return assemble_clips(decoded, tf.reshape(rows, tf.shape(indices)), indices,
                        num_stored, placeholder_size, image_key)


class DecodedVideo(NamedTuple):
  """Every frame of one video decoded once (see `decode_video`)."""
  images: tf.Tensor        # uint8 [K, H, W, 3], the readable frames
  row_of_frame: tf.Tensor  # int32 [Tv], row in `images` or -1 (unreadable)
  num_stored: tf.Tensor    # int32 scalar, Tv


def decode_video(frames: tf.Tensor) -> DecodedVideo:
  """Decodes all the frames of a video, for a cache of decoded videos.

  `clips_from_video` then samples clips from it with the rules of
  `decode_clips` (same frames, same replacements, same problems).

  Args:
    frames: string [Tv] JPEGs of the whole video (Tv may be 0).

  Returns:
    `DecodedVideo`.
  """
  num_stored = tf.shape(frames)[0]
  positions, images = decode_frames(frames)
  row_of_frame = tf.tensor_scatter_nd_update(
      -tf.ones([num_stored], tf.int32), positions[:, None],
      tf.range(tf.size(positions)))
  return DecodedVideo(images, row_of_frame, num_stored)


def clips_from_video(video: DecodedVideo, indices: tf.Tensor,
                     placeholder_size: Sequence[int],
                     image_key: str = 'image/encoded') -> Clips:
  """`decode_clips` of a video decoded by `decode_video`.

  Args:
    video: the decoded video.
    indices: int32 [C, T] sampled frame indices (static C, T), computed for
      a video of max(Tv, 1) frames.
    placeholder_size: (h, w) of the grey frames of a bad video.
    image_key: the frames' feature key, for `problem`.

  Returns:
    `Clips`, equal to what `decode_clips` gives for the same indices.
  """
  row_of_frame = tf.cond(video.num_stored > 0, lambda: video.row_of_frame,
                         lambda: tf.constant([-1], tf.int32))
  return assemble_clips(video.images, tf.gather(row_of_frame, indices),
                        indices, video.num_stored, placeholder_size,
                        image_key)


def assemble_clips(decoded: tf.Tensor, rows: tf.Tensor, indices: tf.Tensor,
                   num_stored: tf.Tensor, placeholder_size: Sequence[int],
                   image_key: str) -> Clips:
  """The clips of `decode_clips` from decoded frames (module doc's rules).

  Args:
    decoded: uint8 [K, H, W, 3] decoded frames.
    rows: int32 [C, T], the row in `decoded` of every sampled slot, or -1
      where the sampled frame is unreadable.
    indices: int32 [C, T] the sampled frame indices.
    num_stored: int32 scalar, frames stored for the video.
    placeholder_size: (h, w) of the grey frames of a bad video.
    image_key: the frames' feature key, for `problem`.

  Returns:
    `Clips`.
  """
  num_clips, num_frames = indices.shape
  flat = tf.reshape(indices, [-1])
  readable = rows >= 0
  shown = (nearest_readable(readable) +
           tf.range(num_clips)[:, None] * num_frames)  # [C, T] flat slots
  clip_ok = tf.reduce_any(readable, axis=1)
  ok = tf.logical_and(num_stored > 0, tf.reduce_all(clip_ok))
  h, w = int(placeholder_size[0]), int(placeholder_size[1])
  images = tf.cond(
      ok, lambda: tf.gather(decoded, tf.gather(tf.reshape(rows, [-1]), shown)),
      lambda: tf.fill([num_clips, num_frames, h, w, 3],  # pylint: disable=g-long-lambda
                      tf.constant(_PLACEHOLDER_LEVEL, tf.uint8)))
  images.set_shape([num_clips, num_frames, None, None, 3])
  shown_indices = tf.where(ok, tf.gather(flat, shown), indices)
  num_corrupt = tf.size(readable) - tf.reduce_sum(tf.cast(readable, tf.int32))
  bad_clip = tf.argmin(tf.cast(clip_ok, tf.int32), output_type=tf.int32)
  listed = tf.strings.reduce_join(tf.strings.as_string(indices[bad_clip]),
                                  separator=',')
  problem = tf.where(
      num_stored <= 0,
      f"no frames under '{image_key}' (key missing or video empty)",
      tf.where(ok, '', tf.strings.join([
          'none of the sampled frames (', listed, ') is a readable JPEG'])))
  return Clips(images, tf.cast(shown_indices, tf.int32), num_corrupt, problem)
