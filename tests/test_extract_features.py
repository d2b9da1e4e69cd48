"""Feature extraction: values equal the backbone's on the same clips."""

import csv
import os

import av
import numpy as np
import pytest
import tensorflow as tf

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.dataloaders.conversion import video_sources
from official_projects_const_cl.tasks import experiment_runner
from official_projects_const_cl.tasks import feature_extraction
from official_projects_const_cl.tasks import pretrained_model
from official_projects_const_cl.tools import extract_features

EXPERIMENT = 'const_cl_pretrain_demo'
# Clips of 8 frames at stride 2 (span 15) of the demo videos' own 64^2.
OVERRIDE = 'task.train_data.feature_shape=[8,64,64,3]'
S = 64


def _demo_frames(index, num_frames):
  videos = demo_data.iter_demo_videos(0, 'val', index + 1)
  for _ in range(index):
    next(videos)
  _, video = next(videos)
  return video, np.resize(video.frames, (num_frames,) + video.frames.shape[1:])


def _write_mp4(path, frames):
  with av.open(str(path), mode='w') as container:
    stream = container.add_stream('libx264', rate=8)
    stream.width = stream.height = S
    stream.pix_fmt = 'yuv420p'
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, 'rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  """A random-init pretraining checkpoint and its model."""
  params = experiment_runner.experiment_config(EXPERIMENT, OVERRIDE)
  model, _ = pretrained_model.build_pretrained_model(params, None)
  model_dir = str(tmp_path_factory.mktemp('pretrain'))
  tf.train.Checkpoint(model=model, **model.checkpoint_items).save(
      os.path.join(model_dir, 'ckpt'))
  return model, model_dir


def _reference(backbone, jpegs, indices):
  """Hand path: decode the JPEGs, gather the frames, pool res5_g."""
  frames = np.stack([tf.io.decode_jpeg(j).numpy() for j in jpegs])
  clips = frames[np.asarray(indices)].astype(np.float32) / 255
  res5_g = backbone(tf.constant(clips), training=False)['res5_g'].numpy()
  return res5_g.mean(axis=(1, 2, 3))


def test_clip_starts_are_evenly_spaced_and_short_videos_loop():
  starts, indices = feature_extraction.clip_indices(20, 8, 2, 3)
  # linspace(0, 20 - 15, 3) = 0, 2.5, 5 -> rounded half to even: 0, 2, 5.
  assert starts.tolist() == [0, 2, 5]
  assert indices[1].tolist() == [2, 4, 6, 8, 10, 12, 14, 16]
  starts, indices = feature_extraction.clip_indices(12, 8, 2, 2)
  assert starts.tolist() == [0, 0]
  assert indices[0].tolist() == [0, 2, 4, 6, 8, 10, 0, 2]


def _rows(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def test_folder_of_videos_with_a_corrupt_file(checkpoint, tmp_path, capsys):
  model, model_dir = checkpoint
  root = tmp_path / 'videos'
  root.mkdir()
  _write_mp4(root / 'a.mp4', _demo_frames(0, 20)[1])
  _write_mp4(root / 'c.mp4', _demo_frames(1, 12)[1])  # Shorter than a clip.
  (root / 'broken.mp4').write_bytes(
      np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
  out = tmp_path / 'features'
  with pytest.raises(SystemExit) as e:
    extract_features.main(
        ['extract_features', f'--checkpoint={model_dir}',
         f'--input_path={root}', f'--output_dir={out}', '--num_clips=3',
         f'--params_override={OVERRIDE}'])
  assert e.value.code == 0
  captured = capsys.readouterr()
  channels = model.backbone.output_specs['res5_g'][-1]  # 512 in the demo.
  assert f'Embedded 2 videos (6 clips, {channels}-d res5_g)' in captured.out
  assert '1 failed' in captured.out and 'broken.mp4' in captured.out
  assert '[extract_features] 3/3 videos, 1 failed' in captured.err
  assert 'ETA' in captured.err
  failures = _rows(out / 'failures.csv')
  assert [os.path.basename(r['file']) for r in failures] == ['broken.mp4']
  assert failures[0]['reason'].startswith('cannot decode')
  clips = _rows(out / 'clips.csv')
  assert [(r['video_id'], r['clip_index'], r['start_frame'], r['row'])
          for r in clips] == [
              ('a', '0', '0', '0'), ('a', '1', '2', '1'), ('a', '2', '5', '2'),
              ('c', '0', '0', '3'), ('c', '1', '0', '4'), ('c', '2', '0', '5')]
  assert [(r['video_id'], r['num_clips'], r['row'])
          for r in _rows(out / 'videos.csv')] == [('a', '3', '0'),
                                                   ('c', '3', '1')]
  clip_feats = np.load(out / 'clip_features.npy')
  video_feats = np.load(out / 'video_features.npy')
  assert clip_feats.shape == (6, channels)
  assert video_feats.shape == (2, channels)
  for name, rows, length in (('a.mp4', slice(0, 3), 20),
                             ('c.mp4', slice(3, 6), 12)):
    jpegs = video_sources.decode_video_file(str(root / name)).frames_jpeg
    assert len(jpegs) == length
    _, indices = feature_extraction.clip_indices(length, 8, 2, 3)
    np.testing.assert_allclose(clip_feats[rows],
                               _reference(model.backbone, jpegs, indices),
                               atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(video_feats[0], clip_feats[:3].mean(0),
                             atol=1e-6)
  np.testing.assert_allclose(video_feats[1], clip_feats[3:].mean(0),
                             atol=1e-6)


def test_records_and_a_damaged_record_file(checkpoint, tmp_path, capsys):
  model, model_dir = checkpoint
  good = str(tmp_path / 'clips-0.tfrecord')
  examples = []
  with tf.io.TFRecordWriter(good) as writer:
    for vid, video in demo_data.iter_demo_videos(0, 'val', 2):
      example = demo_data.video_to_sequence_example(vid, video, 'c')
      examples.append((vid, example))
      writer.write(example.SerializeToString())
  (tmp_path / 'clips-1.tfrecord').write_bytes(b'not a tfrecord file' * 10)
  out = tmp_path / 'features'
  with pytest.raises(SystemExit) as e:
    extract_features.main(
        ['extract_features', f'--checkpoint={model_dir}',
         f'--input_path={tmp_path / "clips-*.tfrecord"}',
         f'--output_dir={out}', '--num_clips=2', '--no_progress',
         f'--params_override={OVERRIDE}'])
  assert e.value.code == 0
  assert capsys.readouterr().err == ''
  # The ETA's total: records are counted first; a damaged file: unknown.
  assert extract_features._count(good) == 2
  assert extract_features._count(str(tmp_path / 'clips-*.tfrecord')) is None
  failures = _rows(out / 'failures.csv')
  assert [os.path.basename(r['file']) for r in failures] == [
      'clips-1.tfrecord']
  videos = _rows(out / 'videos.csv')
  assert [r['video_id'] for r in videos] == [vid for vid, _ in examples]
  assert videos[1]['file'] == f'{good} record 1'
  clip_feats = np.load(out / 'clip_features.npy')
  for i, (_, example) in enumerate(examples):
    jpegs = list(example.feature_lists.feature_list['image/encoded'].feature)
    jpegs = [f.bytes_list.value[0] for f in jpegs]
    _, indices = feature_extraction.clip_indices(len(jpegs), 8, 2, 2)
    np.testing.assert_allclose(clip_feats[2 * i:2 * i + 2],
                               _reference(model.backbone, jpegs, indices),
                               atol=1e-5, rtol=1e-5)


def test_user_errors(checkpoint, tmp_path, capsys):
  _, model_dir = checkpoint
  for extra, message in (
      ([f'--input_path={tmp_path / "none-*.tfrecord"}'], 'matches no file'),
      ([f'--input_path={tmp_path}', '--endpoint=res9'],
       "--endpoint='res9' is not an endpoint")):
    with pytest.raises(SystemExit) as e:
      extract_features.main(
          ['extract_features', f'--checkpoint={model_dir}',
           f'--output_dir={tmp_path / "out"}', f'--params_override={OVERRIDE}']
          + extra)
    assert e.value.code == errors.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err
