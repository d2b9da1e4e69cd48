"""tools/validate_records.py: every problem by file, record and key."""

import csv
import os

import numpy as np
import pytest
import tensorflow as tf

from official_projects_const_cl.tools import validate_records as vr
from test_bad_records import _damaged_inside, _frames
from test_localization import _keyframe_example
from test_pretrain_input import _example, _write


def _boxes_example(boxes_per_frame, num_frames=3):
  return _example(_frames(num_frames), labels=(1,), boxes=boxes_per_frame)


@pytest.fixture
def records_dir(tmp_path):
  clean = _write(tmp_path / 'a-clean.tfrecord',
                 [_example(_frames(4), labels=(k,)) for k in range(3)])
  frames = _frames(6, sizes={3: (16, 20)})
  frames[1] = b'junk'
  frames[4] = _damaged_inside(frames[4])
  bad = _write(tmp_path / 'b-bad.tfrecord', [
      _example(_frames(4), labels=(0,)),
      _example(frames, labels=(7,)),
      _example([], labels=(1,)),
      _boxes_example([[[0.1, 0.1, 0.5, 0.5]], [[0.6, 0.1, 0.2, 1.5]],
                      [[0.0, 0.0, 1.0, 1.0]]]),
      _keyframe_example(keyframe=12, gt=[[0.1, 0.1, 0.4, 0.4]],
                        labels=[(0, 9), (3, 1)]),
  ])
  junk = tmp_path / 'c-junk.tfrecord'
  junk.write_bytes(np.random.default_rng(1).bytes(300))
  gz = str(tmp_path / 'd-gzip.tfrecord')
  with tf.io.TFRecordWriter(gz, options='GZIP') as writer:
    writer.write(_example(_frames(2), labels=(0,)))
  return tmp_path, clean, bad, str(junk), gz


def _rows(path):
  with open(path) as f:
    return list(csv.reader(f))


def test_problems_by_file_record_and_key(records_dir, capsys):
  root, _, bad, junk, gz = records_dir
  out_csv = str(root / 'problems.csv')
  with pytest.raises(SystemExit) as status:
    vr.main(['validate_records', f'--input_path={root}/*.tfrecord',
             f'--output_csv={out_csv}', '--num_classes=5', '--num_workers=3'])
  assert status.value.code == 1
  rows = _rows(out_csv)
  assert rows[0] == ['file', 'record', 'key', 'problem']
  problems = {(os.path.basename(f), r, k, p) for f, r, k, p in rows[1:]}
  by_record = {}
  for f, r, k, p in problems:
    by_record.setdefault((f, r), []).append((k, p))
  assert set(by_record) == {('b-bad.tfrecord', '1'), ('b-bad.tfrecord', '2'),
                            ('b-bad.tfrecord', '3'), ('b-bad.tfrecord', '4'),
                            ('c-junk.tfrecord', ''), ('d-gzip.tfrecord', '')}
  video = dict((p.split(':')[0], p) for k, p in by_record[
      ('b-bad.tfrecord', '1')] if k == 'image/encoded')
  assert 'frame 1' in video and 'not a complete JPEG' in video['frame 1']
  assert video['frame 4'].startswith(
      'frame 4: the JPEG decoder rejects it (jpeg::Uncompress failed')
  texts = [p for _, p in by_record[('b-bad.tfrecord', '1')]]
  assert any(p.startswith('frames of different sizes: 16x20 (frame 3), '
                          '32x40 (frames 0, 2, 5)') for p in texts), texts
  assert ('clip/label/index', 'label 7 outside [0, 5)') in by_record[
      ('b-bad.tfrecord', '1')]
  assert by_record[('b-bad.tfrecord', '2')] == [(
      'image/encoded',
      'no frames (key missing or video empty): training skips this video')]
  (key, text), = by_record[('b-bad.tfrecord', '3')]
  assert key == 'region/bbox' and text.startswith(
      '1 bad boxes: frame 1 box 0: [0.6')
  keyframe = dict(by_record[('b-bad.tfrecord', '4')])
  assert keyframe['clip/keyframe/index'] == (
      '[12] is not one index inside the 8 stored frames')
  assert keyframe['keyframe/bbox/label/index'] == (
      'action ids [9] outside [1, 5]')
  assert keyframe['keyframe/bbox/label/box_index'].startswith(
      'refers to a person box that does not exist')
  (_, text), = by_record[('c-junk.tfrecord', '')]
  assert text.startswith('is not a TFRecord file')
  (_, text), = by_record[('d-gzip.tfrecord', '')]
  assert text.startswith('is gzip-compressed') and 'compressed_input' in text
  out = capsys.readouterr().out
  assert out.startswith('Checked 8 records in 4 files')
  assert f'{out_csv} lists them' in out


def test_clean_data_exits_0_and_gzip_with_compressed(records_dir, capsys):
  root, clean, _, _, gz = records_dir
  out_csv = str(root / 'clean.csv')
  with pytest.raises(SystemExit) as status:
    vr.main(['validate_records', f'--input_path={clean}',
             f'--output_csv={out_csv}', '--require_labels', '--no_progress'])
  assert status.value.code == 0
  assert _rows(out_csv) == [['file', 'record', 'key', 'problem']]
  assert 'Checked 3 records in 1 files' in capsys.readouterr().out
  assert vr.cli([f'--input_path={gz}', '--compressed',
                 f'--output_csv={out_csv}']) == 0
  assert vr.cli([f'--input_path={clean}', '--compressed',
                 f'--output_csv={out_csv}']) == 1
  assert 'is not gzip-compressed' in _rows(out_csv)[1][3]


def test_a_damaged_file_names_the_last_good_record(tmp_path):
  path = _write(tmp_path / 'cut.tfrecord', [_example(_frames(3))] * 3)
  data = open(path, 'rb').read()
  with open(path, 'wb') as f:
    f.write(data[:-50])
  problems = vr.check_file(path, vr.Options())
  assert len(problems) == 1
  file, record, key, text = problems[0]
  assert (file, record, key) == (path, None, '')
  assert text.startswith('damaged TFRecord data after record 1 ')


def test_box_lists_that_do_not_follow_the_frames():
  seq = tf.train.SequenceExample.FromString(_boxes_example(
      [[[0.1, 0.1, 0.5, 0.5]]] * 3))
  del seq.feature_lists.feature_list['region/bbox/xmin'].feature[2]
  del seq.feature_lists.feature_list['region/bbox/ymax']
  assert vr.clip_problems(seq, vr.Options()) == [(
      'region/bbox', 'the box lists (ymin 3, xmin 2, ymax missing, xmax 3) do '
      'not have one entry per frame of image/encoded (3)')]


def test_progress_line():
  progress = vr.Progress(total_files=4, total_bytes=4_000_000, enabled=False)
  progress.start -= 10.0
  progress.add(num_bytes=1_000_000, num_records=50, files=1)
  line = progress.line(progress.start + 10.0)
  assert line == ('[#####...............] 1/4 files, 1.0/4.0 MB, 50 records '
                  '(5.0/s), ETA 00:00:30')
