"""Extracts per-clip and per-video features of a pretrained backbone.

  python -m official_projects_const_cl.tools.extract_features \
    --experiment=const_cl_pretrain_demo --checkpoint=/tmp/const_cl_demo \
    --input_path=videos/ --output_dir=/tmp/features --num_clips=4

--input_path: a folder of videos / frame folders (what
`tools/convert_videos.py` reads) or clip TFRecords (files / globs). Every
video gives --num_clips evenly spaced clips at the experiment's clip shape
and stride, center-cropped, embedded as the pooled --endpoint (res5_g by
default) of the backbone restored from --checkpoint
(`tasks/feature_extraction.py`). Writes to --output_dir:

  clip_features.npy   float32 [num_clips_total, C]
  video_features.npy  float32 [num_videos, C], the mean over a video's clips
  clips.csv           video_id,file,clip_index,start_frame,row
  videos.csv          video_id,file,num_clips,row
  failures.csv        file,reason (videos that could not be read)

Progress with an ETA goes to stderr. A file that cannot be read is listed
in failures.csv and skipped. Exit status: 0 when at least one video was
embedded, 1 when none was, 2 for a user error (`errors.py`).
"""

import csv
import os
import sys
import time
from typing import List, Optional, Tuple

from absl import flags
import numpy as np
import tensorflow as tf

from official_projects_const_cl import errors
from official_projects_const_cl import registry_imports  # pylint: disable=unused-import
from official_projects_const_cl.dataloaders import records
from official_projects_const_cl.dataloaders.conversion import video_sources
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import feature_extraction
from official_projects_const_cl.tasks import pretrained_model
from official_projects_const_cl.tasks import progress
from official_projects_const_cl.tools import model_flags

CLIP_FEATURES = 'clip_features.npy'
VIDEO_FEATURES = 'video_features.npy'
CLIPS_CSV = 'clips.csv'
VIDEOS_CSV = 'videos.csv'
FAILURES_CSV = 'failures.csv'


def define_flags(fv: flags.FlagValues) -> None:
  """Per-clip and per-video features of a pretrained backbone."""
  model_flags.define_pretrained_model_flags(
      fv, checkpoint_help='Pretraining model_dir or checkpoint prefix.')
  flags.DEFINE_string('input_path', None, 'A folder of videos / frame '
                      'folders, or clip TFRecords (files / globs).',
                      required=True, flag_values=fv)
  flags.DEFINE_bool('compressed', False, 'The TFRecords are GZIP files.',
                    flag_values=fv)
  flags.DEFINE_string('output_dir', None, 'Where to write the features.',
                      required=True, flag_values=fv)
  flags.DEFINE_integer('num_clips', 4, 'Evenly spaced clips per video.',
                       lower_bound=1, flag_values=fv)
  flags.DEFINE_string('endpoint', 'res5_g', 'Pooled backbone endpoint '
                      '(res5_g for clip-level use; res5_r; res5 for CVRL).',
                      flag_values=fv)
  flags.DEFINE_bool('no_progress', False, 'No progress lines.',
                    flag_values=fv)


class _Progress:
  """'[extract_features] 3 videos, 1 failed | 2.0 videos/s | ETA 4s'."""

  def __init__(self, total: Optional[int], enabled: bool):
    self._total = total
    self._enabled = enabled
    self._start = time.time()
    self.done = 0
    self.failed = 0

  def line(self) -> str:
    elapsed = time.time() - self._start
    rate = self.done / elapsed if elapsed > 0 else 0.0
    count = (f'{self.done}/{self._total} videos' if self._total else
             f'{self.done} videos')
    eta = ((self._total - self.done) / rate if rate and self._total
           else float('nan'))
    return (f'[extract_features] {count}, {self.failed} failed | '
            f'{rate:.2f} videos/s | elapsed {progress.format_seconds(elapsed)}'
            f' | ETA {progress.format_seconds(eta)}')

  def add(self, failed: bool = False) -> None:
    self.done += 1
    self.failed += int(failed)
    if self._enabled:
      sys.stderr.write(self.line() + '\n')
      sys.stderr.flush()


def _count(input_path: str, compressed: bool = False) -> Optional[int]:
  """How many videos a folder or record files hold, for the ETA.

  Records are counted by one sequential read without parsing (a small cost
  next to embedding them); None if a file cannot be read to its end (it is
  then reported by the extraction itself).
  """
  if os.path.isdir(input_path):
    return len(video_sources.discover_media(input_path))
  try:
    files = records.check_input_path(input_path)
    dataset = tf.data.TFRecordDataset(
        files, compression_type='GZIP' if compressed else None)
    return int(dataset.reduce(0, lambda n, _: n + 1))
  except (tf.errors.OpError, OSError):
    return None


def extract(embedder: feature_extraction.ClipEmbedder, input_path: str,
            compressed: bool = False, show_progress: bool = True
            ) -> Tuple[np.ndarray, np.ndarray, List[tuple], List[tuple],
                       List[Tuple[str, str]]]:
  """Embeds every video; returns features, index rows and failures."""
  clip_rows, video_rows, failures = [], [], []
  clip_features, video_features = [], []
  reporter = _Progress(_count(input_path, compressed), show_progress)
  for item in feature_extraction.iter_videos(input_path, compressed):
    if isinstance(item, tuple):  # A file that could not be read at all.
      failures.append((item[0], str(item[1])))
      reporter.add(failed=True)
      continue
    try:
      feats, starts = embedder(item.read_frames())
    except (feature_extraction.VideoFailure,
            video_sources.VideoReadError) as e:
      reason = str(e)  # The readers' messages may start with the file.
      if reason.startswith(item.file + ': '):
        reason = reason[len(item.file) + 2:]
      failures.append((item.file, reason))
      reporter.add(failed=True)
      continue
    for k, start in enumerate(starts):
      clip_rows.append((item.video_id, item.file, k, int(start),
                        len(clip_features) + k))
    clip_features.extend(feats)
    video_rows.append((item.video_id, item.file, len(starts),
                       len(video_features)))
    video_features.append(feats.mean(axis=0))
    reporter.add()
  stack = lambda rows: (np.stack(rows).astype(np.float32) if rows else
                        np.zeros([0, 0], np.float32))
  return (stack(clip_features), stack(video_features), clip_rows, video_rows,
          failures)


def _write_csv(path: str, header: Tuple[str, ...], rows: List[tuple]) -> None:
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)


def cli(argv: Optional[List[str]] = None) -> int:
  args = errors.parse_flags(define_flags, argv or [], 'extract_features')
  if not os.path.isdir(args.input_path):
    # Fails on a pattern matching nothing before any model is built.
    records.check_input_path(args.input_path)
  params = experiment_runner.experiment_config(
      args.experiment, args.params_override, mode='eval',
      config_files=args.config_file)
  model, _ = pretrained_model.build_pretrained_model(params, args.checkpoint)
  with errors.reraise_as_user_error((ValueError,)):
    embedder = feature_extraction.ClipEmbedder(
        model.backbone, pretrained_model.clip_shape(params),
        params.task.train_data.temporal_stride, args.num_clips,
        args.endpoint)
  start = time.time()
  clip_feats, video_feats, clip_rows, video_rows, failures = extract(
      embedder, args.input_path, args.compressed, not args.no_progress)
  os.makedirs(args.output_dir, exist_ok=True)
  out = lambda name: os.path.join(args.output_dir, name)
  np.save(out(CLIP_FEATURES), clip_feats)
  np.save(out(VIDEO_FEATURES), video_feats)
  _write_csv(out(CLIPS_CSV), ('video_id', 'file', 'clip_index',
                              'start_frame', 'row'), clip_rows)
  _write_csv(out(VIDEOS_CSV), ('video_id', 'file', 'num_clips', 'row'),
             video_rows)
  _write_csv(out(FAILURES_CSV), ('file', 'reason'), failures)
  print(f'Embedded {len(video_rows)} videos ({len(clip_rows)} clips, '
        f'{clip_feats.shape[-1] if clip_feats.size else 0}-d {args.endpoint})'
        f' in {time.time() - start:.1f}s to {args.output_dir}; '
        f'{len(failures)} failed ({FAILURES_CSV}).', flush=True)
  for file, reason in failures[:20]:
    print(f'  {file}: {reason}')
  if len(failures) > 20:
    print(f'  ... {len(failures) - 20} more in {FAILURES_CSV}')
  return errors.EXIT_OK if video_rows else errors.EXIT_FAILURE


def main(argv: Optional[List[str]] = None) -> None:
  """Console-script entry point (exit status 0 / 1 / 2)."""
  errors.run_main(cli, argv)


if __name__ == '__main__':
  main()
