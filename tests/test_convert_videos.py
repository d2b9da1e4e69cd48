"""Tests of the video converter (dataloaders/conversion/video_*.py, tools/convert_videos.py)."""

import csv
import glob
import os

import av
import numpy as np
import pytest
import tensorflow as tf

from official.vision.dataloaders import video_input
from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.dataloaders.conversion import tfrecord_writer
from official_projects_const_cl.dataloaders.conversion import video_converter
from official_projects_const_cl.dataloaders.conversion import video_sources
from official_projects_const_cl.dataloaders.conversion import video_splits
from official_projects_const_cl.tools import convert_videos

# Frame t of every test video is a flat colour: red ramps with t.
NUM_FRAMES = 8
SIZE = 32


def _frame(t, size=SIZE):
  frame = np.zeros((size, size, 3), np.uint8)
  frame[..., 0] = 20 + 25 * t
  frame[..., 1] = 200 - 20 * t
  frame[..., 2] = 90
  return frame


def _write_video(path, codec, num_frames=NUM_FRAMES, rate=8, size=SIZE,
                 frame_fn=_frame, gop=None):
  with av.open(str(path), mode='w') as container:
    stream = container.add_stream(codec, rate=rate)
    stream.width = stream.height = size
    stream.pix_fmt = 'yuv420p'
    if gop:
      stream.codec_context.gop_size = gop
    for t in range(num_frames):
      frame = av.VideoFrame.from_ndarray(frame_fn(t, size), format='rgb24')
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def _write_frame_folder(folder, num_frames=NUM_FRAMES, ext='jpg'):
  os.makedirs(folder)
  for t in range(num_frames):  # Names sort naturally, not lexically.
    with open(os.path.join(folder, f'frame_{t + 1}.{ext}'), 'wb') as f:
      if ext == 'jpg':
        f.write(tfrecord_writer.encode_jpeg(_frame(t), quality=95))
      else:
        f.write(tf.io.encode_png(_frame(t)).numpy())


def _read_all(pattern):
  decoder = video_input.Decoder()
  decoder.add_context(features.MEDIA_ID_KEY,
                      tf.io.FixedLenFeature((), tf.string))
  decoder.add_context(features.LABEL_TEXT_KEY, tf.io.VarLenFeature(tf.string))
  decoder.add_feature(features.TIMESTAMP_KEY, tf.io.VarLenFeature(tf.int64))
  out = {}
  for raw in tf.data.TFRecordDataset(sorted(glob.glob(pattern))):
    ex = decoder.decode(raw)
    out[ex[features.MEDIA_ID_KEY].numpy().decode()] = ex
  return out


def _check_colours(example, frame_ids):
  frames = example[features.IMAGE_KEY].numpy()
  assert len(frames) == len(frame_ids)
  for jpeg, t in zip(frames, frame_ids):
    image = tf.io.decode_jpeg(jpeg).numpy().astype(float)
    np.testing.assert_allclose(image.mean((0, 1)), _frame(t)[0, 0], atol=8)


@pytest.fixture
def class_folders(tmp_path):
  root = tmp_path / 'videos'
  (root / 'jump').mkdir(parents=True)
  (root / 'run').mkdir()
  _write_video(root / 'jump' / 'a.mp4', 'libx264')
  _write_video(root / 'run' / 'b.avi', 'mpeg4')
  _write_frame_folder(str(root / 'run' / 'c_frames'))
  (root / 'jump' / 'broken.mp4').write_bytes(
      np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
  (root / 'run' / 'empty.webm').write_bytes(b'')
  return root


def test_class_folders_written_and_failures_named(class_folders, tmp_path):
  prefix = str(tmp_path / 'out' / 'train')
  report = video_converter.convert(str(class_folders), prefix, num_shards=2,
                                  log_every=1, progress=False)
  assert report.written == 3
  failed = {os.path.basename(p): reason for p, reason in report.failed}
  assert set(failed) == {'broken.mp4', 'empty.webm'}
  assert 'empty file' in failed['empty.webm']
  assert 'broken.mp4' in failed['broken.mp4']
  assert report.output_paths == [prefix + '-00000-of-00002.tfrecord',
                                 prefix + '-00001-of-00002.tfrecord']
  assert report.class_names == ['jump', 'run']
  with open(prefix + '_label_map.txt') as f:
    assert f.read().split('\n')[:2] == ['jump', 'run']
  with open(prefix + '_failures.csv') as f:
    rows = list(csv.reader(f))
  assert rows[0] == ['video', 'reason']
  assert sorted(os.path.basename(r[0]) for r in rows[1:]) == [
      'broken.mp4', 'empty.webm']
  summary = report.summary()
  assert summary.startswith('Converted 3 of 5 videos to 2 shards')
  assert '; 2 failed: ' in summary and 'broken.mp4' in summary

  records = _read_all(prefix + '-*.tfrecord')
  assert set(records) == {'jump/a', 'run/b', 'run/c_frames'}
  for key, label in (('jump/a', 0), ('run/b', 1), ('run/c_frames', 1)):
    ex = records[key]
    assert ex[features.LABEL_KEY].numpy().tolist() == [label]
    assert ex[features.LABEL_TEXT_KEY].numpy().tolist() == [
        key.split('/')[0].encode()]
    _check_colours(ex, range(NUM_FRAMES))
  # Video timestamps come from the stream: 8 fps -> 125 ms apart.
  np.testing.assert_array_equal(
      records['jump/a'][features.TIMESTAMP_KEY].numpy()[:, 0],
      np.arange(NUM_FRAMES) * 125000)
  assert records['run/c_frames'][features.TIMESTAMP_KEY].shape[-1] == 0


def test_csv_labels_subsampling_and_resize(tmp_path):
  root = tmp_path / 'flat'
  root.mkdir()
  _write_video(root / 'v1.mp4', 'libx264')
  _write_video(root / 'v2.mp4', 'mpeg4')
  _write_frame_folder(str(root / 'v3'), ext='png')
  _write_video(root / 'v4.webm', 'libvpx')
  _write_video(root / 'unlisted.mp4', 'mpeg4')
  csv_path = tmp_path / 'labels.csv'
  csv_path.write_text('path_or_id,label\nv1.mp4,7\nv2,3\nv2,7\nv3,0\n'
                      'gone.mp4,1\nv4,2\n')
  prefix = str(tmp_path / 'out' / 'clips')
  report = video_converter.convert(
      str(root), prefix, labels_csv=str(csv_path), num_frames=3,
      short_side=16, progress=False)
  assert report.written == 4
  assert [name for name, _ in report.failed] == ['gone.mp4']
  assert 'labels.csv:6' in report.failed[0][1]
  assert [os.path.basename(p) for p in report.skipped] == ['unlisted.mp4']
  # Integer labels are their own indices.
  assert report.class_names == [str(i) for i in range(8)]
  records = _read_all(prefix + '-*.tfrecord')
  assert records['v1'][features.LABEL_KEY].numpy().tolist() == [7]
  assert records['v2'][features.LABEL_KEY].numpy().tolist() == [3, 7]
  assert records['v4'][features.LABEL_KEY].numpy().tolist() == [2]
  for key in ('v1', 'v2', 'v3', 'v4'):
    _check_colours(records[key], [0, 4, 7])  # Evenly spread over 8 frames.
    image = tf.io.decode_jpeg(records[key][features.IMAGE_KEY][0])
    assert image.shape == (16, 16, 3)


def test_fps_resampling_keeps_every_other_frame(tmp_path):
  path = tmp_path / 'v.mp4'
  _write_video(path, 'libx264', rate=8)
  decoded = video_sources.decode_video_file(str(path), fps=4)
  assert len(decoded.frames_jpeg) == 4
  assert decoded.timestamps_us == [0, 250000, 500000, 750000]
  assert decoded.frame_rate == 4


def test_corrupt_frame_in_folder_named(tmp_path):
  root = tmp_path / 'in'
  _write_frame_folder(str(root / 'clip'))
  bad = root / 'clip' / 'frame_3.jpg'
  bad.write_bytes(bad.read_bytes()[:40])  # Truncated JPEG.
  report = video_converter.convert(str(root), str(tmp_path / 'o'),
                                  progress=False)
  assert report.written == 0
  assert len(report.failed) == 1
  assert 'frame_3.jpg' in report.failed[0][1]


def test_bad_paths_raise_clear_errors(tmp_path):
  missing = tmp_path / 'nope'
  with pytest.raises(FileNotFoundError, match='nope'):
    video_converter.convert(str(missing), str(tmp_path / 'o'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ValueError, match='No videos .* found under .*empty'):
    video_converter.convert(str(tmp_path / 'empty'), str(tmp_path / 'o'))
  with pytest.raises(FileNotFoundError, match='labels.csv'):
    video_converter.convert(str(tmp_path / 'empty'), str(tmp_path / 'o'),
                           labels_csv=str(tmp_path / 'labels.csv'))


def test_cli(class_folders, tmp_path, capsys):
  prefix = str(tmp_path / 'cli' / 'x')
  report = convert_videos.cli(['--input_dir', str(class_folders),
                               '--output_prefix', prefix])
  assert report.written == 3
  out = capsys.readouterr().out
  assert 'Converted 3 of 5 videos' in out and 'FAILED' in out
  assert 'broken.mp4' in out


def test_one_good_two_bad_counts_agree_and_exit_statuses(tmp_path, capsys):
  root = tmp_path / 'mixed'
  root.mkdir()
  _write_video(root / 'good.mp4', 'libx264')
  (root / 'bad.mp4').write_bytes(b'not a video at all' * 100)
  (root / 'empty.mp4').write_bytes(b'')
  prefix = str(tmp_path / 'out' / 'mixed')
  report = convert_videos.cli([f'--input_dir={root}',
                               f'--output_prefix={prefix}'])
  assert (report.written, len(report.failed), report.total) == (1, 2, 3)
  out = capsys.readouterr().out
  assert 'Converted 1 of 3 videos to 1 shards' in out
  assert '; 2 failed: ' in out
  with open(prefix + '_failures.csv') as f:
    rows = list(csv.reader(f))
  assert rows[0] == ['video', 'reason'] and len(rows) == 3
  assert sorted(os.path.basename(r[0]) for r in rows[1:]) == ['bad.mp4',
                                                             'empty.mp4']
  # Exit status 0 with failures, 1 when nothing was converted, 2 for a user
  # error (one message, no traceback).
  with pytest.raises(SystemExit) as status:
    convert_videos.main(['convert_videos', f'--input_dir={root}',
                         f'--output_prefix={prefix}'])
  assert status.value.code == 0
  (root / 'good.mp4').unlink()
  with pytest.raises(SystemExit) as status:
    convert_videos.main(['convert_videos', f'--input_dir={root}',
                         f'--output_prefix={prefix}'])
  assert status.value.code == 1
  captured = capsys.readouterr()
  assert 'Converted 0 of 2 videos' in captured.out
  assert 'ERROR: no video was converted (2 failed' in captured.err
  with pytest.raises(SystemExit) as status:
    convert_videos.main(['convert_videos', f'--input_dir={tmp_path}/nowhere',
                         f'--output_prefix={prefix}'])
  assert status.value.code == 2
  err = capsys.readouterr().err
  assert f'ERROR: Input folder {tmp_path}/nowhere does not exist' in err
  assert 'Traceback' not in err


def test_sequence_example_boxes_and_model_garden_decoder(tmp_path):
  frames = [tfrecord_writer.encode_jpeg(_frame(t)) for t in range(3)]
  boxes = [np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]]),
           np.zeros((0, 4)),
           np.array([[0.25, 0.25, 0.75, 0.75]])]
  example = tfrecord_writer.make_sequence_example(
      frames, labels=[2, 5], media_id='clip', boxes_per_frame=boxes,
      box_tracks=[[0, 1], [], [1]], box_scores=[[0.9, 0.5], [], [1.0]],
      timestamps_us=[0, 100, 200], frame_rate=10.0, height=SIZE, width=SIZE)
  prefix = str(tmp_path / 'rec')
  with tfrecord_writer.ShardedWriter(prefix, num_shards=2) as writer:
    assert writer.write(example) == 0
    assert writer.write(example.SerializeToString()) == 1
    assert writer.write(example, shard=1) == 1
  assert writer.counts == [1, 2]
  assert sorted(glob.glob(prefix + '-*')) == writer.paths

  decoder = video_input.Decoder()
  for key in features.BBOX_KEYS + (features.REGION_SCORE_KEY,):
    decoder.add_feature(key, tf.io.VarLenFeature(tf.float32))
  decoder.add_feature(features.REGION_TRACK_KEY, tf.io.VarLenFeature(tf.int64))
  ex = decoder.decode(example.SerializeToString())
  assert ex[features.IMAGE_KEY].shape == (3,)
  assert ex[features.LABEL_KEY].numpy().tolist() == [2, 5]
  np.testing.assert_allclose(ex[features.BBOX_YMAX_KEY].numpy(),
                             [[0.5, 1.0], [0, 0], [0.75, 0]])
  np.testing.assert_array_equal(ex[features.REGION_TRACK_KEY].numpy(),
                                [[0, 1], [0, 0], [1, 0]])


def test_sequence_example_rejects_bad_input():
  frame = tfrecord_writer.encode_jpeg(_frame(0))
  with pytest.raises(ValueError, match='clip: a clip needs at least one'):
    tfrecord_writer.make_sequence_example([], media_id='clip')
  with pytest.raises(ValueError, match='v7: frame 0 has boxes outside'):
    tfrecord_writer.make_sequence_example(
        [frame], media_id='v7', boxes_per_frame=[np.array([[0, 0, 2, 1]])])
  with pytest.raises(ValueError, match='ymax < ymin'):
    tfrecord_writer.make_sequence_example(
        [frame], boxes_per_frame=[np.array([[0.5, 0, 0.2, 1]])])
  with pytest.raises(ValueError, match='box_tracks of frame 0 has 2 values'):
    tfrecord_writer.make_sequence_example(
        [frame], boxes_per_frame=[np.array([[0, 0, 1, 1]])],
        box_tracks=[[0, 1]])
  with pytest.raises(ValueError, match='uint8'):
    tfrecord_writer.encode_jpeg(np.zeros((4, 4, 3), np.float32))


# --- Official dataset lists: UCF101 / HMDB51 splits, Kinetics CSV. ----------


def _labels_of(records):
  return {key: ex[features.LABEL_KEY].numpy().tolist()
          for key, ex in records.items()}


def _read_lines(path):
  with open(path) as f:
    return f.read().splitlines()


@pytest.fixture
def ucf101(tmp_path):
  """A 3-class UCF101 tree and its official-format `ucfTrainTestlist/`."""
  root = tmp_path / 'UCF-101'
  videos = {
      'PlayingCello': ['v_PlayingCello_g08_c01', 'v_PlayingCello_g01_c01'],
      'ApplyEyeMakeup': ['v_ApplyEyeMakeup_g08_c01',
                         'v_ApplyEyeMakeup_g01_c01',
                         'v_ApplyEyeMakeup_g02_c01'],
      # As in UCF101: the folder and the file names differ in case.
      'HandstandPushups': ['v_HandStandPushups_g08_c01'],
  }
  for folder, stems in videos.items():
    (root / folder).mkdir(parents=True)
    for stem in stems:
      _write_video(root / folder / f'{stem}.avi', 'mpeg4', num_frames=2)
  lists = tmp_path / 'ucfTrainTestlist'
  lists.mkdir()
  # Not alphabetical: the label order must be classInd's. CRLF and trailing
  # blank lines as in files edited on Windows.
  (lists / 'classInd.txt').write_bytes(
      b'1 PlayingCello\r\n2 ApplyEyeMakeup\r\n3 HandstandPushups\r\n\r\n')
  (lists / 'trainlist01.txt').write_text(
      'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 2\n'
      'HandstandPushups/v_HandStandPushups_g08_c01.avi 3\n'
      'PlayingCello/v_PlayingCello_g08_c01.avi 1\n\n')
  (lists / 'testlist01.txt').write_bytes(
      b'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n'
      b'PlayingCello/v_PlayingCello_g01_c01.avi\r\n')
  (lists / 'trainlist02.txt').write_text(
      'ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 2\n'
      'ApplyEyeMakeup/v_ApplyEyeMakeup_g25_c07.avi 2\n'
      'PlayingCello/v_PlayingCello_g09_c02.avi 1\n')
  return root, lists


def test_ucf101_split_selects_listed_videos_with_classind_labels(ucf101,
                                                                  tmp_path):
  root, lists = ucf101
  prefix = str(tmp_path / 'out' / 'train_split1')
  report = video_converter.convert(
      str(root), prefix, label_source=video_splits.Ucf101SplitLabels(
          str(lists), split=1, subset='train'), progress=False)
  assert report.written == 3 and not report.failed
  assert report.class_names == ['PlayingCello', 'ApplyEyeMakeup',
                                'HandstandPushups']
  assert _read_lines(prefix + '_label_map.txt') == report.class_names
  assert not os.path.exists(prefix + '_failures.csv')
  assert sorted(os.path.basename(p) for p in report.skipped) == [
      'v_ApplyEyeMakeup_g01_c01.avi', 'v_ApplyEyeMakeup_g02_c01.avi',
      'v_PlayingCello_g01_c01.avi']
  records = _read_all(prefix + '-*.tfrecord')
  assert _labels_of(records) == {
      'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01': [1],
      'HandstandPushups/v_HandStandPushups_g08_c01': [2],
      'PlayingCello/v_PlayingCello_g08_c01': [0]}
  assert records['HandstandPushups/v_HandStandPushups_g08_c01'][
      features.LABEL_TEXT_KEY].numpy().tolist() == [b'HandstandPushups']
  _check_colours(records['PlayingCello/v_PlayingCello_g08_c01'], [0, 1])


def test_ucf101_test_list_via_cli_labels_from_folder(ucf101, tmp_path, capsys):
  root, lists = ucf101
  prefix = str(tmp_path / 'out' / 'test_split1')
  report = convert_videos.cli([
      f'--input_dir={root}', f'--ucf101_split_dir={lists}', '--split=1',
      '--subset=test', f'--output_prefix={prefix}'])
  assert report.written == 2
  assert _labels_of(_read_all(prefix + '-*.tfrecord')) == {
      'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01': [1],
      'PlayingCello/v_PlayingCello_g01_c01': [0]}
  assert _read_lines(prefix + '_label_map.txt') == [
      'PlayingCello', 'ApplyEyeMakeup', 'HandstandPushups']
  assert 'Converted 2 of 2 videos' in capsys.readouterr().out


def test_ucf101_missing_videos_stop_unless_allowed(ucf101, tmp_path, capsys):
  root, lists = ucf101
  prefix = str(tmp_path / 'out' / 'train_split2')
  source = video_splits.Ucf101SplitLabels(str(lists), 2, 'train')
  with pytest.raises(video_converter.MissingVideosError,
                     match=r'2 of the 3 videos listed by UCF101 split 2 train'
                     r'.*v_ApplyEyeMakeup_g25_c07.avi.*--allow_missing'
                     ) as error:
    video_converter.convert(str(root), prefix, label_source=source,
                           progress=False)
  missing = ['ApplyEyeMakeup/v_ApplyEyeMakeup_g25_c07.avi',
             'PlayingCello/v_PlayingCello_g09_c02.avi']
  assert [name for name, _ in error.value.missing] == missing
  assert not glob.glob(prefix + '-*.tfrecord')  # Nothing converted.
  with open(prefix + '_failures.csv') as f:
    rows = f.read().splitlines()
  assert rows[0] == 'video,reason'
  assert [row.split(',')[0] for row in rows[1:]] == missing
  assert 'trainlist02.txt:2' in rows[1]

  with pytest.raises(errors.UserError, match='v_PlayingCello_g09_c02'):
    convert_videos.cli([f'--input_dir={root}', f'--ucf101_split_dir={lists}',
                        '--split=2', '--subset=train',
                        f'--output_prefix={prefix}'])

  report = convert_videos.cli([
      f'--input_dir={root}', f'--ucf101_split_dir={lists}', '--split=2',
      '--subset=train', '--allow_missing', f'--output_prefix={prefix}'])
  assert report.written == 1
  assert [name for name, _ in report.missing] == missing
  assert [name for name, _ in report.failed] == missing
  assert '2 listed but missing' in report.summary()
  assert 'FAILED PlayingCello/v_PlayingCello_g09_c02.avi' in (
      capsys.readouterr().out)
  assert _labels_of(_read_all(prefix + '-*.tfrecord')) == {
      'ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01': [1]}
  # A later run without failures removes the earlier failures CSV.
  video_converter.convert(
      str(root), prefix, label_source=video_splits.Ucf101SplitLabels(
          str(lists), 1, 'test'), progress=False)
  assert not os.path.exists(prefix + '_failures.csv')


def test_ucf101_malformed_lists_name_file_and_line(ucf101, tmp_path):
  _, lists = ucf101
  (lists / 'trainlist03.txt').write_text(
      'PlayingCello/v_PlayingCello_g08_c01.avi 1\n'
      'PlayingCello/v_PlayingCello_g01_c01.avi 2\n')
  with pytest.raises(ValueError, match=r'trainlist03.txt:2: class id 2 does '
                     r'not match the folder .PlayingCello.'):
    video_splits.Ucf101SplitLabels(str(lists), 3, 'train').listed()
  with pytest.raises(FileNotFoundError, match='testlist03.txt'):
    video_splits.Ucf101SplitLabels(str(lists), 3, 'test')
  (lists / 'classInd.txt').write_text('1 PlayingCello\n3 ApplyEyeMakeup\n')
  with pytest.raises(ValueError, match=r'classInd.txt:2: expected "2 '):
    video_splits.Ucf101SplitLabels(str(lists), 1, 'test').listed()
  with pytest.raises(SystemExit):  # --subset is required.
    convert_videos.cli([f'--input_dir={tmp_path}',
                        f'--ucf101_split_dir={lists}',
                        f'--output_prefix={tmp_path}/o'])


@pytest.fixture
def hmdb51(tmp_path):
  """A 3-class HMDB51 tree and its `testTrainMulti_7030_splits/` files."""
  root = tmp_path / 'hmdb51'
  on_disk = {
      'brush_hair': ['April_09_brush_hair_u_nm_np1_ba_goo_0',
                     'Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0'],
      'cartwheel': ['Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8',
                    '(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0'],
  }
  for folder, stems in on_disk.items():
    (root / folder).mkdir(parents=True)
    for stem in stems:
      _write_video(root / folder / f'{stem}.avi', 'mpeg4', num_frames=2)
  # A video extracted to frames is found by its .avi name too.
  _write_frame_folder(str(root / 'wave' / 'Wave_hello_wave_u_cm_np1_fr_med_0'),
                      num_frames=3)
  lists = tmp_path / 'testTrainMulti_7030_splits'
  lists.mkdir()
  split1 = {
      'wave': 'Wave_hello_wave_u_cm_np1_fr_med_0.avi 1 \n',
      'brush_hair': 'April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \r\n'
                    'Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0.avi 2 '
                    '\r\n\r\n',
      'cartwheel': 'Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi'
                   ' 0 \n(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi'
                   ' 1 \n',
  }
  for name, text in split1.items():
    (lists / f'{name}_test_split1.txt').write_bytes(text.encode())
    (lists / f'{name}_test_split2.txt').write_text(
        text.replace(' 1 ', ' 0 ') + f'{name}_gone_u_nm_np1_fr_med_1.avi 1\n')
  return root, lists


def test_hmdb51_split_sorted_classes_and_subsets(hmdb51, tmp_path):
  root, lists = hmdb51
  prefix = str(tmp_path / 'out' / 'hmdb_train1')
  report = video_converter.convert(
      str(root), prefix, label_source=video_splits.Hmdb51SplitLabels(
          str(lists), 1, 'train'), progress=False)
  assert report.written == 3 and not report.failed
  assert _read_lines(prefix + '_label_map.txt') == [
      'brush_hair', 'cartwheel', 'wave']
  records = _read_all(prefix + '-*.tfrecord')
  assert _labels_of(records) == {
      'brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0': [0],
      'cartwheel/(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0': [1],
      'wave/Wave_hello_wave_u_cm_np1_fr_med_0': [2]}
  _check_colours(records['wave/Wave_hello_wave_u_cm_np1_fr_med_0'],
                 [0, 1, 2])

  prefix = str(tmp_path / 'out' / 'hmdb_test1')
  report = convert_videos.cli([
      f'--input_dir={root}', f'--hmdb51_split_dir={lists}', '--split=1',
      '--subset=test', f'--output_prefix={prefix}'])
  assert _labels_of(_read_all(prefix + '-*.tfrecord')) == {
      'brush_hair/Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0': [0]}


def test_hmdb51_missing_videos_reported(hmdb51, tmp_path):
  root, lists = hmdb51
  prefix = str(tmp_path / 'out' / 'hmdb_train2')
  with pytest.raises(video_converter.MissingVideosError,
                     match='3 of the 3 videos listed by HMDB51 split 2 train'
                     ) as error:
    video_converter.convert(str(root), prefix, progress=False,
                           label_source=video_splits.Hmdb51SplitLabels(
                               str(lists), 2, 'train'))
  expected = [f'{c}/{c}_gone_u_nm_np1_fr_med_1.avi'
              for c in ('brush_hair', 'cartwheel', 'wave')]
  assert [name for name, _ in error.value.missing] == expected
  with open(prefix + '_failures.csv') as f:
    assert [r.split(',')[0] for r in f.read().splitlines()[1:]] == expected
  report = video_converter.convert(
      str(root), prefix, progress=False,
      label_source=video_splits.Hmdb51SplitLabels(
          str(lists), 2, 'train', allow_missing=True))
  assert report.written == 0 and len(report.missing) == 3
  (lists / 'wave_test_split3.txt').write_text('a.avi 1\nb.avi train\n')
  with pytest.raises(ValueError, match=r'wave_test_split3.txt:2: expected'):
    video_splits.Hmdb51SplitLabels(str(lists), 3, 'train').listed()


def _ramp_frame(t, size=SIZE):
  """Frame t of the long test video: 10 levels apart per frame."""
  frame = np.zeros((size, size, 3), np.uint8)
  frame[..., 0] = 10 + 10 * t
  frame[..., 1] = 240 - 10 * t
  frame[..., 2] = 60
  return frame


def _check_ramp_frames(jpegs, frame_ids):
  """The frames are those of `frame_ids`: the nearest in colour of the ramp."""
  ramp = np.stack([_ramp_frame(t)[0, 0] for t in range(24)]).astype(float)
  nearest = [int(np.argmin(np.abs(
      ramp - tf.io.decode_jpeg(jpeg).numpy().mean((0, 1))).sum(-1)))
             for jpeg in jpegs]
  assert nearest == list(frame_ids)


def _check_ramp(example, frame_ids):
  _check_ramp_frames(example[features.IMAGE_KEY].numpy(), frame_ids)


@pytest.fixture
def kinetics(tmp_path):
  """Trimmed clips, full videos and the official CSV of a tiny Kinetics."""
  root = tmp_path / 'k400'
  (root / 'train' / 'abseiling').mkdir(parents=True)
  # An already trimmed clip (downloader output): written whole, even though
  # the full video of the same id is there too.
  _write_video(root / 'train' / 'abseiling' / 'aaaaaaaaaaa_000002_000012.mp4',
               'libx264')
  _write_video(root / 'aaaaaaaaaaa.mp4', 'libx264', num_frames=24,
               frame_fn=_ramp_frame)
  # Full videos: 24 frames at 8 fps, key frames every 4 (seeking) or only
  # the first one.
  _write_video(root / '-bbbbbbbbbb.mp4', 'libx264', num_frames=24,
               frame_fn=_ramp_frame, gop=4)
  _write_video(root / 'dddddddddd_.webm', 'libvpx', num_frames=24,
               frame_fn=_ramp_frame)
  train_csv = tmp_path / 'train.csv'
  train_csv.write_text(
      'label,youtube_id,time_start,time_end,split,is_cc\n'
      'abseiling,aaaaaaaaaaa,2,12,train,0\n'
      'air drumming,-bbbbbbbbbb,1,2,train,0\n'
      '"passing American football (in game)",dddddddddd_,0.5,1.5,train,1\n'
      'zumba,ccccccccccc,10,20,train,0\n')
  return root, train_csv


def test_kinetics_csv_trimmed_and_full_videos(kinetics, tmp_path):
  root, train_csv = kinetics
  prefix = str(tmp_path / 'out' / 'k400_train')
  report = video_converter.convert(
      str(root), prefix, progress=False,
      label_source=video_splits.KineticsCsvLabels(str(train_csv)))
  # The missing YouTube video is reported, the others converted.
  assert report.written == 3
  assert [name for name, _ in report.missing] == ['ccccccccccc_000010_000020']
  assert 'train.csv:5' in report.missing[0][1]
  with open(prefix + '_failures.csv') as f:
    assert f.read().splitlines()[1].startswith('ccccccccccc_000010_000020,')
  # Sorted CSV labels, the one whose videos are all missing included.
  labels = ['abseiling', 'air drumming', 'passing American football (in game)',
            'zumba']
  assert _read_lines(prefix + '_label_map.txt') == labels
  records = _read_all(prefix + '-*.tfrecord')
  assert _labels_of(records) == {'aaaaaaaaaaa_000002_000012': [0],
                                 '-bbbbbbbbbb_000001_000002': [1],
                                 'dddddddddd__000000_000001': [2]}
  assert records['dddddddddd__000000_000001'][
      features.LABEL_TEXT_KEY].numpy().tolist() == [labels[2].encode()]
  # The trimmed clip is written whole.
  _check_colours(records['aaaaaaaaaaa_000002_000012'], range(NUM_FRAMES))
  # Full videos are trimmed to [time_start, time_end): 8 fps.
  full = records['-bbbbbbbbbb_000001_000002']
  _check_ramp(full, range(8, 16))
  np.testing.assert_array_equal(full[features.TIMESTAMP_KEY].numpy()[:, 0],
                                1000000 + 125000 * np.arange(8))
  webm = records['dddddddddd__000000_000001']
  _check_ramp(webm, range(4, 12))
  np.testing.assert_array_equal(webm[features.TIMESTAMP_KEY].numpy()[:, 0],
                                500000 + 125000 * np.arange(8))


def test_kinetics_columns_by_header_and_class_list(kinetics, tmp_path):
  root, _ = kinetics
  val_csv = tmp_path / 'val.csv'
  val_csv.write_bytes(b'youtube_id,time_start,time_end,label,split\r\n'
                      b'-bbbbbbbbbb,2,3,air drumming,val\r\n\r\n')
  class_list = tmp_path / 'classes.txt'
  class_list.write_text('abseiling\nair drumming\nzumba\n')
  prefix = str(tmp_path / 'out' / 'k400_val')
  report = convert_videos.cli([
      f'--input_dir={root}', f'--kinetics_csv={val_csv}',
      f'--kinetics_class_list={class_list}', f'--output_prefix={prefix}'])
  assert report.written == 1 and not report.failed
  assert _read_lines(prefix + '_label_map.txt') == [
      'abseiling', 'air drumming', 'zumba']
  records = _read_all(prefix + '-*.tfrecord')
  assert _labels_of(records) == {'-bbbbbbbbbb_000002_000003': [1]}
  _check_ramp(records['-bbbbbbbbbb_000002_000003'], range(16, 24))

  class_list.write_text('abseiling\n')
  with pytest.raises(ValueError, match='not in the class list.*air drumming'):
    video_splits.KineticsCsvLabels(str(val_csv), str(class_list)).listed()
  headerless = tmp_path / 'headerless.csv'
  headerless.write_text('abseiling,aaaaaaaaaaa,2,12,train\n')
  videos, names = video_splits.KineticsCsvLabels(str(headerless)).listed()
  assert names == ['abseiling']
  assert [(v.name, v.candidates) for v in videos] == [
      ('aaaaaaaaaaa_000002_000012',
       (('aaaaaaaaaaa_000002_000012', None, None),
        ('aaaaaaaaaaa', 2.0, 12.0)))]


def test_segment_decoding_seeks_and_frame_folders_trim(tmp_path):
  for gop in (2, None):  # Seeks to a key frame / decodes from the first.
    path = tmp_path / f'v{gop}.mp4'
    _write_video(path, 'libx264', num_frames=24, frame_fn=_ramp_frame, gop=gop)
    decoded = video_sources.decode_video_file(str(path), start_s=1.3,
                                               end_s=2.0)
    assert decoded.timestamps_us == [1375000, 1500000, 1625000, 1750000,
                                     1875000]
    _check_ramp_frames(decoded.frames_jpeg, range(11, 16))
  folder = str(tmp_path / 'frames')
  _write_frame_folder(folder)
  decoded = video_sources.decode_frame_folder(folder, frame_rate=8,
                                               start_s=0.25, end_s=0.75)
  assert decoded.timestamps_us == [250000, 375000, 500000, 625000]
  assert decoded.frame_rate == 8
  with pytest.raises(video_sources.VideoReadError, match='frame rate'):
    video_sources.decode_frame_folder(folder, start_s=0.25)
