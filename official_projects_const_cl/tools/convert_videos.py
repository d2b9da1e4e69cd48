"""Converts a folder of videos into the clip TFRecords of DESIGN §4.

Inputs under `input_dir` (searched recursively, sorted by path):
  * video files (.mp4 .avi .webm .mkv .mov .m4v), decoded with PyAV;
  * per-video frame folders: a folder whose own files include images
    (.jpg .jpeg .png .bmp), one image per frame in natural name order.

Labels come from a pluggable `LabelSource`:
  * `ClassFolderLabels` (default): `input_dir/<class_name>/<video>`; media
    directly in `input_dir` are written without a label.
  * `CsvLabels` (`labels_csv=`): rows `path_or_id,label` (header allowed;
    several rows for one video give it several labels); `path_or_id` is the
    path relative to `input_dir` (extension optional) or the file stem.
Dataset-specific sources (UCF101/HMDB51 split files, the Kinetics CSV
`youtube_id,time_start,time_end,label`) subclass `LabelSource`/`CsvLabels`;
`VideoItem.start_s/end_s` already trim a video to a segment.

Output: `<output_prefix>-0000i-of-0000N.tfrecord` (one SequenceExample per
video: JPEG frames in `image/encoded`, `clip/label/index`, `clip/label/text`,
`clip/media_id`, `image/timestamp`, ...), `<output_prefix>_label_map.txt`
(one class name per line, line i = label index i) and, when some videos could
not be read, `<output_prefix>_failures.csv`. Unreadable videos (corrupt or
empty files, no video stream, no decodable frame, a corrupt frame image) are
reported by name with the reason and counted; the others are written.

CLI: `python -m official_projects_const_cl.tools.convert_videos
  --input_dir=videos/ --output_prefix=/data/clips/train --num_shards=8`.
"""

import abc
import argparse
import csv
import dataclasses
import io
import os
import re
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from official_projects_const_cl.tools import tfrecord_writer

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.webm', '.mkv', '.mov', '.m4v')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
_HEADER_LABEL_NAMES = ('label', 'labels', 'class', 'class_name', 'label_name',
                       'category')


class VideoReadError(Exception):
  """A video (or one of its frames) cannot be read; the message says why."""


@dataclasses.dataclass
class VideoItem:
  """One video to convert.

  Attributes:
    path: the video file or frame folder.
    key: media id; the path relative to the input folder without extension.
    labels: class names (empty = unlabeled).
    start_s: optional segment start in seconds (trimming).
    end_s: optional segment end in seconds (exclusive).
  """
  path: str
  key: str
  labels: Tuple[str, ...] = ()
  start_s: Optional[float] = None
  end_s: Optional[float] = None


@dataclasses.dataclass
class Collected:
  """What a label source found.

  Attributes:
    items: videos to convert, labeled.
    class_names: label map, index = label id.
    missing: (name, reason) of videos the labels name but that are absent.
    skipped: paths of media that the labels do not mention.
  """
  items: List[VideoItem]
  class_names: List[str]
  missing: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  skipped: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ConversionReport:
  """Result of `convert`.

  Attributes:
    written: number of videos written.
    failed: (path or name, reason) of every video not written.
    skipped: media found but not listed by the label source.
    output_paths: the shard files.
    label_map_path: the label map file (None when there are no labels).
    class_names: the label map.
    seconds: wall time.
  """
  written: int
  failed: List[Tuple[str, str]]
  skipped: List[str] = dataclasses.field(default_factory=list)
  output_paths: List[str] = dataclasses.field(default_factory=list)
  label_map_path: Optional[str] = None
  class_names: List[str] = dataclasses.field(default_factory=list)
  seconds: float = 0.0

  def summary(self) -> str:
    text = (f'Wrote {self.written} videos to {len(self.output_paths)} shards '
            f'in {self.seconds:.1f}s; {len(self.failed)} failed')
    if self.skipped:
      text += f', {len(self.skipped)} skipped (not in the labels)'
    if self.failed:
      text += ': ' + ', '.join(os.path.basename(p) for p, _ in self.failed[:10])
      if len(self.failed) > 10:
        text += ', ...'
    return text + '.'


def _natural_key(name: str):
  return [int(s) if s.isdigit() else s.lower() for s in re.split(r'(\d+)',
                                                                 name)]


def _is_frame_folder(path: str) -> bool:
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
      if _is_frame_folder(full):
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


def _class_names_of(labels) -> List[str]:
  names = sorted(set(labels))
  if names and all(re.fullmatch(r'\d+', n) for n in names):
    # Integer labels are their own indices.
    return [str(i) for i in range(max(int(n) for n in names) + 1)]
  return names


class LabelSource(abc.ABC):
  """Finds the videos under an input folder and their labels."""

  @abc.abstractmethod
  def collect(self, input_dir: str) -> Collected:
    """Returns the labeled items (see `Collected`)."""


class ClassFolderLabels(LabelSource):
  """Labels from class sub-folders: `input_dir/<class_name>/<video>`.

  Every top-level folder that is not itself a frame folder is a class (kept
  in the label map even when empty, so indices are stable). Media directly in
  `input_dir` are unlabeled.
  """

  def collect(self, input_dir: str) -> Collected:
    classes = sorted(
        d for d in os.listdir(input_dir)
        if not d.startswith('.') and os.path.isdir(os.path.join(input_dir, d))
        and not _is_frame_folder(os.path.join(input_dir, d)))
    items = []
    for path in discover_media(input_dir):
      key = media_key(path, input_dir)
      top = key.split('/')[0]
      labels = (top,) if '/' in key and top in classes else ()
      items.append(VideoItem(path=path, key=key, labels=labels))
    return Collected(items=items, class_names=classes)


class CsvLabels(LabelSource):
  """Labels from a CSV of `path_or_id,label` rows (header allowed).

  Subclasses for other CSV layouts override `parse_row`.
  """

  def __init__(self, csv_path: str):
    if not os.path.isfile(csv_path):
      raise FileNotFoundError(f'Labels CSV {csv_path} does not exist.')
    self.csv_path = csv_path

  def parse_row(self, row: List[str], line: int
                ) -> Optional[Tuple[str, str, Optional[float],
                                    Optional[float]]]:
    """(key, label, start_s, end_s) of a row; None skips it (a header).

    Raises:
      ValueError: naming the CSV and line when the row is malformed.
    """
    if line == 1 and len(row) >= 2 and (
        row[1].strip().lower() in _HEADER_LABEL_NAMES):
      return None
    if len(row) < 2 or not row[0].strip() or not row[1].strip():
      raise ValueError(f'{self.csv_path}:{line}: expected "path_or_id,label", '
                       f'got {row!r}.')
    return row[0].strip(), row[1].strip(), None, None

  def collect(self, input_dir: str) -> Collected:
    paths = discover_media(input_dir)
    by_key: Dict[str, str] = {}
    by_stem: Dict[str, List[str]] = {}
    for path in paths:
      key = media_key(path, input_dir)
      by_key[key] = path
      by_stem.setdefault(key.rsplit('/', 1)[-1], []).append(path)

    rows: Dict[str, VideoItem] = {}
    missing = []
    with open(self.csv_path, newline='') as f:
      for line, row in enumerate(csv.reader(f), start=1):
        if not row or not ''.join(row).strip() or row[0].startswith('#'):
          continue
        parsed = self.parse_row(row, line)
        if parsed is None:
          continue
        name, label, start_s, end_s = parsed
        norm = name.replace('\\', '/').removeprefix('./')
        stem, ext = os.path.splitext(norm)
        norm = stem if ext.lower() in VIDEO_EXTENSIONS else norm
        path = by_key.get(norm)
        if path is None and len(by_stem.get(norm, ())) == 1:
          path = by_stem[norm][0]
        if path is None:
          reason = ('no such video under the input folder' if not by_stem.get(
              norm) else 'ambiguous: ' + ', '.join(by_stem[norm]))
          missing.append((name, f'{reason} (listed in {self.csv_path}:'
                                f'{line})'))
          continue
        item = rows.setdefault(path, VideoItem(
            path=path, key=media_key(path, input_dir), start_s=start_s,
            end_s=end_s))
        if label not in item.labels:
          item.labels = item.labels + (label,)
    items = [rows[p] for p in paths if p in rows]
    skipped = [p for p in paths if p not in rows]
    class_names = _class_names_of(l for it in items for l in it.labels)
    return Collected(items=items, class_names=class_names, missing=missing,
                     skipped=skipped)


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


def _resized_shape(height: int, width: int, short_side: Optional[int]
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
  selector = _FrameSelector(fps, start_s, end_s)
  kept, times = [], []
  rate = None
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise VideoReadError(f'{path}: no video stream.')
      stream = container.streams.video[0]
      stream.thread_type = 'AUTO'
      if stream.average_rate:
        rate = float(stream.average_rate)
      size = None
      for index, frame in enumerate(container.decode(stream)):
        t = frame.time if frame.time is not None else (
            index / rate if rate else float(index))
        if not selector.keep(t):
          if end_s is not None and t >= end_s:
            break
          continue
        if size is None:
          size = _resized_shape(frame.height, frame.width, short_side)
        rgb = frame.reformat(width=size[1], height=size[0],
                             format='rgb24').to_ndarray()
        # Without subsampling, encode now so long videos stay small in memory.
        kept.append(rgb if num_frames else tfrecord_writer.encode_jpeg(
            rgb, jpeg_quality))
        times.append(t)
  except VideoReadError:
    raise
  except (av.FFmpegError, OSError, ValueError, RuntimeError) as e:
    raise VideoReadError(f'{path}: cannot decode ({type(e).__name__}: {e}).'
                         ) from e
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


def decode_frame_folder(path: str, frame_rate: Optional[float] = None,
                        fps: Optional[float] = None,
                        short_side: Optional[int] = None,
                        num_frames: Optional[int] = None,
                        jpeg_quality: int = 90) -> DecodedVideo:
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

  Returns:
    The `DecodedVideo`.

  Raises:
    VideoReadError: naming the frame file that cannot be decoded, or when
      the folder has no frame.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  names = sorted((f for f in os.listdir(path)
                  if f.lower().endswith(IMAGE_EXTENSIONS)), key=_natural_key)
  if not names:
    raise VideoReadError(f'{path}: frame folder without images.')
  if fps is not None and frame_rate is None:
    raise VideoReadError(f'{path}: fps resampling of a frame folder needs its '
                         'frame rate (frame_folder_rate).')
  selector = _FrameSelector(fps, None, None)
  picked = [i for i in range(len(names))
            if frame_rate is None or selector.keep(i / frame_rate)]
  picked = [picked[i] for i in _subsample(len(picked), num_frames)]
  frames, size = [], None
  for i in picked:
    file = os.path.join(path, names[i])
    try:
      with open(file, 'rb') as f:
        data = f.read()
      image = Image.open(io.BytesIO(data))
      image.load()
    except (OSError, SyntaxError, ValueError) as e:
      raise VideoReadError(f'{file}: cannot decode frame image ({e}).') from e
    if size is None:
      size = _resized_shape(image.height, image.width, short_side)
    same_size = (image.height, image.width) == size
    if image.format == 'JPEG' and image.mode == 'RGB' and same_size:
      frames.append(data)
      continue
    image = image.convert('RGB')
    if not same_size:
      image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    frames.append(tfrecord_writer.encode_jpeg(np.asarray(image), jpeg_quality))
  timestamps = None
  out_rate = None
  if frame_rate is not None:
    timestamps = [int(round(i / frame_rate * 1e6)) for i in picked]
    out_rate = fps if fps is not None else frame_rate
    if num_frames and len(picked) > 1 and len(picked) < len(names) and (
        fps is None):
      out_rate = None
  return DecodedVideo(frames_jpeg=frames, timestamps_us=timestamps,
                      frame_rate=out_rate, height=size[0], width=size[1])


def _progress_iter(items: Sequence[VideoItem], enabled: bool):
  if enabled and sys.stderr.isatty():
    try:
      import tqdm  # pylint: disable=g-import-not-at-top
      return tqdm.tqdm(items, unit='video')
    except ImportError:
      pass
  return items


def convert(input_dir: str,
            output_prefix: str,
            labels_csv: Optional[str] = None,
            num_shards: int = 1,
            num_frames: Optional[int] = None,
            fps: Optional[float] = None,
            short_side: Optional[int] = None,
            jpeg_quality: int = 90,
            frame_folder_rate: Optional[float] = None,
            label_source: Optional[LabelSource] = None,
            log_every: int = 50,
            progress: bool = True) -> ConversionReport:
  """Converts the videos under `input_dir` into sharded clip TFRecords.

  Args:
    input_dir: folder of videos and/or frame folders.
    output_prefix: shards are `<output_prefix>-0000i-of-0000N.tfrecord`.
    labels_csv: a `path_or_id,label` CSV (instead of class sub-folders).
    num_shards: number of output shards.
    num_frames: keep at most this many frames per video, evenly spread.
    fps: keep at most this many frames per second.
    short_side: resize frames so their short side has this many pixels.
    jpeg_quality: JPEG quality of (re-)encoded frames.
    frame_folder_rate: frames per second of frame folders, if known.
    label_source: a `LabelSource`; overrides `labels_csv`.
    log_every: log progress every this many videos.
    progress: show a tqdm bar when tqdm is installed and stderr is a tty.

  Returns:
    A `ConversionReport`.

  Raises:
    FileNotFoundError: if `input_dir` (or `labels_csv`) does not exist.
    ValueError: if `input_dir` holds no video or frame folder.
  """
  start = time.time()
  if not os.path.isdir(input_dir):
    raise FileNotFoundError(f'Input folder {input_dir} does not exist or is '
                            'not a folder.')
  if label_source is None:
    label_source = (CsvLabels(labels_csv) if labels_csv
                    else ClassFolderLabels())
  collected = label_source.collect(input_dir)
  if not collected.items and not collected.missing:
    raise ValueError(
        f'No videos ({", ".join(VIDEO_EXTENSIONS)}) or frame folders '
        f'({", ".join(IMAGE_EXTENSIONS)} images) found under {input_dir}'
        + (f' that are listed in {labels_csv}' if labels_csv else '') + '.')
  index_of = {name: i for i, name in enumerate(collected.class_names)}
  label_map_path = None
  if collected.class_names:
    label_map_path = f'{output_prefix}_label_map.txt'
    os.makedirs(os.path.dirname(os.path.abspath(label_map_path)),
                exist_ok=True)
    with open(label_map_path, 'w') as f:
      f.write('\n'.join(collected.class_names) + '\n')

  failed = list(collected.missing)
  for name, reason in collected.missing:
    logging.warning('Missing video %s: %s', name, reason)
  total = len(collected.items)
  written = 0
  with tfrecord_writer.ShardedWriter(output_prefix, num_shards) as writer:
    for n, item in enumerate(_progress_iter(collected.items, progress), 1):
      try:
        if os.path.isdir(item.path):
          decoded = decode_frame_folder(
              item.path, frame_rate=frame_folder_rate, fps=fps,
              short_side=short_side, num_frames=num_frames,
              jpeg_quality=jpeg_quality)
        else:
          decoded = decode_video_file(
              item.path, fps=fps, short_side=short_side,
              num_frames=num_frames, start_s=item.start_s, end_s=item.end_s,
              jpeg_quality=jpeg_quality)
      except VideoReadError as e:
        failed.append((item.path, str(e)))
        logging.warning('Skipping unreadable video %s', e)
        decoded = None
      if decoded is not None:
        writer.write(tfrecord_writer.make_sequence_example(
            decoded.frames_jpeg,
            labels=[index_of[l] for l in item.labels],
            label_texts=list(item.labels),
            media_id=item.key,
            timestamps_us=decoded.timestamps_us,
            frame_rate=decoded.frame_rate,
            height=decoded.height,
            width=decoded.width))
        written += 1
      if log_every and (n % log_every == 0 or n == total):
        elapsed = max(time.time() - start, 1e-6)
        logging.info('Converted %d/%d videos (%.1f videos/s), %d failed.', n,
                     total, n / elapsed, len(failed))

  if failed:
    with open(f'{output_prefix}_failures.csv', 'w', newline='') as f:
      csv.writer(f).writerows(failed)
  report = ConversionReport(
      written=written, failed=failed, skipped=collected.skipped,
      output_paths=writer.paths, label_map_path=label_map_path,
      class_names=list(collected.class_names),
      seconds=time.time() - start)
  logging.info(report.summary())
  return report


def cli(argv: Optional[List[str]] = None) -> ConversionReport:
  """Command line; exits with status 1 when no video could be written."""
  parser = argparse.ArgumentParser(
      description='Convert videos or frame folders into clip TFRecords.')
  parser.add_argument('--input_dir', required=True)
  parser.add_argument('--output_prefix', required=True,
                      help='Shards are <prefix>-0000i-of-0000N.tfrecord.')
  parser.add_argument('--labels_csv', default=None,
                      help='CSV of path_or_id,label rows; default: labels '
                      'from class sub-folders.')
  parser.add_argument('--num_shards', type=int, default=1)
  parser.add_argument('--num_frames', type=int, default=None)
  parser.add_argument('--fps', type=float, default=None)
  parser.add_argument('--short_side', type=int, default=None)
  parser.add_argument('--jpeg_quality', type=int, default=90)
  parser.add_argument('--frame_folder_rate', type=float, default=None)
  parser.add_argument('--log_every', type=int, default=50)
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  report = convert(
      args.input_dir, args.output_prefix, labels_csv=args.labels_csv,
      num_shards=args.num_shards, num_frames=args.num_frames, fps=args.fps,
      short_side=args.short_side, jpeg_quality=args.jpeg_quality,
      frame_folder_rate=args.frame_folder_rate, log_every=args.log_every)
  print(report.summary())
  for path, reason in report.failed:
    print(f'FAILED {path}: {reason}')
  if report.written == 0:
    sys.exit(1)
  return report


if __name__ == '__main__':
  cli()
