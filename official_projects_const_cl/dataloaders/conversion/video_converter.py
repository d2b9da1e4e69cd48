"""Writes the clip TFRecords of a folder of videos (paper §4.1 inputs).

One SequenceExample per video (JPEG frames, labels, media id, timestamps),
sharded, plus the label map and a CSV naming every video that could not be
read or is missing. Record layout: docs/datasets.md.
"""

import csv
import dataclasses
import os
import sys
import time
from typing import List, Optional, Sequence, Tuple

from absl import logging

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders.conversion import tfrecord_writer
from official_projects_const_cl.dataloaders.conversion import video_labels
from official_projects_const_cl.dataloaders.conversion import video_sources


class MissingVideosError(errors.UserError, ValueError):
  """Videos named by a label source's lists are not under the input folder.

  Attributes:
    missing: (name, reason) of every missing video.
    failures_csv: the CSV naming them all.
  """

  def __init__(self, message: str, missing: List[Tuple[str, str]],
               failures_csv: str):
    super().__init__(message)
    self.missing = missing
    self.failures_csv = failures_csv


@dataclasses.dataclass
class ConversionReport:
  """Result of `convert`.

  Attributes:
    written: number of videos written.
    failed: (path or name, reason) of every video not written: the missing
      ones first, then the unreadable ones.
    missing: (name, reason) of the videos the labels list but that are not
      under the input folder (also in `failed`).
    skipped: media found but not listed by the label source.
    output_paths: the shard files.
    label_map_path: the label map file (None when there are no labels).
    class_names: the label map.
    seconds: wall time.
  """
  written: int
  failed: List[Tuple[str, str]]
  missing: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  skipped: List[str] = dataclasses.field(default_factory=list)
  output_paths: List[str] = dataclasses.field(default_factory=list)
  label_map_path: Optional[str] = None
  class_names: List[str] = dataclasses.field(default_factory=list)
  seconds: float = 0.0

  @property
  def total(self) -> int:
    """Videos that were to be converted (written + failed)."""
    return self.written + len(self.failed)

  def summary(self) -> str:
    text = (f'Converted {self.written} of {self.total} videos to '
            f'{len(self.output_paths)} shards in {self.seconds:.1f}s; '
            f'{len(self.failed)} failed')
    if self.missing:
      text += f' ({len(self.missing)} listed but missing from the input)'
    if self.skipped:
      text += f', {len(self.skipped)} skipped (not in the labels)'
    if self.failed:
      text += ': ' + ', '.join(os.path.basename(p) for p, _ in self.failed[:10])
      if len(self.failed) > 10:
        text += ', ...'
    return text + '.'


def _progress_iter(items: Sequence[video_labels.VideoItem], enabled: bool):
  if enabled and sys.stderr.isatty():
    try:
      import tqdm  # pylint: disable=g-import-not-at-top
      return tqdm.tqdm(items, unit='video')
    except ImportError:
      pass
  return items


_MAX_LOGGED_MISSING = 20
MAX_PRINTED_FAILURES = 100


FAILURES_HEADER = ('video', 'reason')


def _write_failures(path: str, failed: List[Tuple[str, str]]):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(FAILURES_HEADER)
    writer.writerows(failed)


def convert(input_dir: str,
            output_prefix: str,
            labels_csv: Optional[str] = None,
            num_shards: int = 1,
            num_frames: Optional[int] = None,
            fps: Optional[float] = None,
            short_side: Optional[int] = None,
            jpeg_quality: int = 90,
            frame_folder_rate: Optional[float] = None,
            label_source: Optional[video_labels.LabelSource] = None,
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
    MissingVideosError: if videos that the label source lists are missing
      and it does not `allow_missing`; nothing is converted, and
      `<output_prefix>_failures.csv` names them all.
  """
  start = time.time()
  if not os.path.isdir(input_dir):
    raise FileNotFoundError(f'Input folder {input_dir} does not exist or is '
                            'not a folder.')
  if label_source is None:
    label_source = (video_labels.CsvLabels(labels_csv) if labels_csv
                    else video_labels.ClassFolderLabels())
  collected = label_source.collect(input_dir)
  if not collected.items and not collected.missing:
    raise ValueError(
        f'No videos ({", ".join(video_sources.VIDEO_EXTENSIONS)}) or frame '
        f'folders ({", ".join(video_sources.IMAGE_EXTENSIONS)} images) found '
        f'under {input_dir}'
        + (f' that are listed in {labels_csv}' if labels_csv else '') + '.')
  failures_csv = f'{output_prefix}_failures.csv'
  missing = list(collected.missing)
  if missing:
    _write_failures(failures_csv, missing)
    for name, reason in missing[:_MAX_LOGGED_MISSING]:
      logging.warning('Missing video %s: %s', name, reason)
    listed = len(collected.items) + len(missing)
    message = (f'{len(missing)} of the {listed} videos listed by '
               f'{label_source.describe()} are missing under {input_dir}: '
               + ', '.join(name for name, _ in missing[:_MAX_LOGGED_MISSING])
               + (', ...' if len(missing) > _MAX_LOGGED_MISSING else '')
               + f'; {failures_csv} names them all.')
    if not label_source.allow_missing:
      raise MissingVideosError(
          message + ' Nothing was converted: fix --input_dir, or pass '
          '--allow_missing (allow_missing=True) to convert the others.',
          missing, failures_csv)
    logging.warning('%s Converting the other %d.', message,
                    len(collected.items))
  index_of = {name: i for i, name in enumerate(collected.class_names)}
  label_map_path = None
  if collected.class_names:
    label_map_path = f'{output_prefix}_label_map.txt'
    os.makedirs(os.path.dirname(os.path.abspath(label_map_path)),
                exist_ok=True)
    with open(label_map_path, 'w') as f:
      f.write('\n'.join(collected.class_names) + '\n')

  failed = list(missing)
  total = len(collected.items)
  written = 0
  with tfrecord_writer.ShardedWriter(output_prefix, num_shards) as writer:
    for n, item in enumerate(_progress_iter(collected.items, progress), 1):
      try:
        if os.path.isdir(item.path):
          decoded = video_sources.decode_frame_folder(
              item.path, frame_rate=frame_folder_rate, fps=fps,
              short_side=short_side, num_frames=num_frames,
              jpeg_quality=jpeg_quality, start_s=item.start_s,
              end_s=item.end_s)
        else:
          decoded = video_sources.decode_video_file(
              item.path, fps=fps, short_side=short_side,
              num_frames=num_frames, start_s=item.start_s, end_s=item.end_s,
              jpeg_quality=jpeg_quality)
      except video_sources.VideoReadError as e:
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
        logging.info('Read %d of %d videos (%.1f videos/s): %d converted, '
                     '%d failed.', n, total, n / elapsed, written,
                     n - written)

  if failed:
    _write_failures(failures_csv, failed)
  elif os.path.isfile(failures_csv):
    os.remove(failures_csv)  # From an earlier run; this one has none.
  report = ConversionReport(
      written=written, failed=failed, missing=missing,
      skipped=collected.skipped,
      output_paths=writer.paths, label_map_path=label_map_path,
      class_names=list(collected.class_names),
      seconds=time.time() - start)
  logging.info(report.summary())
  return report
