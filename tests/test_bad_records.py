"""Bad records in every input pipeline: counted skips or stops that name them.

One test per case of the bad-input table (a JPEG damaged inside, frames of
mixed sizes, an unreadable or empty video in a glob, a random-bytes file, a
gzip file) for pretraining, recognition and localization inputs.
"""

import gzip
import re

import numpy as np
import pytest
import tensorflow as tf

from official.core import exp_factory
from official_projects_const_cl import errors
from official_projects_const_cl.configs import localization as loc_cfg
from official_projects_const_cl.configs import recognition as rec_cfg
from official_projects_const_cl.dataloaders import localization_input as li
from official_projects_const_cl.dataloaders import pretrain_input as pi
from official_projects_const_cl.dataloaders import recognition_input as ri
from official_projects_const_cl.dataloaders import records
from official_projects_const_cl.tasks import recognition
from test_localization import _keyframe_example
from test_multiview_retrieval import _ChannelMeans
from test_pretrain_input import H, W, _config, _example, _frame_levels, _jpeg, _level, _parse, _write  # pylint: disable=g-multiple-import


def _damaged_inside(jpeg):
  """A JPEG whose markers are intact but whose frame header says 0 x 0."""
  sof = jpeg.find(b'\xff\xc0')
  assert sof > 0
  damaged = bytearray(jpeg)
  damaged[sof + 5:sof + 9] = b'\0\0\0\0'
  return bytes(damaged)


def _frames(n, damaged=(), sizes=None):
  frames = []
  for k in range(n):
    h, w = (sizes or {}).get(k, (H, W))
    frame = _jpeg(np.full((h, w, 3), _level(k), np.uint8))
    frames.append(_damaged_inside(frame) if k in damaged else frame)
  return frames


def _video(n, label=0, **kwargs):
  return _example(_frames(n, **kwargs), labels=(label,))


def _all_batches(dataset, limit=50):
  return [tf.nest.map_structure(lambda t: t.numpy(), b)
          for b in dataset.take(limit)]


# ------------------------------------------------------- damaged frames ---


def test_jpeg_damaged_inside_is_replaced_and_counted(tmp_path):
  frames = _frames(8, damaged=(2,))
  with pytest.raises(tf.errors.InvalidArgumentError, match='Uncompress'):
    tf.io.decode_jpeg(frames[2])  # What used to stop training.
  out = _parse(_example(frames, labels=(1,)), training=False)
  # Centered clip [0, 2, 4, 6]: frame 2 shows its earlier neighbour 0.
  np.testing.assert_array_equal(out['frame_index'][0], [0, 0, 4, 6])
  np.testing.assert_allclose(_frame_levels(out['image'])[0],
                             [_level(k) for k in (0, 0, 4, 6)], atol=2.5)
  assert out['num_corrupt_frames'] >= 1 and out['problem'] == b''
  path = _write(tmp_path / 'damaged.tfrecord',
                [_example(frames, labels=(1,))] * 2)
  batch = next(iter(pi.build_pretrain_dataset(_config(path))))
  assert batch['image'].shape == (2, 2, 4, 32, 32, 3)
  np.testing.assert_array_equal(batch['skipped_videos'].numpy(), [0, 0])


def test_mixed_frame_sizes_are_resized_to_the_first_frame():
  sizes = {1: (16, 20), 2: (64, 64), 5: (24, 24)}
  record = _example(_frames(8, sizes=sizes), labels=(1,))
  out = _parse(record, training=False)
  assert out['image'].shape == (2, 4, 32, 32, 3) and out['problem'] == b''
  np.testing.assert_allclose(_frame_levels(out['image'])[0],
                             [_level(k) for k in (0, 2, 4, 6)], atol=2.5)
  assert out['num_corrupt_frames'] == 0
  # Recognition test views: clips of different sizes are concatenated.
  parser = ri.Parser(num_frames=4, temporal_stride=1, output_size=(32, 32),
                     num_classes=4, num_test_clips=2, num_test_crops=1,
                     min_image_size=32, is_training=False)
  views = parser(pi.Decoder().decode(tf.constant(record)))
  assert views['image'].shape == (2, 4, 32, 32, 3)
  assert views['problem'].numpy() == b''


# --------------------------------------------------- bad videos, budget ---


def _bad_videos():
  return [_example([b'junk'] * 6, labels=(2,)),  # No readable frame.
          _example([], labels=(1,))]             # Too short: no frame.


@pytest.mark.parametrize('cache', [False, True])
def test_bad_videos_in_a_glob_are_skipped_counted_and_named_once(tmp_path,
                                                                 capfd, cache):
  # One bad video before a good one of its file, one at the very end.
  _write(tmp_path / 'a.tfrecord', [_bad_videos()[0], _video(8, label=0)])
  _write(tmp_path / 'b.tfrecord', [_video(8, label=1), _bad_videos()[1]])
  pattern = str(tmp_path / '*.tfrecord')
  params = _config(pattern, is_training=False, drop_remainder=False,
                   global_batch_size=8, cache=cache)
  batches = _all_batches(pi.build_pretrain_dataset(params))
  assert sorted(np.concatenate([b['label'] for b in batches])) == [0, 1]
  # A validation pass counts every bad video, the last one included.
  assert sum(int(b['skipped_videos'].sum()) for b in batches) == 2
  log = capfd.readouterr().err
  assert re.search(r'WARNING: skipped a bad video: \S*/a\.tfrecord record 0: '
                   r'none of the sampled frames \([0-9,]+\) is a readable '
                   r'JPEG \(1 of the \d videos read are bad; '
                   r'task\.validation_data\)', log), log
  assert re.search(r"WARNING: skipped a bad video: \S*/b\.tfrecord record 1: "
                   r"no frames under 'image/encoded' \(key missing or video "
                   r"empty\) \(2 of the \d videos read are bad", log), log
  # Training repeats the data: every bad video is named once, counted on
  # every read.
  train = _config(pattern, global_batch_size=2, max_bad_video_fraction=1.0,
                  cache=cache)
  batches = _all_batches(pi.build_pretrain_dataset(train), limit=12)
  assert sum(int(b['skipped_videos'].sum()) for b in batches) >= 20
  log = capfd.readouterr().err
  assert log.count('a.tfrecord record 0:') == 1
  assert log.count('b.tfrecord record 1:') == 1


def test_the_budget_stops_the_run_naming_the_video(tmp_path):
  # One file: 1 video in 4 of every read is bad (files of different sizes
  # interleave unevenly at the start).
  pattern = _write(tmp_path / 'a_bad.tfrecord', [
      _video(8, label=0), _bad_videos()[0], _video(8, label=1),
      _video(8, label=2)])
  # 1 video in 4 is bad: within max(2, 50% of the reads), never stops.
  lenient = _config(pattern, max_bad_videos=2, max_bad_video_fraction=0.5)
  assert len(_all_batches(pi.build_pretrain_dataset(lenient), 20)) == 20
  # Beyond max(2, 1% of the reads): the third bad read stops it.
  strict = _config(pattern, max_bad_videos=2, max_bad_video_fraction=0.01)
  with pytest.raises(tf.errors.InvalidArgumentError) as info:
    _all_batches(pi.build_pretrain_dataset(strict), 50)
  message = errors.user_error_message(info.value)
  assert re.fullmatch(
      r'Input data error: \S*a_bad\.tfrecord record 1: none of the sampled '
      r'frames \([0-9,]+\) is a readable JPEG\. Too many bad videos: 3 of the '
      r'\d+ videos read are bad, more than max_bad_videos=2 and '
      r'max_bad_video_fraction=0\.01 of task\.train_data allow '
      r'\(validate_records lists them all\)\.', message), message


def test_a_validation_set_of_bad_videos_stops(tmp_path):
  path = _write(tmp_path / 'val.tfrecord', _bad_videos())
  params = _config(path, is_training=False, drop_remainder=False)
  with pytest.raises(tf.errors.InvalidArgumentError) as info:
    _all_batches(pi.build_pretrain_dataset(params))
  assert errors.user_error_message(info.value) == (
      'Input data error: task.validation_data: every one of the 2 videos '
      'read is bad (the warnings above name them); nothing to evaluate.')


def test_recognition_validation_reports_skipped_videos(tmp_path):
  _write(tmp_path / 'a.tfrecord', _bad_videos() + [_video(8, label=0)])
  _write(tmp_path / 'b.tfrecord', [_video(8, label=1)])
  params = rec_cfg.RecognitionDataConfig(
      input_path=str(tmp_path / '*.tfrecord'), feature_shape=(4, 32, 32, 3),
      temporal_stride=2, num_classes=3, num_test_clips=2, num_test_crops=1,
      min_image_size=32, global_batch_size=4, is_training=False,
      drop_remainder=False, cycle_length=2)
  batches = list(ri.build_recognition_dataset(params))
  assert len(batches) == 1
  assert sorted(batches[0]['label'].numpy().tolist()) == [0, 1]
  exp = exp_factory.get_exp_config('const_cl_linear_eval_demo')
  exp.task.train_data.num_classes = exp.task.validation_data.num_classes = 3
  task = recognition.RecognitionTask(exp.task)
  metrics = task.build_metrics(training=False)
  task.validation_step(batches[0], _ChannelMeans(), metrics)
  results = {m.name: float(m.result()) for m in metrics}
  assert results['skipped_videos'] == 2.0 and results['num_videos'] == 2.0


def test_localization_skips_bad_keyframes_and_decodes_damaged_ones(tmp_path):
  gt, labels = [[0.1, 0.2, 0.5, 0.6]], [(0, 2)]
  damaged = tf.train.SequenceExample.FromString(_keyframe_example(
      gt=gt, labels=labels))
  frames = damaged.feature_lists.feature_list['image/encoded'].feature
  frames[4].bytes_list.value[0] = _damaged_inside(frames[4].bytes_list.value[0])
  frames[5].bytes_list.value[0] = _jpeg(np.full((20, 16, 3), 9, np.uint8))
  empty = tf.train.SequenceExample.FromString(_keyframe_example(
      gt=gt, labels=labels))
  del empty.feature_lists.feature_list['image/encoded'].feature[:]
  path = _write(tmp_path / 'ava.tfrecord', [
      damaged.SerializeToString(), empty.SerializeToString(),
      _keyframe_example(gt=gt, labels=labels)])
  params = loc_cfg.LocalizationDataConfig(
      input_path=path, feature_shape=(4, 16, 16, 3), temporal_stride=2,
      num_classes=5, max_num_boxes=3, global_batch_size=4, is_training=False,
      drop_remainder=False)
  batches = _all_batches(li.build_localization_dataset(params))
  assert len(batches) == 1 and batches[0]['image'].shape == (2, 4, 16, 16, 3)
  assert batches[0]['skipped_videos'].tolist() == [0, 1]
  assert batches[0]['num_corrupt_frames'].tolist() == [1, 0]


# ----------------------------------------------------------- bad files ---


def test_a_random_bytes_file_in_the_glob_is_named(tmp_path):
  _write(tmp_path / 'train-0.tfrecord', [_video(8)])
  junk = tmp_path / 'train-1.tfrecord'
  junk.write_bytes(np.random.default_rng(0).bytes(5000))
  with pytest.raises(records.RecordFileError) as info:
    pi.build_pretrain_dataset(_config(str(tmp_path / 'train-*')))
  message = errors.user_error_message(info.value)
  assert message.startswith('1 of the 2 files matched by '
                            'task.train_data.input_path cannot be read as '
                            'TFRecord files:')
  assert f'{junk} is not a TFRecord file' in message


def test_a_gzip_file_says_compressed_input(tmp_path):
  path = str(tmp_path / 'train.tfrecord.gz')
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    writer.write(_video(8, label=1))
  for build, config in (
      (pi.build_pretrain_dataset, _config(path)),
      (ri.build_recognition_dataset, rec_cfg.RecognitionDataConfig(
          input_path=path, feature_shape=(4, 32, 32, 3), num_classes=3)),
      (li.build_localization_dataset, loc_cfg.LocalizationDataConfig(
          input_path=path, feature_shape=(4, 16, 16, 3)))):
    with pytest.raises(records.RecordFileError,
                       match=re.escape(path) + r' is gzip-compressed \(it '
                       r'starts with the gzip bytes 1f 8b\); set '
                       r'compressed_input=true'):
      build(config)
  batch = next(iter(pi.build_pretrain_dataset(
      _config(path, compressed_input=True, global_batch_size=1))))
  assert batch['label'].numpy().tolist() == [1]
  plain = _write(tmp_path / 'plain.tfrecord', [_video(8)])
  with pytest.raises(records.RecordFileError, match='not gzip-compressed'):
    pi.build_pretrain_dataset(_config(plain, compressed_input=True))
  # A gzip file whose content is not a TFRecord.
  other = tmp_path / 'other.gz'
  other.write_bytes(gzip.compress(b'hello, not a record' * 10))
  assert 'is not a TFRecord file' in records.file_problem(str(other), True)


def test_record_header_checks():
  header = (8).to_bytes(8, 'little')
  crc = records.masked_crc32c(header).to_bytes(4, 'little')
  assert records.record_header_problem(header + crc) is None
  assert records.record_header_problem(b'') is None  # Empty file: no record.
  assert 'cut inside' in records.record_header_problem(header[:5])
  assert 'checksum' in records.record_header_problem(header + b'\0\0\0\0')
  # The CRC-32C check value of '123456789' (RFC 3720), before masking.
  crc = records.masked_crc32c(b'123456789')
  unmasked = ((crc - 0xA282EAD8) & 0xFFFFFFFF)
  unmasked = ((unmasked << 15) | (unmasked >> 17)) & 0xFFFFFFFF
  assert unmasked == 0xE3069283


def test_a_file_damaged_inside_is_a_user_error_with_a_hint(tmp_path):
  path = _write(tmp_path / 'cut.tfrecord', [_video(8), _video(8)])
  data = open(path, 'rb').read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) - 100])  # The second record is cut.
  params = _config(path, is_training=False, drop_remainder=False)
  with pytest.raises(tf.errors.DataLossError) as info:
    _all_batches(pi.build_pretrain_dataset(params))
  message = errors.user_error_message(info.value)
  assert message.startswith('a TFRecord file is damaged (')
  assert 'validate_records' in message
