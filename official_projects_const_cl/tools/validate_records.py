"""Checks clip / keyframe TFRecords before training on them.

  python -m official_projects_const_cl.tools.validate_records \
      --input_path='/data/records/train-*' --num_classes=400 \
      --output_csv=/data/records/train_problems.csv

Scans every matched file in parallel (threads, `--num_workers`), with a
progress line (files and MB done of the total, records/s, ETA), and checks
what the input pipelines will need:

* the file: gzip-compressed or not as `--compressed` says, a TFRecord file
  (first record header), and no damaged data further in (the record after
  which it is damaged is named);
* every record: a `tf.train.SequenceExample`; frames under `--image_key`
  (at least one, one JPEG each, every frame decoded with TensorFlow's
  decoder as training does, all of one size); labels under `--label_key`
  (>= 0, < `--num_classes` if given; `--require_labels` for recognition);
  per-frame boxes `region/bbox/*` (all four lists, one entry per frame, the
  same number of boxes, normalized, ymin <= ymax and xmin <= xmax);
* keyframe records (`convert_ava.py`, with `clip/keyframe/index`): the
  keyframe inside the stored frames, person boxes and detections as above,
  action ids in [1, `--num_classes`] and label-to-box indices.

Every problem is a row `file,record,key,problem` of `--output_csv` (header
first; `record` is empty for a problem of the whole file). Exit status: 0
clean, 1 problems found, 2 user error (e.g. nothing matches --input_path).
Training skips bad videos within its budget (`max_bad_videos`); this tool
lists them all, with every other problem, before a run starts.
"""

import concurrent.futures
import csv
import dataclasses
import os
import re
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from google.protobuf import message as protobuf_message
from absl import flags
import tensorflow as tf

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.dataloaders import frames as frames_lib
from official_projects_const_cl.dataloaders import records

CSV_HEADER = ('file', 'record', 'key', 'problem')
_EXAMPLES_PER_PROBLEM = 3  # Box problems of a record listed by example.


@dataclasses.dataclass
class Options:
  """What to check (see the module doc)."""
  image_key: str = features.IMAGE_KEY
  label_key: str = features.LABEL_KEY
  num_classes: Optional[int] = None
  require_labels: bool = False
  compressed: bool = False


Problem = Tuple[str, Optional[int], str, str]  # file, record, key, problem


def _floats(lists: Any, key: str) -> Optional[List[List[float]]]:
  if key not in lists:
    return None
  return [list(f.float_list.value) for f in lists[key].feature]


def box_problems(boxes: Sequence[Sequence[float]], where: Sequence[str]
                 ) -> List[str]:
  """Problems of (ymin, xmin, ymax, xmax) boxes; `where` names each."""
  found = []
  for (ymin, xmin, ymax, xmax), name in zip(boxes, where):
    values = (ymin, xmin, ymax, xmax)
    if any(not 0.0 <= v <= 1.0 for v in values):
      found.append(f'{name}: {list(values)} not normalized to [0, 1]')
    elif ymin > ymax or xmin > xmax:
      found.append(f'{name}: {list(values)} has ymin > ymax or xmin > xmax')
  return found


def _summarize(key: str, found: List[str]) -> List[Tuple[str, str]]:
  if not found:
    return []
  shown = '; '.join(found[:_EXAMPLES_PER_PROBLEM])
  more = len(found) - _EXAMPLES_PER_PROBLEM
  return [(key, f'{len(found)} bad boxes: {shown}' +
           (f'; ... {more} more' if more > 0 else ''))]


def _frames_text(indices: Sequence[int]) -> str:
  shown = ', '.join(str(t) for t in indices[:10])
  more = f', ... ({len(indices)} frames)' if len(indices) > 10 else ''
  return f'frame{"s" if len(indices) > 1 else ""} {shown}{more}'


def frame_problems(frames: List[bytes], key: str) -> List[Tuple[str, str]]:
  """Unreadable frames (grouped by reason) and mixed sizes of one video."""
  if not frames:
    return [(key, 'no frames (key missing or video empty): training skips '
             'this video')]
  reasons: Dict[str, List[int]] = {}
  readable = frames_lib.readable_jpeg(tf.constant(frames)).numpy()
  sizes: Dict[Tuple[int, int], List[int]] = {}
  for t, (frame, ok) in enumerate(zip(frames, readable)):
    if not ok:
      reasons.setdefault('not a complete JPEG (start or end marker missing: '
                         'garbage or truncated)', []).append(t)
      continue
    try:
      shape = tf.io.decode_jpeg(frame, channels=3).shape
    except tf.errors.InvalidArgumentError as e:
      first = re.sub(r'\{\{.*?\}\}\s*', '', e.message).strip()
      first = first.splitlines()[0][:120] if first else 'no message'
      reasons.setdefault(f'the JPEG decoder rejects it ({first})',
                         []).append(t)
      continue
    sizes.setdefault((shape[0], shape[1]), []).append(t)
  found = [(key, f'{_frames_text(ts)}: {reason}')
           for reason, ts in reasons.items()]
  if not sizes:
    found.append((key, 'no readable frame: training skips this video'))
  elif reasons:
    found.append((key, f'{len(frames) - sum(map(len, sizes.values()))} of '
                  f'{len(frames)} frames unreadable: training replaces them '
                  'by the nearest readable frame'))
  if len(sizes) > 1:
    listed = ', '.join(f'{h}x{w} ({_frames_text(ts)})'
                       for (h, w), ts in sorted(sizes.items()))
    found.append((key, f'frames of different sizes: {listed} (training '
                  'resizes them to the first readable frame)'))
  return found


def clip_problems(seq: tf.train.SequenceExample, opts: Options
                  ) -> List[Tuple[str, str]]:
  """(key, problem) of one clip or keyframe SequenceExample."""
  lists = seq.feature_lists.feature_list
  context = seq.context.feature
  found = []
  frames = []
  if opts.image_key in lists:
    for t, f in enumerate(lists[opts.image_key].feature):
      if len(f.bytes_list.value) != 1:
        found.append((opts.image_key, f'frame {t}: {len(f.bytes_list.value)}'
                      ' byte strings instead of one JPEG'))
      frames.append(f.bytes_list.value[0] if f.bytes_list.value else b'')
  found += frame_problems(frames, opts.image_key)
  if features.KEYFRAME_INDEX_KEY in context:
    return found + keyframe_problems(context, len(frames), opts)
  labels = list(context[opts.label_key].int64_list.value) if (
      opts.label_key in context) else []
  if opts.require_labels and not labels:
    found.append((opts.label_key, 'no class label'))
  for label in labels:
    if label < 0 or (opts.num_classes and label >= opts.num_classes):
      found.append((opts.label_key, f'label {label} outside [0, '
                    f'{opts.num_classes or "inf"})'))
  coords = [_floats(lists, k) for k in features.BBOX_KEYS]
  if any(c is not None for c in coords):
    lengths = ['missing' if c is None else str(len(c)) for c in coords]
    bad_lists = any(n != str(len(frames)) for n in lengths)
    if bad_lists:
      listed = ', '.join(f'{k.rsplit("/", 1)[1]} {n}'
                         for k, n in zip(features.BBOX_KEYS, lengths))
      found.append(('region/bbox', f'the box lists ({listed}) do not have '
                    f'one entry per frame of {opts.image_key} ({len(frames)})'))
    else:
      boxes, where = [], []
      for t in range(len(frames)):
        counts = {len(c[t]) for c in coords}
        if len(counts) > 1:
          found.append((features.BBOX_KEYS[0], f'frame {t}: the four '
                        'region/bbox lists hold different numbers of boxes'))
          continue
        for i in range(len(coords[0][t])):
          boxes.append([c[t][i] for c in coords])
          where.append(f'frame {t} box {i}')
      found += _summarize('region/bbox', box_problems(boxes, where))
  return found


def keyframe_problems(context: Any, num_frames: int, opts: Options
                      ) -> List[Tuple[str, str]]:
  """(key, problem) of the keyframe context of a `convert_ava` record."""
  found = []
  get = lambda k, kind: list(getattr(context[k], kind).value) if (
      k in context) else []
  index = get(features.KEYFRAME_INDEX_KEY, 'int64_list')
  if len(index) != 1 or not 0 <= index[0] < max(num_frames, 1):
    found.append((features.KEYFRAME_INDEX_KEY, f'{index} is not one index '
                  f'inside the {num_frames} stored frames'))
  for keys, what in ((features.GT_BBOX_KEYS, 'person box'),
                     (features.DET_BBOX_KEYS, 'detection')):
    coords = [get(k, 'float_list') for k in keys]
    if len({len(c) for c in coords}) > 1:
      found.append((keys[0], f'the four {what} lists differ in length'))
      continue
    boxes = list(zip(*coords))
    found += _summarize(keys[0].rsplit('/', 1)[0], box_problems(
        boxes, [f'{what} {i}' for i in range(len(boxes))]))
  num_boxes = len(get(features.GT_BBOX_KEYS[0], 'float_list'))
  ids = get(features.GT_LABEL_KEY, 'int64_list')
  box_index = get(features.GT_LABEL_BOX_KEY, 'int64_list')
  if len(ids) != len(box_index):
    found.append((features.GT_LABEL_BOX_KEY, f'{len(box_index)} entries for '
                  f'{len(ids)} action labels'))
  bad_ids = [i for i in ids if i < 1 or (opts.num_classes and
                                         i > opts.num_classes)]
  if bad_ids:
    found.append((features.GT_LABEL_KEY, f'action ids {bad_ids} outside '
                  f'[1, {opts.num_classes or "inf"}]'))
  if any(not 0 <= b < num_boxes for b in box_index):
    found.append((features.GT_LABEL_BOX_KEY, 'refers to a person box that '
                  f'does not exist ({num_boxes} boxes)'))
  scores = get(features.DET_SCORE_KEY, 'float_list')
  if len(scores) != len(get(features.DET_BBOX_KEYS[0], 'float_list')):
    found.append((features.DET_SCORE_KEY, 'not one score per detection'))
  return found


class Progress:
  """Thread-safe progress line: files, MB, records/s, ETA (to stderr)."""

  def __init__(self, total_files: int, total_bytes: int, enabled: bool):
    self.total_files, self.total_bytes = total_files, max(total_bytes, 1)
    self.files = self.bytes = self.records = 0
    self.start = time.time()
    self.enabled = enabled
    self._tty = sys.stderr.isatty()
    self._last = 0.0
    self._lock = threading.Lock()

  def add(self, num_bytes: int = 0, num_records: int = 0,
          files: int = 0) -> None:
    with self._lock:
      self.bytes += num_bytes
      self.records += num_records
      self.files += files
      now = time.time()
      if self.enabled and (files or now - self._last >= (
          0.5 if self._tty else 10.0)):
        self._last = now
        self._show(now)

  def line(self, now: Optional[float] = None) -> str:
    elapsed = max((now or time.time()) - self.start, 1e-6)
    done = min(self.bytes / self.total_bytes, 1.0)
    eta = elapsed * (1 - done) / done if done > 0 else float('nan')
    bar = '#' * int(20 * done) + '.' * (20 - int(20 * done))
    eta_text = (time.strftime('%H:%M:%S', time.gmtime(eta))
                if eta == eta else '?')
    return (f'[{bar}] {self.files}/{self.total_files} files, '
            f'{self.bytes / 1e6:.1f}/{self.total_bytes / 1e6:.1f} MB, '
            f'{self.records} records ({self.records / elapsed:.1f}/s), '
            f'ETA {eta_text}')

  def _show(self, now: float) -> None:
    end = '\r' if self._tty and self.files < self.total_files else '\n'
    sys.stderr.write(self.line(now) + end)
    sys.stderr.flush()

  def finish(self) -> None:
    if self.enabled and self._tty:
      sys.stderr.write('\n')


def check_file(path: str, opts: Options,
               progress: Optional[Progress] = None) -> List[Problem]:
  """Every problem of one file (module doc)."""
  header = records.file_problem(path, opts.compressed)
  if header:
    if progress:
      progress.add(num_bytes=tf.io.gfile.stat(path).length, files=1)
    return [(path, None, '', header)]
  found: List[Problem] = []
  index = -1
  dataset = tf.data.TFRecordDataset(
      path, compression_type='GZIP' if opts.compressed else None)
  iterator = iter(dataset.as_numpy_iterator())
  while True:
    try:
      raw = next(iterator)
    except StopIteration:
      break
    except tf.errors.DataLossError as e:
      after = f'after record {index}' if index >= 0 else 'in its first record'
      found.append((path, None, '', f'damaged TFRecord data {after} '
                    f'({e.message.splitlines()[0]}); later records are lost'))
      break
    index += 1
    try:
      seq = tf.train.SequenceExample.FromString(raw)
    except protobuf_message.DecodeError as e:
      found.append((path, index, '', f'not a tf.train.SequenceExample ({e})'))
    else:
      found += [(path, index, k, p) for k, p in clip_problems(seq, opts)]
    if progress:
      progress.add(num_bytes=len(raw) + 16, num_records=1)
  if progress:
    progress.add(files=1)
  return found


def validate(input_path: str, opts: Options, num_workers: int = 8,
             show_progress: bool = True) -> Tuple[List[Problem], Progress]:
  """Checks every file matched by `input_path`; returns (problems, counts).

  Raises:
    records.InputPathError: `input_path` matches no file.
  """
  files = records.check_input_path(input_path)
  sizes = [tf.io.gfile.stat(f).length for f in files]
  progress = Progress(len(files), sum(sizes), show_progress)
  with concurrent.futures.ThreadPoolExecutor(max(num_workers, 1)) as pool:
    results = list(pool.map(lambda f: check_file(f, opts, progress), files))
  progress.finish()
  return [p for found in results for p in found], progress


def write_csv(path: str, problems: Sequence[Problem]) -> None:
  directory = os.path.dirname(os.path.abspath(path))
  tf.io.gfile.makedirs(directory)
  with tf.io.gfile.GFile(path, 'w') as f:
    writer = csv.writer(f)
    writer.writerow(CSV_HEADER)
    for file, index, key, problem in problems:
      writer.writerow((file, '' if index is None else index, key, problem))


def define_flags(fv: flags.FlagValues) -> None:
  """Check clip / keyframe TFRecords and list every problem in a CSV."""
  flags.DEFINE_string('input_path', None, 'Files or glob patterns, '
                      'comma-separated.', required=True, flag_values=fv)
  flags.DEFINE_string('output_csv', 'record_problems.csv', 'The problems.',
                      flag_values=fv)
  flags.DEFINE_integer('num_classes', None, 'Labels must lie in [0, N) '
                       '(keyframe action ids in [1, N]).', flag_values=fv)
  flags.DEFINE_bool('require_labels', False, 'Every clip needs a class label '
                    '(recognition).', flag_values=fv)
  flags.DEFINE_bool('compressed', False, 'The files are GZIP TFRecords '
                    '(compressed_input).', flag_values=fv)
  flags.DEFINE_string('image_key', features.IMAGE_KEY, 'Frames feature list.',
                      flag_values=fv)
  flags.DEFINE_string('label_key', features.LABEL_KEY, 'Label feature.',
                      flag_values=fv)
  flags.DEFINE_integer('num_workers', min(16, os.cpu_count() or 1),
                       'Files checked in parallel.', flag_values=fv)
  flags.DEFINE_bool('no_progress', False, 'No progress lines.',
                    flag_values=fv)


def cli(argv: Optional[List[str]] = None) -> int:
  """Command line; returns the exit status (0 clean, 1 problems)."""
  args = errors.parse_flags(define_flags, argv or [], 'validate_records')
  if args.num_classes is not None and args.num_classes < 1:
    errors.usage_error(f'--num_classes must be >= 1, got {args.num_classes}.')
  opts = Options(image_key=args.image_key, label_key=args.label_key,
                 num_classes=args.num_classes,
                 require_labels=args.require_labels,
                 compressed=args.compressed)
  problems, progress = validate(args.input_path, opts, args.num_workers,
                                not args.no_progress)
  write_csv(args.output_csv, problems)
  bad_records = len({(f, i) for f, i, _, _ in problems if i is not None})
  bad_files = len({f for f, i, _, _ in problems if i is None})
  print(f'Checked {progress.records} records in {progress.files} files '
        f'({progress.bytes / 1e6:.1f} MB) in '
        f'{time.time() - progress.start:.1f}s: {len(problems)} problems '
        f'({bad_records} records, {bad_files} whole files); '
        f'{args.output_csv} lists them.')
  for file, index, key, problem in problems[:20]:
    where = file if index is None else f'{file} record {index}'
    print(f'  {where}: {key + ": " if key else ""}{problem}')
  if len(problems) > 20:
    print(f'  ... {len(problems) - 20} more in {args.output_csv}')
  return errors.EXIT_FAILURE if problems else errors.EXIT_OK


def main(argv: Optional[List[str]] = None) -> None:
  """Console-script entry point (exit status 0 / 1 / 2)."""
  errors.run_main(cli, argv)


if __name__ == '__main__':
  main()
