"""Video sources for conversion: video files (PyAV) and frame folders.

`discover_media` finds both under a folder; `decode_video_file` and
`decode_frame_folder` return the frames (resampled to a frame rate, resized
to a short side), `iter_video_frames` streams a segment. See
docs/datasets.md for the formats.
"""

import dataclasses
import io
import os
import re
from typing import Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image

from official_projects_const_cl.dataloaders.conversion import tfrecord_writer


VIDEO_EXTENSIONS = ('.mp4', '.avi', '.webm', '.mkv', '.mov', '.m4v')


IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


class VideoReadError(Exception):
  """A video (or one of its frames) cannot be read; the message says why."""


def _natural_key(name: str):
  return [int(s) if s.isdigit() else s.lower() for s in re.split(r'(\d+)',
                                                                 name)]


def is_frame_folder(path: str) -> bool:
  return any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(path)
             if os.path.isfile(os.path.join(path, f)))


def discover_media(root: str) -> List[str]:
  """Video files and frame folders under `root`, sorted by path."""
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    keep = []
    for d in dirnames:
      full = os.path.join(dirpath, d)
      if d.startswith('.'):
        continue
      if is_frame_folder(full):
        found.append(full)
      else:
        keep.append(d)
    dirnames[:] = keep  # Do not descend into frame folders.
    found.extend(os.path.join(dirpath, f) for f in filenames
                 if f.lower().endswith(VIDEO_EXTENSIONS))
  return sorted(found)


def media_key(path: str, root: str) -> str:
  """Relative path without a video extension, with '/' separators."""
  rel = os.path.relpath(path, root).replace(os.sep, '/')
  stem, ext = os.path.splitext(rel)
  return stem if ext.lower() in VIDEO_EXTENSIONS else rel


@dataclasses.dataclass
class DecodedVideo:
  """Frames of one video, ready to write.

  Attributes:
    frames_jpeg: T JPEG-encoded frames.
    timestamps_us: T timestamps in microseconds, or None when unknown.
    frame_rate: frames per second of the kept frames, or None when unknown.
    height: frame height in pixels.
    width: frame width in pixels.
  """
  frames_jpeg: List[bytes]
  timestamps_us: Optional[List[int]]
  frame_rate: Optional[float]
  height: int
  width: int


def resized_shape(height: int, width: int, short_side: Optional[int]
                   ) -> Tuple[int, int]:
  if not short_side:
    return height, width
  scale = short_side / min(height, width)
  # Even sizes keep chroma-subsampled codecs and JPEG blocks happy.
  return (max(2, int(round(height * scale / 2)) * 2),
          max(2, int(round(width * scale / 2)) * 2))


class _FrameSelector:
  """Keeps frames inside [start_s, end_s) and at most `fps` per second."""

  def __init__(self, fps, start_s, end_s):
    self.fps, self.start_s, self.end_s = fps, start_s, end_s
    self.next_t = None

  def keep(self, t: float) -> bool:
    if self.start_s is not None and t < self.start_s - 1e-6:
      return False
    if self.end_s is not None and t >= self.end_s - 1e-6:
      return False
    if self.fps is None:
      return True
    if self.next_t is None:
      self.next_t = t
    if t + 0.5e-3 >= self.next_t:  # Half a millisecond of rounding slack.
      while self.next_t <= t + 0.5e-3:
        self.next_t += 1.0 / self.fps
      return True
    return False


def _subsample(n: int, num_frames: Optional[int]) -> np.ndarray:
  if num_frames is None or n <= num_frames:
    return np.arange(n)
  return np.unique(np.round(np.linspace(0, n - 1, num_frames)).astype(int))


def iter_video_frames(path: str, start_s: Optional[float] = None
                      ) -> Iterator[Tuple[float, object]]:
  """Yields (time_s, frame) of a video file's frames, in decoding order.

  For reading a window of a long video: with `start_s`, the container seeks
  to the key frame at or before `start_s`, so the first frame yielded is at
  or before `start_s` and the frames before that key frame are not decoded.
  When the container cannot seek (no index, or the seek lands after
  `start_s`), decoding starts at the first frame instead. The caller stops
  iterating when it has the frames it needs (which closes the file).

  Times are seconds from the container's start time (`container.start_time`,
  0 for most files; `decode_video_file` uses the raw stream times), from the
  frame's presentation time, else index / average rate.

  Args:
    path: the video file.
    start_s: the first time needed, in seconds (None / <= 0: from the start).

  Yields:
    (time_s, av.VideoFrame); convert the frames one keeps with
    `frame.reformat(width=, height=, format='rgb24').to_ndarray()`.

  Raises:
    VideoReadError: naming the file when it is empty, has no video stream or
      cannot be decoded.
  """
  import av  # pylint: disable=g-import-not-at-top
  if os.path.getsize(path) == 0:
    raise VideoReadError(f'{path}: empty file (0 bytes).')
  seek = start_s is not None and start_s > 0
  while True:
    yielded = 0
    landed_after = False
    try:
      with av.open(path) as container:
        if not container.streams.video:
          raise VideoReadError(f'{path}: no video stream.')
        stream = container.streams.video[0]
        stream.thread_type = 'AUTO'
        origin = (container.start_time / av.time_base
                  if container.start_time is not None else 0.0)
        rate = float(stream.average_rate) if stream.average_rate else None
        if seek:
          container.seek(int((start_s + origin) * av.time_base),
                         backward=True)
        for index, frame in enumerate(container.decode(stream)):
          if seek and index == 0 and (
              frame.time is None or frame.time - origin > start_s + 1e-6):
            landed_after = True
            break
          t = frame.time - origin if frame.time is not None else (
              index / rate if rate else float(index))
          yielded += 1
          yield t, frame
    except VideoReadError:
      raise
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as e:
      if not (seek and yielded == 0):
        raise VideoReadError(
            f'{path}: cannot decode ({type(e).__name__}: {e}).') from e
      landed_after = True  # Not seekable: decode from the start below.
    if not landed_after:
      return
    seek = False


def decode_video_file(path: str, fps: Optional[float] = None,
                      short_side: Optional[int] = None,
                      num_frames: Optional[int] = None,
                      start_s: Optional[float] = None,
                      end_s: Optional[float] = None,
                      jpeg_quality: int = 90) -> DecodedVideo:
  """Decodes a video file with PyAV into JPEG frames.

  Args:
    path: the video file.
    fps: keep at most this many frames per second (None keeps all).
    short_side: resize so the short side has this many pixels (None keeps).
    num_frames: keep at most this many frames, evenly spread (None keeps all).
    start_s: segment start in seconds.
    end_s: segment end in seconds (exclusive).
    jpeg_quality: JPEG quality.

  Returns:
    The `DecodedVideo`.

  Raises:
    VideoReadError: naming the file when it cannot be opened or decoded or
      holds no frame in the requested segment.
  """
  import av  # pylint: disable=g-import-not-at-top
  if os.path.getsize(path) == 0:
    raise VideoReadError(f'{path}: empty file (0 bytes).')

  def read(seek: bool):
    """(kept, times, size, rate); None when a seek passed the segment start."""
    selector = _FrameSelector(fps, start_s, end_s)
    kept, times, size, rate = [], [], None, None
    with av.open(path) as container:
      if not container.streams.video:
        raise VideoReadError(f'{path}: no video stream.')
      stream = container.streams.video[0]
      stream.thread_type = 'AUTO'
      if stream.average_rate:
        rate = float(stream.average_rate)
      if seek:
        # To the key frame at or before start_s: a segment of a long video
        # does not need all the frames before it decoded.
        container.seek(int(start_s * av.time_base), backward=True)
      for index, frame in enumerate(container.decode(stream)):
        if seek and index == 0 and (frame.time is None
                                    or frame.time > start_s + 1e-6):
          return None
        t = frame.time if frame.time is not None else (
            index / rate if rate else float(index))
        if not selector.keep(t):
          if end_s is not None and t >= end_s:
            break
          continue
        if size is None:
          size = resized_shape(frame.height, frame.width, short_side)
        rgb = frame.reformat(width=size[1], height=size[0],
                             format='rgb24').to_ndarray()
        # Without subsampling, encode now so long videos stay small in memory.
        kept.append(rgb if num_frames else tfrecord_writer.encode_jpeg(
            rgb, jpeg_quality))
        times.append(t)
    return kept, times, size, rate

  try:
    result = None
    if start_s is not None and start_s > 0:
      try:
        result = read(seek=True)
      except av.FFmpegError:
        result = None  # Not seekable: decode from the start below.
    if result is None:
      result = read(seek=False)
  except VideoReadError:
    raise
  except (av.FFmpegError, OSError, ValueError, RuntimeError) as e:
    raise VideoReadError(f'{path}: cannot decode ({type(e).__name__}: {e}).'
                         ) from e
  kept, times, size, rate = result
  if not kept:
    raise VideoReadError(f'{path}: no decodable video frame'
                         + (' in the requested segment.' if start_s is not None
                            or end_s is not None else '.'))
  idx = _subsample(len(kept), num_frames)
  frames = [kept[i] if isinstance(kept[i], bytes) else
            tfrecord_writer.encode_jpeg(kept[i], jpeg_quality) for i in idx]
  out_rate = min(fps, rate) if fps is not None and rate else rate
  if num_frames and len(idx) > 1 and len(idx) < len(kept):
    out_rate = None  # Uneven subsampling: only the timestamps are exact.
  return DecodedVideo(
      frames_jpeg=frames,
      timestamps_us=[int(round(times[i] * 1e6)) for i in idx],
      frame_rate=out_rate, height=size[0], width=size[1])


def load_frame_image(data: bytes, where: str,
                     short_side: Optional[int] = None,
                     size: Optional[Tuple[int, int]] = None,
                     jpeg_quality: int = 90) -> Tuple[bytes, Tuple[int, int]]:
  """Checks that an encoded frame image decodes; returns it as a JPEG.

  JPEG RGB frames already at the wanted size are returned unchanged; others
  are converted to RGB, resized (bilinear) and re-encoded.

  Args:
    data: the encoded image (JPEG, PNG, BMP, ...).
    where: names the frame (file path, record and index) in errors.
    short_side: resize so the short side has this many pixels (used when
      `size` is None).
    size: the wanted (height, width), e.g. the one returned for the first
      frame of a video, so all its frames have one size; None: this image's
      own size, after `short_side`.
    jpeg_quality: JPEG quality of re-encoded frames.

  Returns:
    (JPEG bytes, (height, width)).

  Raises:
    VideoReadError: naming `where` when the image cannot be decoded.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    image = Image.open(io.BytesIO(data))
    image.load()
  except (OSError, SyntaxError, ValueError) as e:
    raise VideoReadError(f'{where}: cannot decode frame image ({e}).') from e
  if size is None:
    size = resized_shape(image.height, image.width, short_side)
  same_size = (image.height, image.width) == tuple(size)
  if image.format == 'JPEG' and image.mode == 'RGB' and same_size:
    return data, tuple(size)
  image = image.convert('RGB')
  if not same_size:
    image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
  return (tfrecord_writer.encode_jpeg(np.asarray(image), jpeg_quality),
          tuple(size))


def decode_frame_folder(path: str, frame_rate: Optional[float] = None,
                        fps: Optional[float] = None,
                        short_side: Optional[int] = None,
                        num_frames: Optional[int] = None,
                        jpeg_quality: int = 90,
                        start_s: Optional[float] = None,
                        end_s: Optional[float] = None) -> DecodedVideo:
  """Reads a folder of frame images (natural name order) into JPEG frames.

  JPEG frames that need no resizing are stored unchanged (after checking that
  they decode); other frames are re-encoded.

  Args:
    path: the frame folder.
    frame_rate: frames per second of the folder, if known (timestamps and
      `fps` resampling need it).
    fps: keep at most this many frames per second (needs frame_rate).
    short_side: resize so the short side has this many pixels.
    num_frames: keep at most this many frames, evenly spread.
    jpeg_quality: JPEG quality of re-encoded frames.
    start_s: segment start in seconds, frame i being at i / frame_rate
      (needs frame_rate).
    end_s: segment end in seconds, exclusive (needs frame_rate).

  Returns:
    The `DecodedVideo`.

  Raises:
    VideoReadError: naming the frame file that cannot be decoded, or when
      the folder has no frame (in the segment).
  """
  names = sorted((f for f in os.listdir(path)
                  if f.lower().endswith(IMAGE_EXTENSIONS)), key=_natural_key)
  if not names:
    raise VideoReadError(f'{path}: frame folder without images.')
  if fps is not None and frame_rate is None:
    raise VideoReadError(f'{path}: fps resampling of a frame folder needs its '
                         'frame rate (frame_folder_rate).')
  if (start_s is not None or end_s is not None) and frame_rate is None:
    raise VideoReadError(f'{path}: trimming a frame folder to a segment needs '
                         'its frame rate (frame_folder_rate).')
  selector = _FrameSelector(fps, start_s, end_s)
  picked = [i for i in range(len(names))
            if frame_rate is None or selector.keep(i / frame_rate)]
  if not picked:
    raise VideoReadError(f'{path}: no frame in the requested segment.')
  num_selected = len(picked)
  picked = [picked[i] for i in _subsample(num_selected, num_frames)]
  frames, size = [], None
  for i in picked:
    file = os.path.join(path, names[i])
    try:
      with open(file, 'rb') as f:
        data = f.read()
    except OSError as e:
      raise VideoReadError(f'{file}: cannot decode frame image ({e}).') from e
    jpeg, size = load_frame_image(data, file, short_side=short_side,
                                  size=size, jpeg_quality=jpeg_quality)
    frames.append(jpeg)
  timestamps = None
  out_rate = None
  if frame_rate is not None:
    timestamps = [int(round(i / frame_rate * 1e6)) for i in picked]
    out_rate = fps if fps is not None else frame_rate
    if num_frames and len(picked) > 1 and len(picked) < num_selected and (
        fps is None):
      out_rate = None
  return DecodedVideo(frames_jpeg=frames, timestamps_us=timestamps,
                      frame_rate=out_rate, height=size[0], width=size[1])
