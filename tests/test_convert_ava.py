"""Tests of the AVA / AVA-Kinetics keyframe converter (dataloaders/conversion/ava_*.py)."""

import csv
import glob
import os

import av
import numpy as np
import pytest
import tensorflow as tf

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import ava_io
from official_projects_const_cl.dataloaders import demo_data
from official_projects_const_cl.dataloaders import features
from official_projects_const_cl.dataloaders.conversion import ava_converter
from official_projects_const_cl.dataloaders.conversion import ava_records
from official_projects_const_cl.dataloaders.conversion import ava_sources
from official_projects_const_cl.dataloaders.conversion import tfrecord_writer
from official_projects_const_cl.dataloaders.conversion import video_sources
from official_projects_const_cl.dataloaders.conversion import video_splits
from official_projects_const_cl.tools import convert_ava

# Frame i of every fixture is flat gray 10 + 6 i: the gray level of a stored
# frame says which source frame it is.
GRAY0, GRAY_STEP = 10, 6
SIZE = 32

LABEL_MAP = '''# Test actions.
item {
  name: "walk"
  id: 3
}
item { name: "talk (to someone)" id: 5 }
item {
  name: "sit"
  id: 7
}
'''


def _gray_frame(i, height=SIZE, width=SIZE):
  return np.full((height, width, 3), GRAY0 + GRAY_STEP * i, np.uint8)


def _frame_ids(example):
  """Source frame index of each stored frame, from its gray level."""
  means = example['frames'].reshape(len(example['frames']), -1).mean(-1)
  ids = np.round((means - GRAY0) / GRAY_STEP).astype(int)
  np.testing.assert_allclose(means, GRAY0 + GRAY_STEP * ids, atol=2)
  return ids.tolist()


def _write_frames(folder, name, num_frames, height=SIZE, width=SIZE):
  os.makedirs(folder / name)
  for i in range(num_frames):  # SlowFast layout: <name>_%06d.jpg, 1-based.
    (folder / name / f'{name}_{i + 1:06d}.jpg').write_bytes(
        tfrecord_writer.encode_jpeg(_gray_frame(i, height, width), 95))


def _write_video(path, num_frames, rate=10, gop=5):
  with av.open(str(path), mode='w') as container:
    stream = container.add_stream('libx264', rate=rate)
    stream.width = stream.height = SIZE
    stream.pix_fmt = 'yuv420p'
    stream.codec_context.gop_size = gop
    for i in range(num_frames):
      frame = av.VideoFrame.from_ndarray(_gray_frame(i), format='rgb24')
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def _write(path, text):
  path.write_text(text)
  return str(path)


def _examples(prefix):
  out = list(ava_records.iter_keyframe_examples(prefix + '-*.tfrecord'))
  return {(e['media_id'], e['timestamp']): e for e in out}


def _bad_rows(report):
  with open(report.bad_rows_csv, newline='') as f:
    rows = list(csv.reader(f))
  assert rows[0] == ['file', 'line', 'reason']
  return {(os.path.basename(file), int(line)): reason
          for file, line, reason in rows[1:]}


# Annotation lines (1-based line numbers matter: the bad rows name them).
ANNOTATIONS = '''\
vidA,0901,0.1,0.2,0.5,0.9,3,1
vidA,0901,0.1001,0.2,0.5,0.9,5,1
vidA,0901,0.6,0.1,1.004,0.8,7,2
vidA,0901,0.6,0.1,1.004,0.8,99,2
vidA,0901,0.3,0.3,0.4,0.4,99,4
vidA,0903,0.2,0.2,0.7,0.7,3,1
vidA,0902,0.2,0.2,0.7,0.7,3,1
vidA,0901,0.1,0.2,1.3,0.9,3,3
vidA,0901,0.5,0.2,0.4,0.9,3,3
vidA,0901,0.1,0.2,0.5
vidA,abc,0.1,0.2,0.5,0.9,3,1
ghost,0901,0.1,0.1,0.2,0.2,3,1
vidA,0901,0.1,0.2,0.5,0.9,3,1
vidA,0904.5,0.1,0.1,0.2,0.2,3,1
vidA,0905,0.1,0.1,0.2,0.2,3,1
vidA,0904,0.1,0.1,0.2,0.2,99,1
vidA,0903,0.25,0.2,0.7,0.7,5,1
vidA,0903,0.4,0.5,0.6,0.9,5,6
'''

DETECTIONS = '''\
vidA,0901,0.1,0.2,0.5,0.9,,0.95
vidA,0901,0.1,0.2,0.5,0.9,,0.97
vidA,0901,0.55,0.1,1.0,0.8,,0.6
vidA,0900,0.3,0.3,0.6,0.6,,0.8
vidA,0902,0.3,0.3,0.6,0.6,,0.8
vidA,0901,0.1,0.2,0.5,0.9,,high
'''


@pytest.fixture
def ava(tmp_path):
  """40 frames of vidA at 10 fps, cut at 900 s; CSVs and label map."""
  frames = tmp_path / 'frames'
  _write_frames(frames, 'vidA', 40)
  return {
      'frames_dir': str(frames),
      'annotations': _write(tmp_path / 'ava_val_v2.2.csv', ANNOTATIONS),
      'excluded_timestamps': _write(tmp_path / 'excluded.csv',
                                    'vidA,0902\nvidA\n'),
      'label_map': _write(tmp_path / 'actions.pbtxt', LABEL_MAP),
      'detections': _write(tmp_path / 'dets.csv', DETECTIONS),
  }


def test_clip_frame_indices_centred_strided_clamped():
  assert ava_sources.clip_frame_indices(10, 8, 4) == [0, 0, 2, 6, 10, 14, 18,
                                                      22]
  assert ava_sources.clip_frame_indices(30, 8, 4, 40) == [14, 18, 22, 26, 30,
                                                          34, 38, 39]
  # SlowFast AVA default: 32 frames at stride 2, keyframe at position 16.
  indices = ava_sources.clip_frame_indices(1000, 32, 2)
  assert indices[16] == 1000 and indices[0] == 968 and indices[-1] == 1030


def test_frames_dir_conversion_groups_filters_and_reports(ava, tmp_path):
  prefix = str(tmp_path / 'out' / 'val')
  report = ava_converter.convert_ava(
      ava['annotations'], prefix, frames_dir=ava['frames_dir'],
      label_map=ava['label_map'],
      excluded_timestamps=ava['excluded_timestamps'],
      detections=ava['detections'], fps=10, timestamp_offset_s=900,
      num_frames=8, frame_stride=4, num_shards=2, log_every=1)

  examples = _examples(prefix)
  # 901 and 903 (GT), 900 (detections only); 902 excluded, 904 only has an
  # action outside the label map, 905 is after the 40 frames.
  assert sorted(examples) == [('vidA', 900), ('vidA', 901), ('vidA', 903)]
  assert report.keyframes_written == 3 and report.videos_written == 1
  assert report.output_paths == [prefix + '-00000-of-00002.tfrecord',
                                 prefix + '-00001-of-00002.tfrecord']
  assert report.keyframes_skipped == {
      'excluded_timestamp': 1, 'unknown_video': 1,
      'keyframe_outside_video': 1, 'no_action_in_label_map': 1}
  assert report.rows_skipped == {
      'action_not_in_label_map': 3, 'box_outside_image': 1,
      'degenerate_box': 1, 'wrong_column_count': 2, 'non_numeric': 2,
      'duplicate_label': 1, 'non_integer_timestamp': 1,
      'duplicate_detection_merged': 1}
  assert report.rows_read == 13  # Well-formed annotation rows.

  # Clips: 8 frames at stride 4 centred on k = (t - 900) * 10, clamped.
  ex = examples[('vidA', 901)]
  assert _frame_ids(ex) == [0, 0, 2, 6, 10, 14, 18, 22]
  assert _frame_ids(examples[('vidA', 903)]) == [14, 18, 22, 26, 30, 34, 38,
                                                 39]
  assert _frame_ids(examples[('vidA', 900)]) == [0, 0, 0, 0, 0, 4, 8, 12]
  assert ex['keyframe_index'] == 4 and ex['frame_stride'] == 4
  assert ex['frame_rate'] == pytest.approx(2.5)  # Stored frames: 10 / 4.
  assert (ex['height'], ex['width']) == (SIZE, SIZE)
  assert ex['frames'].shape == (8, SIZE, SIZE, 3)

  # Multi-label grouping: person 1 (rows 1-2, boxes equal to 1e-3) has two
  # labels; person 2's box is clipped to x2 = 1; action 99 and person 4 (only
  # action 99) are dropped.
  np.testing.assert_allclose(ex['gt_boxes'], [[0.2, 0.1, 0.9, 0.5],
                                              [0.1, 0.6, 0.8, 1.0]], atol=1e-6)
  assert ex['person_ids'].tolist() == [1, 2]
  assert ex['labels_per_box'] == [[3, 5], [7]]
  assert ex['label_box_index'].tolist() == [0, 0, 1]
  assert ex['label_index'].tolist() == [3, 5, 7]
  # Person 1 at 903 with two different boxes: two boxes; person 6 a third.
  ex903 = examples[('vidA', 903)]
  assert ex903['person_ids'].tolist() == [1, 1, 6]
  assert ex903['labels_per_box'] == [[3], [5], [5]]
  np.testing.assert_allclose(ex903['gt_boxes'][1], [0.2, 0.25, 0.7, 0.7],
                             atol=1e-6)
  # Detections: the repeated box keeps its best score.
  np.testing.assert_allclose(ex['det_boxes'], [[0.2, 0.1, 0.9, 0.5],
                                               [0.1, 0.55, 0.8, 1.0]],
                             atol=1e-6)
  np.testing.assert_allclose(ex['det_scores'], [0.97, 0.6], atol=1e-6)
  assert ex903['det_boxes'].shape == (0, 4)
  only_det = examples[('vidA', 900)]
  assert only_det['gt_boxes'].shape == (0, 4) and not only_det['labels_per_box']
  np.testing.assert_allclose(only_det['det_scores'], [0.8], atol=1e-6)
  assert report.boxes == 5 and report.labels == 6 and report.detections == 3

  bad = _bad_rows(report)
  ann, dets, excl = 'ava_val_v2.2.csv', 'dets.csv', 'excluded.csv'
  assert bad[(ann, 8)].startswith('box_outside_image')
  assert bad[(ann, 9)].startswith('degenerate_box')
  assert bad[(ann, 10)].startswith('wrong_column_count')
  assert bad[(ann, 11)].startswith('non_numeric')
  assert bad[(ann, 12)].startswith('unknown_video') and 'ghost' in bad[
      (ann, 12)]
  assert bad[(ann, 13)].startswith('duplicate_label')
  assert bad[(ann, 14)].startswith('non_integer_timestamp')
  assert bad[(ann, 15)].startswith('keyframe_outside_video')
  assert bad[(dets, 6)].startswith('non_numeric')
  assert bad[(excl, 2)].startswith('wrong_column_count')
  # Label-map drops and excluded keyframes are counted, not bad rows.
  assert (ann, 4) not in bad and (ann, 7) not in bad and (ann, 16) not in bad
  assert len(bad) == 10
  summary = report.summary()
  assert 'Wrote 3 keyframes of 1 videos (5 boxes, 6 labels, 3 detections)' in (
      summary)
  assert 'excluded_timestamp 1' in summary and 'box_outside_image 1' in summary

  # Model Garden / TF parsing sees the declared types.
  raw = next(iter(tf.data.TFRecordDataset(report.output_paths[0])))
  context, sequence = tf.io.parse_single_sequence_example(
      raw, context_features={
          features.KEYFRAME_TIMESTAMP_KEY: tf.io.FixedLenFeature([], tf.int64),
          features.KEYFRAME_INDEX_KEY: tf.io.FixedLenFeature([], tf.int64),
          features.CLIP_STRIDE_KEY: tf.io.FixedLenFeature([], tf.int64),
          features.MEDIA_ID_KEY: tf.io.FixedLenFeature([], tf.string),
          features.FRAME_RATE_KEY: tf.io.FixedLenFeature([], tf.float32),
          features.GT_PERSON_KEY: tf.io.VarLenFeature(tf.int64),
          features.GT_LABEL_KEY: tf.io.VarLenFeature(tf.int64),
          features.GT_LABEL_BOX_KEY: tf.io.VarLenFeature(tf.int64),
          features.DET_SCORE_KEY: tf.io.VarLenFeature(tf.float32),
          **{k: tf.io.VarLenFeature(tf.float32)
             for k in features.GT_BBOX_KEYS + features.DET_BBOX_KEYS}},
      sequence_features={features.IMAGE_KEY: tf.io.FixedLenSequenceFeature(
          [], tf.string)})
  assert context[features.MEDIA_ID_KEY].numpy() == b'vidA'
  assert sequence[features.IMAGE_KEY].shape == (8,)


def test_gt_keyframes_only_and_no_bad_rows_csv(ava, tmp_path):
  prefix = str(tmp_path / 'gt_only')
  stale = prefix + ava_converter.BAD_ROWS_SUFFIX
  open(stale, 'w').close()
  clean = _write(tmp_path / 'clean.csv',
                 'vidA,0901,0.1,0.2,0.5,0.9,3,1\nvidA,0903,0.1,0.2,0.5,0.9,7,'
                 '2\n')
  dets = _write(tmp_path / 'clean_dets.csv',
                'vidA,0901,0.1,0.2,0.5,0.9,,0.9\nvidA,0900,0.3,0.3,0.6,0.6,,'
                '0.8\n')
  report = ava_converter.convert_ava(
      clean, prefix, frames_dir=ava['frames_dir'], label_map=ava['label_map'],
      detections=dets, detection_keyframes=False, fps=10,
      timestamp_offset_s=900, num_frames=4, frame_stride=1, short_side=16)
  examples = _examples(prefix)
  assert sorted(examples) == [('vidA', 901), ('vidA', 903)]
  assert report.rows_skipped == {'detection_without_gt_keyframe': 1}
  assert report.bad_rows_csv is None and not os.path.exists(stale)
  ex = examples[('vidA', 901)]
  assert _frame_ids(ex) == [8, 9, 10, 11] and ex['keyframe_index'] == 2
  assert ex['frames'].shape == (4, 16, 16, 3)  # short_side.
  np.testing.assert_allclose(ex['det_scores'], [0.9], atol=1e-6)


def test_unreadable_frame_named_and_others_converted(ava, tmp_path):
  os.remove(os.path.join(ava['frames_dir'], 'vidA', 'vidA_000031.jpg'))
  bad_jpeg = os.path.join(ava['frames_dir'], 'vidA', 'vidA_000007.jpg')
  with open(bad_jpeg, 'r+b') as f:
    f.truncate(30)
  csv_path = _write(tmp_path / 'a.csv',
                    'vidA,0900,0.1,0.1,0.2,0.2,3,1\n'  # Needs frame 6 (bad).
                    'vidA,0901,0.1,0.1,0.2,0.2,3,1\n'  # Frames 4-16: fine.
                    'vidA,0903,0.1,0.1,0.2,0.2,3,1\n')  # Needs frame 30.
  report = ava_converter.convert_ava(
      csv_path, str(tmp_path / 'o'), frames_dir=ava['frames_dir'], fps=10,
      timestamp_offset_s=900, num_frames=5, frame_stride=3)
  assert report.keyframes_written == 1
  assert report.keyframes_skipped == {'unreadable_frame': 2}
  bad = _bad_rows(report)
  assert 'vidA_000007.jpg' in bad[('a.csv', 1)]
  assert 'vidA_000031.jpg' in bad[('a.csv', 3)]
  assert _frame_ids(next(iter(_examples(str(tmp_path / 'o')).values()))) == [
      4, 7, 10, 13, 16]


def test_videos_seek_resample_and_clamp(tmp_path, monkeypatch):
  videos = tmp_path / 'videos'
  videos.mkdir()
  _write_video(videos / 'movie.mp4', 33)  # 10 fps, frames 0..32.
  csv_path = _write(tmp_path / 'a.csv',
                    'movie,0901,0.1,0.1,0.5,0.5,3,0\n'
                    'movie,0903,0.1,0.1,0.5,0.5,5,0\n'
                    'movie,0904,0.1,0.1,0.5,0.5,5,0\n')  # Last frame: 3.2 s.
  calls = []
  real = video_sources.iter_video_frames

  def recording(path, start_s=None):
    calls.append({'start_s': start_s, 'times': []})
    for t, frame in real(path, start_s):
      calls[-1]['times'].append(t)
      yield t, frame

  monkeypatch.setattr(video_sources, 'iter_video_frames', recording)
  prefix = str(tmp_path / 'v')
  report = ava_converter.convert_ava(
      csv_path, prefix, videos_dir=str(videos), fps=10,
      timestamp_offset_s=900, num_frames=4, frame_stride=3, seek_gap_s=0.5)
  examples = _examples(prefix)
  assert sorted(examples) == [('movie', 901), ('movie', 903)]
  assert _frame_ids(examples[('movie', 901)]) == [4, 7, 10, 13]
  # k = 30: frames 24, 27, 30, 33 -> 33 is past the end: the last frame.
  assert _frame_ids(examples[('movie', 903)]) == [24, 27, 30, 32]
  assert report.keyframes_skipped == {'keyframe_outside_video': 1}
  # Two runs (the clips are 1.1 s apart > seek_gap_s): the second one seeks
  # instead of decoding from the start, and no frame is decoded twice.
  assert [c['start_s'] for c in calls] == pytest.approx([0.4, 2.4])
  assert 0 < calls[1]['times'][0] <= 2.4 + 1e-6
  assert calls[0]['times'][-1] < 1.5
  assert sum(len(c['times']) for c in calls) < 33

  # Default gap: one pass for all keyframes; resampled to 5 fps, source
  # frame i is video frame 2 i.
  calls.clear()
  prefix = str(tmp_path / 'v5')
  ava_converter.convert_ava(csv_path, prefix, videos_dir=str(videos), fps=5,
                          timestamp_offset_s=900, num_frames=4,
                          frame_stride=2)
  examples = _examples(prefix)
  assert len(calls) == 1
  assert _frame_ids(examples[('movie', 901)]) == [2, 6, 10, 14]
  assert _frame_ids(examples[('movie', 903)]) == [22, 26, 30, 32]
  assert examples[('movie', 903)]['frame_rate'] == pytest.approx(2.5)


def test_kinetics_clip_names_give_offsets(tmp_path):
  videos = tmp_path / 'kinetics' / 'abseiling'
  videos.mkdir(parents=True)
  name = video_splits.kinetics_clip_name('yt_a-b', 10, 14)
  _write_video(videos / f'{name}.mp4', 40)
  _write_video(tmp_path / 'kinetics' / 'other.mp4', 10)
  csv_path = _write(tmp_path / 'kinetics_val_v1.0.csv',
                    'yt_a-b,0012,0.2,0.2,0.6,0.6,7,0\n'
                    'yt_a-b,0030,0.2,0.2,0.6,0.6,7,0\n')
  prefix = str(tmp_path / 'k')
  # The offset flag applies to other sources, not to Kinetics-named clips.
  report = ava_converter.convert_ava(
      csv_path, prefix, videos_dir=str(tmp_path / 'kinetics'), fps=10,
      timestamp_offset_s=900, num_frames=3, frame_stride=5)
  examples = _examples(prefix)
  assert list(examples) == [('yt_a-b', 12)]
  assert _frame_ids(examples[('yt_a-b', 12)]) == [15, 20, 25]
  assert report.keyframes_skipped == {'keyframe_outside_video': 1}
  reason = _bad_rows(report)[('kinetics_val_v1.0.csv', 2)]
  assert reason.startswith('keyframe_outside_video') and 'frame 200' in reason


def test_demo_world_records(tmp_path):
  paths = demo_data.generate_demo_dataset(str(tmp_path / 'demo'), num_train=4,
                                          num_val=2, num_shards=1)
  prefix = str(tmp_path / 'ava' / 'train')
  report = ava_converter.convert_ava(
      paths['ava_train_csv'], prefix, video_records=paths['train_pattern'],
      label_map=paths['ava_label_map'], num_frames=8, frame_stride=3,
      num_shards=2)
  with open(paths['ava_train_csv']) as f:
    rows = [line.split(',') for line in f.read().splitlines()]
  expected = {}
  for vid, ts, x1, y1, x2, y2, action, person in rows:
    expected.setdefault((vid, int(ts)), []).append(
        (int(person), [float(y1), float(x1), float(y2), float(x2)],
         int(action)))
  examples = _examples(prefix)
  assert set(examples) == set(expected)  # One per (video, keyframe).
  assert report.keyframes_written == len(expected) > 4
  assert report.boxes == report.labels == len(rows)
  assert not report.keyframes_skipped and not report.bad_rows

  records = {}
  for raw in tf.data.TFRecordDataset(paths['train']).as_numpy_iterator():
    ex = tf.train.SequenceExample.FromString(raw)
    vid = ex.context.feature[features.MEDIA_ID_KEY].bytes_list.value[0]
    records[vid.decode()] = [
        f.bytes_list.value[0] for f in
        ex.feature_lists.feature_list[features.IMAGE_KEY].feature]
  for (vid, ts), ex in examples.items():
    by_person = sorted(expected[(vid, ts)])
    order = np.argsort(ex['person_ids'])
    assert ex['person_ids'][order].tolist() == [p for p, _, _ in by_person]
    np.testing.assert_allclose(ex['gt_boxes'][order],
                               [b for _, b, _ in by_person], atol=1e-6)
    assert [ex['labels_per_box'][i] for i in order] == [[a] for _, _, a in
                                                        by_person]
    # Demo: 10 fps, frame k = 10 ts; the record's JPEGs are stored as is.
    frames = records[vid]
    indices = ava_sources.clip_frame_indices(10 * ts, 8, 3, len(frames))
    assert ex['frames_jpeg'] == [frames[i] for i in indices]
    assert ex['frame_rate'] == pytest.approx(10 / 3)
    assert ex['keyframe_index'] == 4


def test_label_map_variants(tmp_path):
  path = _write(tmp_path / 'ava_action_list_v2.2.pbtxt',
                'label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n'
                '  label_type: PERSON_MOVEMENT\n}\n'
                'label { display_name: "crawl" label_id: 2 }\n')
  assert ava_io.label_names(path) == {1: 'bend/bow (at the waist)',
                                              2: 'crawl'}
  assert ava_io.label_names(
      _write(tmp_path / 'lm.pbtxt', LABEL_MAP)) == {
          3: 'walk', 5: 'talk (to someone)', 7: 'sit'}
  with pytest.raises(ValueError, match='twice'):
    ava_io.label_names(_write(tmp_path / 'dup.pbtxt',
                                      'item { name: "a" id: 1 }\n'
                                      'item { name: "b" id: 1 }\n'))
  with pytest.raises(ValueError, match='no "item'):
    ava_io.label_names(_write(tmp_path / 'empty.pbtxt', 'nothing'))


def test_wrong_paths_and_unusable_inputs_raise(ava, tmp_path):
  out = str(tmp_path / 'o')
  with pytest.raises(FileNotFoundError, match='missing.csv'):
    ava_converter.convert_ava(str(tmp_path / 'missing.csv'), out,
                            frames_dir=ava['frames_dir'])
  with pytest.raises(FileNotFoundError, match='no_frames'):
    ava_converter.convert_ava(ava['annotations'], out,
                            frames_dir=str(tmp_path / 'no_frames'))
  with pytest.raises(FileNotFoundError, match='nolabels.pbtxt'):
    ava_converter.convert_ava(ava['annotations'], out,
                            frames_dir=ava['frames_dir'],
                            label_map=str(tmp_path / 'nolabels.pbtxt'))
  with pytest.raises(FileNotFoundError, match='No TFRecord file matches'):
    ava_converter.convert_ava(ava['annotations'], out,
                            video_records=str(tmp_path / 'x-*.tfrecord'))
  with pytest.raises(ValueError, match='exactly one video source'):
    ava_converter.convert_ava(ava['annotations'], out,
                            frames_dir=ava['frames_dir'],
                            videos_dir=ava['frames_dir'])
  # A detections file given as annotations: no valid row, named.
  with pytest.raises(ValueError, match='dets.csv has no valid row.*line 1'):
    ava_converter.convert_ava(ava['detections'], out,
                            frames_dir=ava['frames_dir'])
  with pytest.raises(ValueError, match='None of the action ids'):
    ava_converter.convert_ava(
        _write(tmp_path / 'other.csv', 'vidA,0901,0.1,0.1,0.2,0.2,42,1\n'),
        out, frames_dir=ava['frames_dir'], label_map=ava['label_map'])


def test_cli(ava, tmp_path, capsys):
  prefix = str(tmp_path / 'cli' / 'val')
  report = convert_ava.cli([
      f'--annotations={ava["annotations"]}',
      f'--frames_dir={ava["frames_dir"]}',
      f'--label_map={ava["label_map"]}',
      f'--excluded_timestamps={ava["excluded_timestamps"]}',
      f'--detections={ava["detections"]}', '--no_detection_keyframes',
      '--fps=10', '--timestamp_offset_s=900', '--num_frames=4',
      '--frame_stride=2', f'--output_prefix={prefix}'])
  assert report.keyframes_written == 2
  out = capsys.readouterr().out
  assert 'Wrote 2 keyframes' in out and 'bad rows listed in' in out
  assert os.path.exists(prefix + '_bad_rows.csv')
  assert glob.glob(prefix + '-*.tfrecord') == [prefix +
                                              '-00000-of-00001.tfrecord']
  with pytest.raises(errors.UserError, match='does not exist'):
    convert_ava.cli(['--annotations=/nonexistent.csv', '--frames_dir=.',
                     f'--output_prefix={prefix}'])
  with pytest.raises(SystemExit) as status:
    convert_ava.main(['convert_ava', '--annotations=/nonexistent.csv',
                      '--frames_dir=.', f'--output_prefix={prefix}'])
  assert status.value.code == 2
  err = capsys.readouterr().err
  assert 'ERROR: ' in err and '/nonexistent.csv' in err
  assert 'Traceback' not in err
