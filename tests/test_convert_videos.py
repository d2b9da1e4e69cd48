"""Tests of tools/convert_videos.py and tools/tfrecord_writer.py."""

import glob
import os

import av
import numpy as np
import pytest
import tensorflow as tf

from official.vision.dataloaders import video_input
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.tools import convert_videos
from official_projects_const_cl.tools import tfrecord_writer

# Frame t of every test video is a flat colour: red ramps with t.
NUM_FRAMES = 8
SIZE = 32


def _frame(t, size=SIZE):
  frame = np.zeros((size, size, 3), np.uint8)
  frame[..., 0] = 20 + 25 * t
  frame[..., 1] = 200 - 20 * t
  frame[..., 2] = 90
  return frame


def _write_video(path, codec, num_frames=NUM_FRAMES, rate=8, size=SIZE):
  with av.open(str(path), mode='w') as container:
    stream = container.add_stream(codec, rate=rate)
    stream.width = stream.height = size
    stream.pix_fmt = 'yuv420p'
    for t in range(num_frames):
      frame = av.VideoFrame.from_ndarray(_frame(t, size), format='rgb24')
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
  report = convert_videos.convert(str(class_folders), prefix, num_shards=2,
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
    assert 'broken.mp4' in f.read()
  assert 'broken.mp4' in report.summary() and '2 failed' in report.summary()

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
  report = convert_videos.convert(
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
  decoded = convert_videos.decode_video_file(str(path), fps=4)
  assert len(decoded.frames_jpeg) == 4
  assert decoded.timestamps_us == [0, 250000, 500000, 750000]
  assert decoded.frame_rate == 4


def test_corrupt_frame_in_folder_named(tmp_path):
  root = tmp_path / 'in'
  _write_frame_folder(str(root / 'clip'))
  bad = root / 'clip' / 'frame_3.jpg'
  bad.write_bytes(bad.read_bytes()[:40])  # Truncated JPEG.
  report = convert_videos.convert(str(root), str(tmp_path / 'o'),
                                  progress=False)
  assert report.written == 0
  assert len(report.failed) == 1
  assert 'frame_3.jpg' in report.failed[0][1]


def test_bad_paths_raise_clear_errors(tmp_path):
  missing = tmp_path / 'nope'
  with pytest.raises(FileNotFoundError, match='nope'):
    convert_videos.convert(str(missing), str(tmp_path / 'o'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ValueError, match='No videos .* found under .*empty'):
    convert_videos.convert(str(tmp_path / 'empty'), str(tmp_path / 'o'))
  with pytest.raises(FileNotFoundError, match='labels.csv'):
    convert_videos.convert(str(tmp_path / 'empty'), str(tmp_path / 'o'),
                           labels_csv=str(tmp_path / 'labels.csv'))


def test_cli(class_folders, tmp_path, capsys):
  prefix = str(tmp_path / 'cli' / 'x')
  report = convert_videos.cli(['--input_dir', str(class_folders),
                               '--output_prefix', prefix])
  assert report.written == 3
  out = capsys.readouterr().out
  assert 'Wrote 3 videos' in out and 'FAILED' in out and 'broken.mp4' in out


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
