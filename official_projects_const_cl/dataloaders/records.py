"""Reading TFRecord files so that every problem names its file and record.

* `matched_record_files` expands `input_path` and checks every matched file
  up front (its first bytes): a gzip file read without
  `compressed_input=true` (or the reverse), a file that is not a TFRecord
  file (random bytes, another format) or one cut inside its first record
  header stops the run naming each file, instead of TensorFlow's bare
  `DataLossError: corrupted record at 0`. Damage further inside a file
  still surfaces as a DataLossError; `tools/validate_records.py` names it.
* `dataset_fn_with_source` reads records as {'serialized', 'source',
  'record_index'}; decoders turn the last two into `location`
  ('<file> record <i>') for their messages.
* `skip_bad_videos` is the bad-video budget of the data configs
  (`RecordInputConfig` in `configs/const_cl.py`): parsers mark a video they
  cannot turn into clips with a non-empty 'problem'; it is dropped, counted
  ('skipped_videos' of a kept example, summed by the tasks' metrics: in a
  validation pass every bad video is counted) and named once in the log, and
  the run stops with an error naming it when the bad videos read exceed the
  budget. All in the graph; the counters are per input pipeline.
"""

import concurrent.futures
import gzip
import os
import struct
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import tensorflow as tf

from official_projects_const_cl import errors

UNKNOWN_SOURCE = '<unknown file>'
# The 'source' of the marker appended to a finite pass (`skip_bad_videos`).
_END_OF_DATA = '<end of data>'
GZIP_MAGIC = b'\x1f\x8b'
_MAX_LISTED_FILES = 20
_CHECK_THREADS = 16


class InputPathError(errors.UserError, FileNotFoundError):
  """`input_path` is empty, a directory, or matches no file."""


class RecordFileError(errors.UserError, ValueError):
  """A matched file is not a (readable) TFRecord file of the right kind."""


def check_input_path(pattern: str) -> List[str]:
  """Expands a comma-separated list of files / glob patterns.

  Args:
    pattern: e.g. 'data/train-*.tfrecord,extra/a.tfrecord'.

  Returns:
    The matched files, sorted and without duplicates.

  Raises:
    InputPathError (a FileNotFoundError): naming the pattern that matches no
      file, or a directory given instead of a file pattern.
  """
  if not isinstance(pattern, str) or not pattern.strip(' ,'):
    raise InputPathError(
        f'input_path is empty ({pattern!r}); give TFRecord files or a glob '
        "pattern such as '/data/train-*.tfrecord'.")
  files = []
  for part in pattern.split(','):
    part = part.strip()
    if not part:
      continue
    if tf.io.gfile.isdir(part):
      raise InputPathError(
          f'input_path {part!r} is a directory; give the TFRecord files in '
          f'it as a pattern, e.g. {os.path.join(part, "*.tfrecord")!r}.')
    matched = [f for f in tf.io.gfile.glob(part)
               if not tf.io.gfile.isdir(f)]
    if not matched:
      raise InputPathError(f'input_path pattern {part!r} matches no file.')
    files.extend(matched)
  return sorted(set(files))


def _crc32c_table() -> List[int]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    table.append(crc)
  return table


_CRC32C_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
  """The masked CRC-32C that TFRecord files store after lengths and data."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  crc ^= 0xFFFFFFFF
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record_header_problem(header: bytes) -> Optional[str]:
  """What is wrong with the first 12 bytes of a TFRecord stream, or None."""
  if not header:
    return None  # An empty file holds no record; that is valid.
  if len(header) < 12:
    return (f'is cut inside its first record header ({len(header)} bytes); '
            'not a complete TFRecord file')
  # uint64 length, then the masked CRC-32C of those 8 bytes.
  (crc,) = struct.unpack('<I', header[8:12])
  if masked_crc32c(header[:8]) != crc:
    return ('is not a TFRecord file: its first record header fails its '
            'checksum (random bytes, another format, or damaged)')
  return None


def file_problem(path: str, compressed: bool) -> Optional[str]:
  """Why `path` cannot be read as a (GZIP-compressed) TFRecord file."""
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      head = f.read(12)
      is_gzip = head[:2] == GZIP_MAGIC
      if is_gzip and not compressed:
        return ('is gzip-compressed (it starts with the gzip bytes 1f 8b); '
                'set compressed_input=true in the data config')
      if compressed and head and not is_gzip:
        return ('is not gzip-compressed, but the data config has '
                'compressed_input=true')
      if is_gzip:
        f.seek(0)
        with gzip.GzipFile(fileobj=f) as unzipped:
          head = unzipped.read(12)
  except (OSError, EOFError, tf.errors.OpError) as e:
    return f'cannot be read ({type(e).__name__}: {e})'
  return record_header_problem(head)


def check_record_files(files: Sequence[str], compressed: bool,
                       what: str = 'input_path') -> None:
  """Checks the first bytes of every file (in parallel; module doc).

  Args:
    files: the matched files.
    compressed: the data config's `compressed_input`.
    what: the config key, for the message (e.g. 'task.train_data.input_path').

  Raises:
    RecordFileError: naming every bad file (up to 20) and its problem.
  """
  with concurrent.futures.ThreadPoolExecutor(
      min(_CHECK_THREADS, max(len(files), 1))) as pool:
    problems = [(f, p) for f, p in zip(
        files, pool.map(lambda f: file_problem(f, compressed), files)) if p]
  if problems:
    listed = '\n  '.join(f'{f} {p}' for f, p in problems[:_MAX_LISTED_FILES])
    more = len(problems) - _MAX_LISTED_FILES
    raise RecordFileError(
        f'{len(problems)} of the {len(files)} files matched by {what} cannot '
        f'be read as TFRecord files:\n  {listed}' +
        (f'\n  ... and {more} more' if more > 0 else ''))


def matched_record_files(input_path: str, compressed: bool,
                         what: str = 'input_path') -> List[str]:
  """`check_input_path` then `check_record_files`; returns the files."""
  try:
    files = check_input_path(input_path)
  except InputPathError as e:
    raise InputPathError(f'{what}: {e}') from e
  check_record_files(files, compressed, what)
  return files


def dataset_fn_with_source(
    filenames: Union[str, tf.Tensor, Sequence[str]],
    compression_type: Optional[str] = None) -> tf.data.Dataset:
  """Reads TFRecords as {'serialized', 'source' (file), 'record_index'}.

  Pass as Model Garden InputReader's `dataset_fn` (it is called with one
  file name tensor, or with the list of files when there is a single file).

  Args:
    filenames: One file name (str or string tensor) or a list of them.
    compression_type: None, '' or 'GZIP' / 'ZLIB'.

  Returns:
    A dataset of dicts: scalar strings 'serialized', 'source' and int64
    'record_index' (position of the record in its file).
  """
  def read_one(filename):
    return tf.data.TFRecordDataset(
        filename, compression_type=compression_type).enumerate().map(
            lambda index, record: {'serialized': record, 'source': filename,
                                   'record_index': index})

  if isinstance(filenames, (list, tuple)):
    return tf.data.Dataset.from_tensor_slices(list(filenames)).flat_map(
        read_one)
  filenames = tf.convert_to_tensor(filenames, tf.string)
  if filenames.shape.rank == 1:
    return tf.data.Dataset.from_tensor_slices(filenames).flat_map(read_one)
  return read_one(filenames)


def split_record(serialized: Union[tf.Tensor, Dict[str, tf.Tensor]]):
  """(record, location) of a decoder input; location '<file> record <i>'."""
  if not isinstance(serialized, dict):
    return serialized, tf.constant(UNKNOWN_SOURCE)
  source = tf.convert_to_tensor(serialized['source'], tf.string)
  if 'record_index' in serialized:
    source = tf.strings.join([source, ' record ', tf.strings.as_string(
        serialized['record_index'])])
  return serialized['serialized'], source


def data_error(*parts: Union[str, tf.Tensor]) -> List[tf.Tensor]:
  """`tf.debugging.Assert` data: the tagged message the entry points print."""
  return [tf.strings.join([errors.DATA_ERROR_TAG, *parts])]


def _placeholder(spec: tf.TensorSpec) -> tf.Tensor:
  if spec.dtype == tf.string:
    return tf.fill(spec.shape, '')
  return tf.zeros(spec.shape, spec.dtype)


def skip_bad_videos(dataset: tf.data.Dataset, max_bad_videos: int,
                    max_bad_video_fraction: float,
                    what: str = 'the data config',
                    finite: bool = False) -> tf.data.Dataset:
  """Drops, counts and logs bad videos; stops beyond the budget.

  Args:
    dataset: parsed examples with string 'problem' ('' = good) and
      'source' (location) entries.
    max_bad_videos: bad videos always allowed.
    max_bad_video_fraction: beyond that, bad videos allowed as a fraction
      of the videos read.
    what: the data config's key, for the messages.
    finite: the dataset is one pass (validation). Then every good example is
      held back until the next one (or the end of the pass) arrives, so that
      the bad videos after the last good one are counted too, and a pass
      whose every video is bad stops with an error. (This needs static
      example shapes, which every parser here gives; otherwise the counts
      work as in training.)

  Returns:
    The good examples without 'problem' / 'source', each with int32
    'skipped_videos': the bad videos dropped around it (summed over a pass:
    every bad video read; in training, the ones since the previous good
    example).

  Raises:
    tf.errors.InvalidArgumentError (when run): more than
      max(max_bad_videos, max_bad_video_fraction x videos read) bad videos
      were read (names the last one, its problem and the counts), or every
      video of a finite pass is bad.
  """
  logged = tf.lookup.experimental.MutableHashTable(
      key_dtype=tf.string, value_dtype=tf.int64, default_value=0)
  budget = (f'max_bad_videos={max_bad_videos} and '
            f'max_bad_video_fraction={max_bad_video_fraction} of {what}')
  specs = dataset.element_spec
  hold = finite and all(s.shape.is_fully_defined()
                        for s in tf.nest.flatten(specs))
  if hold:
    end = tf.nest.map_structure(_placeholder, specs)
    end['source'] = tf.constant(_END_OF_DATA)
    dataset = dataset.concatenate(tf.data.Dataset.from_tensors(end))

  def count(state, example):
    reads, bad, pending = state[:3]
    example = dict(example)
    problem, source = example.pop('problem'), example.pop('source')
    is_end = (tf.equal(source, _END_OF_DATA) if hold else
              tf.constant(False))
    is_bad = tf.logical_and(tf.logical_not(is_end),
                            tf.strings.length(problem) > 0)
    reads += tf.cast(tf.logical_not(is_end), tf.int64)
    bad += tf.cast(is_bad, tf.int64)
    allowed = tf.maximum(
        tf.cast(max_bad_videos, tf.float64),
        max_bad_video_fraction * tf.cast(reads, tf.float64))
    counts = tf.strings.join([tf.strings.as_string(bad), ' of the ',
                              tf.strings.as_string(reads), ' videos read'])
    checks = [tf.debugging.Assert(
        tf.logical_not(tf.logical_and(is_bad,
                                      tf.cast(bad, tf.float64) > allowed)),
        data_error(source, ': ', problem, '. Too many bad videos: ', counts,
                   f' are bad, more than {budget} allow (validate_records '
                   'lists them all).'))]
    if hold:
      has_held = state[4]
      checks.append(tf.debugging.Assert(
          tf.logical_not(tf.logical_and(is_end, tf.logical_and(
              tf.logical_not(has_held), reads > 0))),
          data_error(f'{what}: every one of the ', tf.strings.as_string(reads),
                     ' videos read is bad (the warnings above name them); '
                     'nothing to evaluate.')))

    def log_first_time():
      first = tf.equal(logged.lookup(source), 0)
      with tf.control_dependencies([logged.insert(source, 1)]):
        return tf.cond(first, print_bad, lambda: tf.constant(False))

    def print_bad():
      line = tf.strings.join(['WARNING: skipped a bad video: ', source, ': ',
                              problem, ' (', counts, f' are bad; {what})'])
      with tf.control_dependencies([tf.print(line,
                                             output_stream=sys.stderr)]):
        return tf.constant(True)

    with tf.control_dependencies(checks):
      printed = tf.cond(is_bad, log_first_time, lambda: tf.constant(False))
    with tf.control_dependencies([printed]):
      example['skipped_videos'] = tf.where(is_bad, 0, pending)
      next_pending = tf.where(is_bad, pending + 1, 0)
    if not hold:
      return (reads, bad, next_pending), (tf.logical_not(is_bad), example)
    # Emit the held good example when the next good one or the end comes.
    held, has_held = state[3], state[4]
    out = tf.cond(is_end, lambda: dict(  # pylint: disable=g-long-lambda
        held, skipped_videos=held['skipped_videos'] + pending),
                  lambda: held)
    keep = tf.logical_or(is_bad, is_end)
    held = tf.cond(keep, lambda: held, lambda: example)
    emit = tf.logical_and(state[4], tf.logical_not(is_bad))
    has_held = tf.logical_and(tf.logical_or(has_held, tf.logical_not(is_bad)),
                              tf.logical_not(is_end))
    return (reads, bad, next_pending, held, has_held), (emit, out)

  state = (tf.constant(0, tf.int64), tf.constant(0, tf.int64),
           tf.constant(0, tf.int32))
  if hold:
    held = {k: _placeholder(v) for k, v in specs.items()
            if k not in ('problem', 'source')}
    held['skipped_videos'] = tf.constant(0, tf.int32)
    state += (held, tf.constant(False))
  return dataset.scan(state, count).filter(lambda keep, _: keep).map(
      lambda _, example: example)


def budget_and_batch(params: Any, what: str,
                     transform_and_batch_fn: Optional[Callable[..., Any]] = None
                     ) -> Callable[[tf.data.Dataset, Any], tf.data.Dataset]:
  """An InputReader `transform_and_batch_fn`: `skip_bad_videos`, then batch.

  Args:
    params: the data config (its budget, batch size, drop_remainder).
    what: its key, e.g. 'task.train_data'.
    transform_and_batch_fn: applied after the budget instead of the default
      per-replica batching.

  Returns:
    fn(dataset, input_context) -> dataset.
  """
  def fn(dataset, input_context=None):
    dataset = skip_bad_videos(dataset, params.max_bad_videos,
                              params.max_bad_video_fraction, what,
                              finite=not params.is_training)
    if transform_and_batch_fn is not None:
      return transform_and_batch_fn(dataset, input_context)
    batch_size = (input_context.get_per_replica_batch_size(
        params.global_batch_size) if input_context else
                  params.global_batch_size)
    return dataset.batch(batch_size, drop_remainder=params.drop_remainder)
  return fn


def data_config_key(params: Any) -> str:
  """'task.train_data' or 'task.validation_data' (for messages)."""
  return 'task.train_data' if params.is_training else 'task.validation_data'
