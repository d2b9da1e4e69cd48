"""AVA v2.2 / AVA-Kinetics keyframe labels -> keyframe TFRecords (supp. §3.2).

Reads the annotation CSVs (`ava_annotations`), finds each keyframe's frames
(`ava_sources`), writes one record per keyframe (`ava_records`) and reports
every row or keyframe it could not use. Inputs and output layout:
docs/datasets.md (AVA).
"""

import collections
import contextlib
import csv
import dataclasses
import glob
import math
import os
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from official_projects_const_cl.dataloaders import ava_io
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.dataloaders.conversion import ava_annotations
from official_projects_const_cl.dataloaders.conversion import ava_records
from official_projects_const_cl.dataloaders.conversion import ava_sources
from official_projects_const_cl.dataloaders.conversion import tfrecord_writer
from official_projects_const_cl.dataloaders.conversion import video_sources


DEFAULT_FPS = 30.0
DEFAULT_NUM_FRAMES = 32
DEFAULT_FRAME_STRIDE = 2
DEFAULT_FRAME_PATTERN = '{name}_{index:06d}.jpg'
DEFAULT_BOX_TOLERANCE = 0.01
DEFAULT_SEEK_GAP_S = 5.0
DEFAULT_LOG_EVERY = 500
BAD_ROWS_SUFFIX = '_bad_rows.csv'


@dataclasses.dataclass
class AvaConversionReport:
  """Result of `convert_ava`.

  Attributes:
    keyframes_written: examples written (one per keyframe).
    videos_written: videos with at least one keyframe written.
    boxes: ground-truth person boxes written.
    labels: (box, action) labels written.
    detections: detected boxes written.
    rows_read: well-formed rows of the annotations CSV (label-map drops and
      duplicate labels included).
    rows_skipped: rows not used, by reason (bad rows and counted drops).
    keyframes_skipped: keyframes not written, by reason.
    bad_rows: (file, line, 'reason: detail') of every bad row and of every
      row of a skipped keyframe (excluded ones and label-map drops aside).
    bad_rows_csv: the CSV of `bad_rows`, None when there are none.
    output_paths: the shard files.
    seconds: wall time.
  """
  keyframes_written: int = 0
  videos_written: int = 0
  boxes: int = 0
  labels: int = 0
  detections: int = 0
  rows_read: int = 0
  rows_skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
  keyframes_skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
  bad_rows: List[Tuple[str, int, str]] = dataclasses.field(
      default_factory=list)
  bad_rows_csv: Optional[str] = None
  output_paths: List[str] = dataclasses.field(default_factory=list)
  seconds: float = 0.0

  def summary(self) -> str:
    def counts(d):
      return ', '.join(f'{k} {v}' for k, v in sorted(d.items())) or 'none'
    text = (f'Wrote {self.keyframes_written} keyframes of '
            f'{self.videos_written} videos ({self.boxes} boxes, {self.labels} '
            f'labels, {self.detections} detections) to '
            f'{len(self.output_paths)} shards in {self.seconds:.1f}s. '
            f'Keyframes skipped: {counts(self.keyframes_skipped)}. '
            f'Rows skipped: {counts(self.rows_skipped)}.')
    if self.bad_rows_csv:
      text += f' {len(self.bad_rows)} bad rows listed in {self.bad_rows_csv}.'
    return text


class _Converter:
  """Turns the keyframes of each source into written examples."""

  def __init__(self, writer: tfrecord_writer.ShardedWriter,
               tally: ava_annotations.Tally, report: AvaConversionReport,
               total: int, num_frames: int, stride: int, fps: float,
               short_side: Optional[int], jpeg_quality: int, seek_gap_s: float,
               log_every: int):
    self.writer, self.tally, self.report = writer, tally, report
    self.total, self.num_frames, self.stride = total, num_frames, stride
    self.fps, self.short_side = fps, short_side
    self.jpeg_quality, self.seek_gap_s = jpeg_quality, seek_gap_s
    self.log_every = log_every
    self.done = 0
    self.start = time.time()
    self.videos = set()

  def _progress(self):
    self.done += 1
    if self.log_every and (self.done % self.log_every == 0
                           or self.done == self.total):
      elapsed = max(time.time() - self.start, 1e-6)
      logging.info('Read %d of %d keyframes (%.1f keyframes/s): %d written, '
                   '%d skipped.', self.done, self.total, self.done / elapsed,
                   self.report.keyframes_written,
                   self.done - self.report.keyframes_written)

  def skip(self, keyframe: ava_annotations.Keyframe, reason: str, detail: str):
    self.tally.bad_keyframe(keyframe, reason, detail)
    self._progress()

  def emit(self, keyframe: ava_annotations.Keyframe, frames: List[bytes],
           fps: float, size: Tuple[int, int]):
    self.writer.write(ava_records.make_keyframe_example(
        keyframe.video_id, keyframe.timestamp, frames, self.num_frames // 2,
        self.stride, fps, size[0], size[1], keyframe.boxes,
        keyframe.detections))
    report = self.report
    report.keyframes_written += 1
    report.boxes += len(keyframe.boxes)
    report.labels += sum(len(b.actions) for b in keyframe.boxes)
    report.detections += len(keyframe.detections)
    self.videos.add(keyframe.video_id)
    self._progress()

  def _keyframe_frame(self, source: ava_sources.Source,
                      keyframe: ava_annotations.Keyframe, fps: float) -> int:
    return ava_sources.round_half_up(
        (keyframe.timestamp - source.offset_s) * fps)

  def _outside(self, source: ava_sources.Source,
               keyframe: ava_annotations.Keyframe, k: int, fps: float,
               length: str):
    self.skip(keyframe, 'keyframe_outside_video',
              f'{keyframe.timestamp} s is frame {k} of {source.location} '
              f'({fps:g} fps, first frame at {source.offset_s:g} s), which '
              f'{length}')

  def indexed(self, source: ava_sources.Source,
              keyframes: List[ava_annotations.Keyframe], num_source_frames: int,
              fps: float, load: Callable[[int], Tuple[bytes, str]]):
    """Keyframes of a source whose frames are read by index (folder, record).

    `load(i)` returns (encoded frame i, where it is) or raises
    `VideoReadError`. Frames are cached while consecutive keyframes' clips
    overlap, so each is read and checked once.
    """
    cache: Dict[int, bytes] = {}
    size = None
    for keyframe in sorted(keyframes, key=lambda kf: kf.timestamp):
      k = self._keyframe_frame(source, keyframe, fps)
      if not 0 <= k < num_source_frames:
        self._outside(source, keyframe, k, fps,
                      f'has frames 0 to {num_source_frames - 1}')
        continue
      indices = ava_sources.clip_frame_indices(k, self.num_frames, self.stride,
                                   num_source_frames)
      for i in [i for i in cache if i < indices[0]]:
        del cache[i]
      try:
        for i in indices:
          if i not in cache:
            data, where = load(i)
            cache[i], size = video_sources.load_frame_image(
                data, where, short_side=self.short_side, size=size,
                jpeg_quality=self.jpeg_quality)
      except video_sources.VideoReadError as e:
        self.skip(keyframe, 'unreadable_frame', str(e))
        continue
      self.emit(keyframe, [cache[i] for i in indices], fps, size)

  def frame_folder(self, source: ava_sources.Source,
                   keyframes: List[ava_annotations.Keyframe], pattern: str,
                   start_index: int):
    num = sum(1 for f in os.listdir(source.location)
              if f.lower().endswith(video_sources.IMAGE_EXTENSIONS))

    def load(i):
      file = os.path.join(source.location, pattern.format(
          name=source.name, index=i + start_index))
      try:
        with open(file, 'rb') as f:
          return f.read(), file
      except OSError as e:
        raise video_sources.VideoReadError(
            f'{file}: cannot read frame {i} ({e.strerror or e}; frame_pattern '
            f'{pattern!r}, first index {start_index}).') from e

    self.indexed(source, keyframes, num, self.fps, load)

  def record(self, source: ava_sources.Source,
             keyframes: List[ava_annotations.Keyframe], raw: bytes):
    example = tf.train.SequenceExample.FromString(raw)
    frames = [f.bytes_list.value[0] if f.bytes_list.value else b'' for f in
              example.feature_lists.feature_list[features.IMAGE_KEY].feature]
    context = example.context.feature
    fps = None
    if features.FRAME_RATE_KEY in context and context[
        features.FRAME_RATE_KEY].float_list.value:
      fps = float(context[features.FRAME_RATE_KEY].float_list.value[0])
    if not fps:
      stamps = [f.int64_list.value[0] for f in example.feature_lists
                .feature_list[features.TIMESTAMP_KEY].feature
                if f.int64_list.value]
      steps = np.diff(stamps)
      if len(stamps) == len(frames) and steps.size and np.all(steps > 0):
        fps = 1e6 / float(np.median(steps))
    where = f'{source.location} record {source.position} ({source.name})'
    if not fps or not frames:
      for keyframe in keyframes:
        self.skip(keyframe, 'unreadable_video',
                  f'{where}: ' + ('no frames' if not frames else
                                  f'no {features.FRAME_RATE_KEY} and no '
                                  f'{features.TIMESTAMP_KEY}'))
      return

    def load(i):
      return frames[i], f'{where} frame {i}'

    self.indexed(source, keyframes, len(frames), fps, load)

  def video(self, source: ava_sources.Source,
            keyframes: List[ava_annotations.Keyframe]):
    """Keyframes of a video file: one decoding pass per run of keyframes."""
    items = []
    for keyframe in sorted(keyframes, key=lambda kf: kf.timestamp):
      k = self._keyframe_frame(source, keyframe, self.fps)
      if k < 0:
        self._outside(source, keyframe, k, self.fps, 'starts at frame 0')
        continue
      items.append((k, keyframe,
                    ava_sources.clip_frame_indices(k, self.num_frames,
                                                   self.stride)))
    runs, run = [], []
    for item in items:
      if run and (item[2][0] - run[-1][2][-1]) / self.fps > self.seek_gap_s:
        runs.append(run)
        run = []
      run.append(item)
    if run:
      runs.append(run)
    for run in runs:
      self._video_run(source, run)

  def _video_run(self, source: ava_sources.Source,
                 run: List[Tuple[int, ava_annotations.Keyframe, List[int]]]):
    """Decodes from a seek to the run's first frame until its last one.

    Source frame i (time i / fps) is the decoded frame nearest to that time
    (the earlier on a tie); past the end of the video, the last frame.
    """
    fps = self.fps
    targets = sorted({i for _, _, indices in run for i in indices})
    assigned: Dict[int, bytes] = {}
    size = None
    p = q = 0  # Next target to assign, next keyframe to emit.
    prev_t = prev_prev_t = prev_frame = prev_jpeg = None

    def encode(frame):
      nonlocal size
      if size is None:
        # pylint: disable-next=protected-access
        size = video_sources.resized_shape(frame.height, frame.width,
                                             self.short_side)
      rgb = frame.reformat(width=size[1], height=size[0],
                           format='rgb24').to_ndarray()
      return tfrecord_writer.encode_jpeg(rgb, self.jpeg_quality)

    def emit_ready():
      nonlocal q
      limit = targets[p] if p < len(targets) else math.inf
      while q < len(run) and run[q][2][-1] < limit:
        _, keyframe, indices = run[q]
        self.emit(keyframe, [assigned[i] for i in indices], fps, size)
        q += 1
        if q < len(run):
          for i in [i for i in assigned if i < run[q][2][0]]:
            del assigned[i]

    try:
      with contextlib.closing(video_sources.iter_video_frames(
          source.location, start_s=targets[0] / fps)) as frames:
        for t, frame in frames:
          if prev_frame is not None:
            middle = (prev_t + t) / 2
            while p < len(targets) and targets[p] / fps <= middle + 1e-9:
              if prev_jpeg is None:
                prev_jpeg = encode(prev_frame)
              assigned[targets[p]] = prev_jpeg
              p += 1
            emit_ready()
          prev_prev_t, prev_t, prev_frame, prev_jpeg = prev_t, t, frame, None
          if p == len(targets):
            break
    except video_sources.VideoReadError as e:
      for _, keyframe, _ in run[q:]:
        self.skip(keyframe, 'unreadable_video', str(e))
      return
    if q == len(run):
      return
    if prev_frame is None:
      for _, keyframe, _ in run[q:]:
        self.skip(keyframe, 'unreadable_video',
                  f'{source.location}: no decodable frame after '
                  f'{targets[0] / fps:g} s.')
      return
    # End of the video: the remaining frames are its last one.
    end_t = prev_t + (prev_t - prev_prev_t if prev_prev_t is not None
                      else 1.0 / fps)
    last = encode(prev_frame)
    while p < len(targets):
      assigned[targets[p]] = last
      p += 1
    for k, keyframe, indices in run[q:]:
      if k / fps >= end_t - 1e-6:
        self._outside(source, keyframe, k, self.fps,
                      f'ends at {end_t:g} s (video time)')
      else:
        self.emit(keyframe, [assigned[i] for i in indices], fps, size)


def _record_media_ids(files: List[str]) -> Iterator[Tuple[str, int, str]]:
  """(file, position, media id) of every record, parsing only the id."""
  spec = {features.MEDIA_ID_KEY: tf.io.FixedLenFeature([], tf.string,
                                                       default_value='')}
  for path in files:
    dataset = tf.data.TFRecordDataset(path).map(
        lambda r: tf.io.parse_single_sequence_example(r, spec)[0][
            features.MEDIA_ID_KEY])
    for position, media in enumerate(dataset.as_numpy_iterator()):
      yield path, position, media.decode('utf-8')


def _check_file(path: Optional[str], what: str):
  if path is not None and not os.path.isfile(path):
    raise FileNotFoundError(f'{what} {path} does not exist or is not a file.')


def convert_ava(annotations: str,
                output_prefix: str,
                frames_dir: Optional[str] = None,
                videos_dir: Optional[str] = None,
                video_records: Optional[str] = None,
                label_map: Optional[str] = None,
                excluded_timestamps: Optional[str] = None,
                detections: Optional[str] = None,
                detection_keyframes: bool = True,
                fps: float = DEFAULT_FPS,
                timestamp_offset_s: float = 0.0,
                num_frames: int = DEFAULT_NUM_FRAMES,
                frame_stride: int = DEFAULT_FRAME_STRIDE,
                short_side: Optional[int] = None,
                jpeg_quality: int = 90,
                num_shards: int = 1,
                frame_pattern: str = DEFAULT_FRAME_PATTERN,
                frame_start_index: int = 1,
                box_tolerance: float = DEFAULT_BOX_TOLERANCE,
                parse_kinetics_names: bool = True,
                seek_gap_s: float = DEFAULT_SEEK_GAP_S,
                log_every: int = DEFAULT_LOG_EVERY) -> AvaConversionReport:
  """Converts AVA-style keyframe labels and their videos into TFRecords.

  Formats and the handling of bad input: docs/datasets.md (AVA).

  Args:
    annotations: the annotations CSV (`ava_train_v2.2.csv`, ...).
    output_prefix: shards are `<output_prefix>-0000i-of-0000N.tfrecord`.
    frames_dir: frame folders at `fps` (one source of the three).
    videos_dir: video files (one source of the three).
    video_records: glob of clip TFRecords (one source of the three).
    label_map: the action label map pbtxt (None keeps every action id).
    excluded_timestamps: the excluded-timestamps CSV.
    detections: a person-detection CSV.
    detection_keyframes: with `detections`, also write keyframes that have
      detections but no ground truth.
    fps: frame rate of `frames_dir`, and the rate videos are resampled to.
    timestamp_offset_s: time of a source's first frame in the CSV's clock
      (AVA 15-min segments: 900); Kinetics-named sources use their start.
    num_frames: frames per clip.
    frame_stride: source frames between stored frames.
    short_side: resize stored frames to this short side (None keeps).
    jpeg_quality: quality of (re-)encoded frames.
    num_shards: output shards.
    frame_pattern: frame file name in a frame folder; `{name}` is the
      folder's name, `{index}` the frame number.
    frame_start_index: number of the first frame file (SlowFast: 1).
    box_tolerance: coordinates at most this far outside [0, 1] are clipped;
      farther ones make the row bad.
    parse_kinetics_names: treat `<id>_<start:06d>_<end:06d>` sources as
      Kinetics clips of `<id>` starting at `start` seconds.
    seek_gap_s: videos: seek instead of decoding through gaps longer than
      this between consecutive keyframes' clips.
    log_every: log progress every this many keyframes.

  Returns:
    An `AvaConversionReport`.

  Raises:
    FileNotFoundError: naming a required input that does not exist.
    ValueError: for bad options, an unreadable label map, or an annotations
      CSV without a usable row.
  """
  start = time.time()
  sources = [(flag, value) for flag, value in (
      ('frames_dir', frames_dir), ('videos_dir', videos_dir),
      ('video_records', video_records)) if value]
  if len(sources) != 1:
    named = ', '.join(f for f, _ in sources) or 'none'
    raise ValueError('Give exactly one video source: frames_dir, videos_dir or '
                     f'video_records (got {named}).')
  if num_frames < 1 or frame_stride < 1 or not fps > 0 or box_tolerance < 0:
    raise ValueError('Need num_frames >= 1, frame_stride >= 1, fps > 0 and '
                     f'box_tolerance >= 0, got {num_frames}, {frame_stride}, '
                     f'{fps}, {box_tolerance}.')
  if not 1 <= jpeg_quality <= 100:
    raise ValueError(f'jpeg_quality must be in [1, 100], got {jpeg_quality}.')
  try:
    frame_pattern.format(name='x', index=1)
  except (KeyError, IndexError, ValueError) as e:
    raise ValueError(f'frame_pattern {frame_pattern!r} must use only {{name}} '
                     f'and {{index}} ({e}).') from e
  _check_file(annotations, 'Annotations CSV')
  _check_file(label_map, 'Label map')
  _check_file(excluded_timestamps, 'Excluded-timestamps CSV')
  _check_file(detections, 'Detections CSV')
  for path, what in ((frames_dir, 'Frames folder'),
                     (videos_dir, 'Videos folder')):
    if path and not os.path.isdir(path):
      raise FileNotFoundError(f'{what} {path} does not exist or is not a '
                              'folder.')
  record_files = sorted(glob.glob(video_records)) if video_records else []
  if video_records and not record_files:
    raise FileNotFoundError(f'No TFRecord file matches video_records '
                            f'{video_records!r}.')

  tally = ava_annotations.Tally()
  actions = ava_io.label_names(label_map) if label_map else None
  if actions is None:
    logging.warning('No label map: every action id of %s is kept.',
                    annotations)
  gt = ava_annotations.read_annotations(annotations, actions, box_tolerance,
                                        tally)
  rows_read = tally.rows_read
  excluded = (ava_annotations.read_excluded_timestamps(
      excluded_timestamps, tally) if excluded_timestamps else set())
  det = ava_annotations.read_detections(detections, box_tolerance,
                                        tally) if detections else {}

  keyframes: Dict[Tuple[str, int], ava_annotations.Keyframe] = {}
  for key, keyframe in gt.items():
    keyframes[key] = keyframe
  for key, found in det.items():
    if key in keyframes:
      keyframes[key].detections = found.detections
      keyframes[key].rows.extend(found.rows)
    elif detection_keyframes:
      keyframes[key] = found
    else:
      tally.rows_skipped['detection_without_gt_keyframe'] += len(found.rows)
  for key in [k for k in keyframes if k in excluded]:
    del keyframes[key]
    tally.keyframes_skipped['excluded_timestamp'] += 1

  # Sources.
  if frames_dir:
    index = ava_sources.SourceIndex('frame folder', timestamp_offset_s,
                         parse_kinetics_names)
    for path in video_sources.discover_media(frames_dir):
      if os.path.isdir(path):
        index.add('frames', os.path.basename(path), path)
    where = f'under {frames_dir}'
  elif videos_dir:
    index = ava_sources.SourceIndex('video file', timestamp_offset_s,
                         parse_kinetics_names)
    for path in video_sources.discover_media(videos_dir):
      if os.path.isfile(path):
        index.add('video', os.path.splitext(os.path.basename(path))[0], path)
    where = f'under {videos_dir}'
  else:
    index = ava_sources.SourceIndex('clip record', timestamp_offset_s,
                         parse_kinetics_names)
    unnamed = 0
    for path, position, media in _record_media_ids(record_files):
      if media:
        index.add('record', media, path, position)
      else:
        unnamed += 1
    if unnamed:
      logging.warning('%d records of %s have no %s and cannot be matched.',
                      unnamed, video_records, features.MEDIA_ID_KEY)
    where = f'in {video_records}'
  if not index.count:
    logging.warning('No %s found %s.', index.what, where)

  report = AvaConversionReport(rows_read=rows_read)
  bad_rows_csv = output_prefix + BAD_ROWS_SUFFIX
  with tfrecord_writer.ShardedWriter(output_prefix, num_shards) as writer:
    converter = _Converter(writer, tally, report, len(keyframes), num_frames,
                           frame_stride, fps, short_side, jpeg_quality,
                           seek_gap_s, log_every)
    by_source: Dict[ava_sources.Source,
                    List[ava_annotations.Keyframe]] = collections.defaultdict(
                        list)
    for key in sorted(keyframes):
      keyframe = keyframes[key]
      source, reason, detail = index.find(keyframe.video_id,
                                          keyframe.timestamp)
      if source is None:
        converter.skip(keyframe, reason, f'{detail} {where}')
      else:
        by_source[source].append(keyframe)
    if video_records:
      wanted = {(s.location, s.position): s for s in by_source}
      for path in record_files:
        positions = {p for loc, p in wanted if loc == path}
        if not positions:
          continue
        for position, raw in enumerate(
            tf.data.TFRecordDataset(path).as_numpy_iterator()):
          if position in positions:
            source = wanted[(path, position)]
            converter.record(source, by_source[source], raw)
    else:
      for source in sorted(by_source, key=lambda s: (s.name, s.location)):
        if source.kind == 'frames':
          converter.frame_folder(source, by_source[source], frame_pattern,
                                 frame_start_index)
        else:
          converter.video(source, by_source[source])

  report.videos_written = len(converter.videos)
  report.rows_skipped = dict(tally.rows_skipped)
  report.rows_skipped = {k: v for k, v in report.rows_skipped.items() if v}
  report.keyframes_skipped = {k: v for k, v in tally.keyframes_skipped.items()
                              if v}
  report.bad_rows = tally.bad_rows
  report.output_paths = writer.paths
  if tally.bad_rows:
    os.makedirs(os.path.dirname(os.path.abspath(bad_rows_csv)), exist_ok=True)
    with open(bad_rows_csv, 'w', newline='') as f:
      out = csv.writer(f)
      out.writerow(('file', 'line', 'reason'))
      out.writerows(tally.bad_rows)
    report.bad_rows_csv = bad_rows_csv
  elif os.path.isfile(bad_rows_csv):
    os.remove(bad_rows_csv)  # From an earlier run; this one has none.
  report.seconds = time.time() - start
  logging.info('%s', report.summary())
  return report
