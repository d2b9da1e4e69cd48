"""Writes the embedded demo dataset (docs/demo.md) as clip TFRecords.

`generate_demo_dataset` renders the videos of `demo_world` and writes

  output_dir/train-0000i-of-0000N.tfrecord   pretraining / probe train split
  output_dir/val-0000i-of-0000N.tfrecord     probe validation split
  output_dir/label_map.txt                   one class name per line
  output_dir/manifest.json                   what was generated (seed, sizes,
                                             world config, format version)
  output_dir/ava_{train,val}.csv, ava_action_list.pbtxt     (write_ava)
  output_dir/got10k_train/, output_dir/otb_val/             (write_tracking)

in the clip SequenceExample format of docs/datasets.md (`image/encoded`
JPEG frames, `clip/label/index`, per-frame `region/bbox/*` ground-truth
object boxes with `region/label/index` = per-frame action id and
`region/track/index` = object id). The same (seed, split, index) always renders the same video, so the AVA
and tracking writers can be fed from the generator or re-rendered later.

`ensure_demo_dataset` is what the demo experiments call: it generates on first
use only, and is safe when several processes call it at once (each renders
into its own temporary directory, which is then atomically renamed).

CLI: `python -m official_projects_const_cl.tools.demo_data --output_dir=...`.
"""

import dataclasses
import json
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from absl import logging

from official_projects_const_cl.configs import demo_paths
from official_projects_const_cl.configs import localization as localization_cfg
from official_projects_const_cl.configs import tracking as tracking_cfg
from official_projects_const_cl.dataloaders import demo_world
from official_projects_const_cl.dataloaders import demo_writers
from official_projects_const_cl.dataloaders.conversion import ava_converter
from official_projects_const_cl.dataloaders.conversion import tfrecord_writer

# The sizes and paths the demo configs use (configs/demo_paths.py).
DEMO_DATA_VERSION = demo_paths.DEMO_DATA_VERSION
DEFAULT_NUM_TRAIN = demo_paths.DEFAULT_NUM_TRAIN
DEFAULT_NUM_VAL = demo_paths.DEFAULT_NUM_VAL
DEFAULT_NUM_SHARDS = demo_paths.DEFAULT_NUM_SHARDS
AVA_RECORDS_DIR = demo_paths.AVA_RECORDS_DIR
TRACKING_DIR = demo_paths.TRACKING_DIR
default_demo_dir = demo_paths.default_demo_dir
MANIFEST = 'manifest.json'
LABEL_MAP = 'label_map.txt'
SPLITS = ('train', 'val')


def media_id(split: str, index: int) -> str:
  return f'demo-{split}-{index:05d}'


def iter_demo_videos(seed: int, split: str, num_videos: int,
                     world_config: Optional[demo_world.DemoWorldConfig] = None
                     ) -> Iterator[Tuple[str, demo_world.DemoVideo]]:
  """Renders the videos of one split, in record order.

  Args:
    seed: dataset seed.
    split: split name ('train', 'val', ...); seeds the split's videos.
    num_videos: how many videos (classes balanced to within one).
    world_config: the world; default `DemoWorldConfig()`.

  Yields:
    (media_id, DemoVideo) pairs.
  """
  cfg = world_config or demo_world.DemoWorldConfig()
  classes = demo_world.class_schedule(seed, split, num_videos, cfg.num_classes)
  for index, class_id in enumerate(classes):
    video = demo_world.render_video(
        demo_world.video_rng(seed, split, index), int(class_id), cfg)
    yield media_id(split, index), video


def video_to_sequence_example(vid: str, video: demo_world.DemoVideo,
                              class_name: str, jpeg_quality: int = 90):
  """The clip record of one demo video (docs/datasets.md layout).

  Args:
    vid: media id.
    video: the rendered video, T frames, K objects.
    class_name: name of `video.class_id`.
    jpeg_quality: JPEG quality of the frames.

  Returns:
    `tf.train.SequenceExample` with T JPEG frames, the class label, K boxes
    per frame (`region/label/index` = action id, `region/track/index` =
    object id) and timestamps.
  """
  num_frames, height, width = video.frames.shape[:3]
  frames = demo_writers.encode_frames(video, jpeg_quality)
  return tfrecord_writer.make_sequence_example(
      frames,
      labels=[video.class_id],
      label_texts=[class_name],
      media_id=vid,
      boxes_per_frame=list(video.boxes),
      box_labels=list(video.actions),
      box_tracks=[video.track_ids] * num_frames,
      timestamps_us=[int(round(t * 1e6 / video.frame_rate))
                     for t in range(num_frames)],
      frame_rate=video.frame_rate,
      height=height,
      width=width)


# ----------------------------------------------------------------------------
# Dataset generation.


def _spec(seed, num_train, num_val, num_shards, world_config, jpeg_quality,
          write_ava, write_tracking) -> Dict[str, object]:
  return {
      'version': DEMO_DATA_VERSION,
      'seed': int(seed),
      'num_train': int(num_train),
      'num_val': int(num_val),
      'num_shards': int(num_shards),
      'jpeg_quality': int(jpeg_quality),
      'write_ava': bool(write_ava),
      'write_tracking': bool(write_tracking),
      'world_config': demo_world.world_summary(world_config),
  }


def _read_manifest(output_dir: str) -> Optional[Dict[str, object]]:
  path = os.path.join(output_dir, MANIFEST)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _spec_differences(old: Dict[str, object], new: Dict[str, object]
                      ) -> List[str]:
  diffs = []
  for key in sorted(set(old) | set(new)):
    if key == 'world_config' and isinstance(old.get(key), dict):
      for sub in sorted(set(old[key]) | set(new.get(key, {}))):
        if old[key].get(sub) != new[key].get(sub):
          diffs.append(f'world_config.{sub}: {old[key].get(sub)!r} -> '
                       f'{new[key].get(sub)!r}')
    elif old.get(key) != new.get(key):
      diffs.append(f'{key}: {old.get(key)!r} -> {new.get(key)!r}')
  return diffs


def _paths(output_dir: str, manifest: Dict[str, object]) -> Dict[str, object]:
  """Absolute paths of everything listed in a manifest."""
  out = {'output_dir': output_dir,
         'manifest': os.path.join(output_dir, MANIFEST),
         'label_map': os.path.join(output_dir, LABEL_MAP)}
  for split in SPLITS:
    out[split] = [os.path.join(output_dir, p)
                  for p in manifest['files'][split]]
    out[f'{split}_pattern'] = os.path.join(output_dir, f'{split}-*.tfrecord')
  for key, rel in manifest['files'].get('extras', {}).items():
    out[key] = os.path.join(output_dir, rel)
  return out


def _write_all(work_dir: str, spec: Dict[str, object],
               cfg: demo_world.DemoWorldConfig) -> Dict[str, object]:
  """Renders and writes every file of the dataset into `work_dir`."""
  names = demo_world.class_names(cfg)
  files = {'extras': {}}
  counts = {}
  start = time.time()
  for split in SPLITS:
    num = spec[f'num_{split}']
    collected = []  # Objects' labels only; frames are not kept in memory.
    prefix = os.path.join(work_dir, split)
    class_counts = [0] * cfg.num_classes
    with tfrecord_writer.ShardedWriter(prefix, spec['num_shards']) as writer:
      for vid, video in iter_demo_videos(spec['seed'], split, num, cfg):
        writer.write(video_to_sequence_example(
            vid, video, names[video.class_id], spec['jpeg_quality']))
        class_counts[video.class_id] += 1
        if spec['write_ava']:
          collected.append((vid, dataclasses.replace(video, frames=(
              video.frames[:, :1, :1]))))
    files[split] = [os.path.basename(p) for p in writer.paths]
    counts[split] = class_counts
    if spec['write_ava']:
      csv = f'ava_{split}.csv'
      demo_writers.write_ava_csv(collected, os.path.join(work_dir, csv))
      files['extras'][f'ava_{split}_csv'] = csv
    logging.info('Demo data: wrote %d %s videos in %.1fs.', num, split,
                 time.time() - start)
  if spec['write_ava']:
    demo_writers.write_ava_label_map(
        os.path.join(work_dir, 'ava_action_list.pbtxt'))
    files['extras']['ava_label_map'] = 'ava_action_list.pbtxt'
  if spec['write_tracking']:
    # Paper protocol: fine-tune on GOT-10k(-style) train, evaluate on OTB.
    for split, layout, folder in (('train', 'got10k', 'got10k_train'),
                                  ('val', 'otb', 'otb_val')):
      demo_writers.write_tracking_sequences(
          iter_demo_videos(spec['seed'], split, spec[f'num_{split}'], cfg),
          os.path.join(work_dir, folder), layout=layout,
          jpeg_quality=spec['jpeg_quality'])
      files['extras'][f'{layout}_{split}'] = folder
  with open(os.path.join(work_dir, LABEL_MAP), 'w') as f:
    f.write('\n'.join(names) + '\n')
  manifest = dict(spec)
  manifest.update({
      'class_names': names,
      'class_counts': counts,
      'files': files,
      'generation_seconds': round(time.time() - start, 2),
  })
  with open(os.path.join(work_dir, MANIFEST), 'w') as f:
    json.dump(manifest, f, indent=2, sort_keys=True)
  return manifest


def generate_demo_dataset(
    output_dir: str,
    seed: int = 0,
    num_train: int = DEFAULT_NUM_TRAIN,
    num_val: int = DEFAULT_NUM_VAL,
    num_shards: int = DEFAULT_NUM_SHARDS,
    world_config: Optional[demo_world.DemoWorldConfig] = None,
    jpeg_quality: int = 90,
    write_ava: bool = True,
    write_tracking: bool = False,
    overwrite: bool = False,
) -> Dict[str, object]:
  """Generates the demo dataset into `output_dir` (a no-op if already there).

  Args:
    output_dir: dataset folder (created; its parent must be writable).
    seed: dataset seed; the same arguments give byte-identical files.
    num_train: training videos (classes balanced to within one).
    num_val: validation videos.
    num_shards: TFRecord shards per split.
    world_config: `DemoWorldConfig`; default `DemoWorldConfig()`.
    jpeg_quality: JPEG quality of the frames.
    write_ava: also write AVA-style keyframe CSVs and the action label map.
    write_tracking: also write GOT-10k-style (train) and OTB-style (val)
      tracking sequences of the main objects.
    overwrite: replace a dataset generated with other arguments; otherwise
      that is an error.

  Returns:
    Dict with 'output_dir', 'train' / 'val' (lists of shard paths),
    'train_pattern' / 'val_pattern' (globs), 'label_map', 'manifest' and,
    when written, 'ava_train_csv', 'ava_val_csv', 'ava_label_map',
    'got10k_train', 'otb_val'.

  Raises:
    ValueError: if `output_dir` holds another dataset (and not overwrite) or
      something that is not a demo dataset.
  """
  cfg = world_config or demo_world.DemoWorldConfig()
  if num_train < 1 or num_val < 0 or num_shards < 1:
    raise ValueError('Need num_train >= 1, num_val >= 0 and num_shards >= 1, '
                     f'got {num_train}, {num_val}, {num_shards}.')
  spec = _spec(seed, num_train, num_val, num_shards, cfg, jpeg_quality,
               write_ava, write_tracking)
  output_dir = os.path.abspath(os.path.expanduser(output_dir))

  def existing_or_error() -> Optional[Dict[str, object]]:
    """The paths of a matching dataset at output_dir, None if absent."""
    if not os.path.exists(output_dir):
      return None
    manifest = _read_manifest(output_dir)
    if manifest is None:
      if os.path.isdir(output_dir) and not os.listdir(output_dir):
        return None  # An empty folder is replaced by the rename below.
      raise ValueError(f'{output_dir} exists but has no {MANIFEST}: it is not '
                       'a demo dataset; choose an empty or new folder.')
    old_spec = {k: manifest.get(k) for k in spec}
    diffs = _spec_differences(old_spec, spec)
    if not diffs:
      return _paths(output_dir, manifest)
    if overwrite:
      return None
    raise ValueError(
        f'{output_dir} holds a demo dataset generated with other arguments ('
        + '; '.join(diffs) + '). Pass overwrite=True (CLI --overwrite) to '
        'regenerate it, or use another output_dir.')

  found = existing_or_error()
  if found is not None:
    logging.info('Demo data: %s is up to date.', output_dir)
    return found

  parent = os.path.dirname(output_dir)
  os.makedirs(parent, exist_ok=True)
  work_dir = tempfile.mkdtemp(
      prefix=f'.{os.path.basename(output_dir)}.tmp-', dir=parent)
  try:
    logging.info('Demo data: generating %d train + %d val videos into %s.',
                 num_train, num_val, output_dir)
    manifest = _write_all(work_dir, spec, cfg)
    if overwrite and _read_manifest(output_dir) is not None:
      found = existing_or_error()  # Another process may have just made it.
      if found is not None:
        return found
      trash = tempfile.mkdtemp(
          prefix=f'.{os.path.basename(output_dir)}.old-', dir=parent)
      os.rename(output_dir, os.path.join(trash, 'old'))
      shutil.rmtree(trash, ignore_errors=True)
    try:
      os.rename(work_dir, output_dir)  # Atomic; replaces an empty folder.
    except OSError:
      # Another process finished first: use its dataset if it is ours.
      found = existing_or_error()
      if found is None:
        raise
      return found
    logging.info('Demo data: %s ready (%.1fs).', output_dir,
                 manifest['generation_seconds'])
    return _paths(output_dir, manifest)
  finally:
    if os.path.exists(work_dir):
      shutil.rmtree(work_dir, ignore_errors=True)


def ensure_demo_dataset(output_dir: str, **kwargs) -> Dict[str, object]:
  """Generates the demo dataset on first use; returns its paths.

  Safe to call from several processes at once. Arguments as in
  `generate_demo_dataset`; a dataset already at `output_dir` with other
  arguments is an error (never silently reused or deleted).
  """
  kwargs.setdefault('overwrite', False)
  return generate_demo_dataset(output_dir, **kwargs)


def _build_atomically(output_dir: str, target: str, prefix: str,
                      build: Callable[[str], Dict[str, object]]) -> None:
  """Runs `build(work_dir)` in a temporary folder, then renames it `target`.

  `build` writes its files and returns what goes into `target/done.json`
  (whose presence marks the folder complete). If another process renamed
  its own folder first, ours is discarded.
  """
  done = os.path.join(target, 'done.json')
  work_dir = tempfile.mkdtemp(dir=output_dir, prefix=prefix)
  try:
    summary = build(work_dir)
    with open(os.path.join(work_dir, 'done.json'), 'w') as f:
      json.dump(summary, f)
    try:
      os.rename(work_dir, target)
    except OSError:  # Another process finished first.
      if not os.path.exists(done):
        raise
    logging.info('Demo data: %s ready (%s).', target, summary)
  finally:
    if os.path.exists(work_dir):
      shutil.rmtree(work_dir, ignore_errors=True)


def ensure_demo_ava_records(output_dir: str, num_frames: int = 8,
                            frame_stride: int = 2,
                            **dataset_kwargs) -> Dict[str, object]:
  """Keyframe records of the demo world for action localization.

  Generates the demo world on first use, then converts its AVA-style CSVs
  (`ava_{train,val}.csv`, 1 Hz keyframes) with
  `dataloaders/conversion/ava_converter.py` into
  `output_dir/ava_records/{train,val}-*.tfrecord`: clips of `num_frames`
  frames at `frame_stride` centered on each keyframe. Safe to call from
  several processes at once (atomic rename of a temporary folder).
  `dataset_kwargs` go to `ensure_demo_dataset`.

  Returns:
    The demo dataset's paths plus 'ava_train_records', 'ava_val_records'.

  Raises:
    ValueError: the demo dataset was generated without AVA CSVs, or its
      records were converted with other clip settings.
  """
  paths = dict(ensure_demo_dataset(output_dir, **dataset_kwargs))
  if 'ava_train_csv' not in paths:
    raise ValueError(f'The demo dataset at {output_dir} has no AVA-style CSVs '
                     '(generated with --no_ava); generate it again with them.')
  target = os.path.join(output_dir, AVA_RECORDS_DIR)
  spec = {'num_frames': num_frames, 'frame_stride': frame_stride}
  for split in SPLITS:
    paths[f'ava_{split}_records'] = os.path.join(target,
                                                 f'{split}-*.tfrecord')
  done = os.path.join(target, 'done.json')
  if os.path.exists(done):
    with open(done) as f:
      found = json.load(f)
    if found['spec'] != spec:
      raise ValueError(
          f'{target} holds keyframe records made with {found["spec"]}, not '
          f'{spec}; delete the folder to convert again.')
    return paths

  def build(work_dir):
    keyframes = {}
    for split in SPLITS:
      report = ava_converter.convert_ava(
          annotations=paths[f'ava_{split}_csv'],
          output_prefix=os.path.join(work_dir, split),
          video_records=paths[f'{split}_pattern'],
          label_map=paths['ava_label_map'],
          num_frames=num_frames, frame_stride=frame_stride, num_shards=2)
      keyframes[split] = report.keyframes_written
    return {'spec': spec, 'keyframes': keyframes}

  _build_atomically(output_dir, target, '.ava_records_tmp', build)
  return paths


def ensure_demo_tracking(output_dir: str, **dataset_kwargs
                         ) -> Dict[str, object]:
  """Single-object tracking sequences of the demo world (paper protocol).

  Generates the demo world on first use, then writes, for its main objects,
  `output_dir/tracking/got10k_train/` (GOT-10k layout, from the training
  videos: fine-tuning) and `output_dir/tracking/otb_val/` (OTB layout, from
  the validation videos: evaluation). The videos are re-rendered from the
  dataset's seed and world, so they are the ones in the records. Safe to
  call from several processes at once.

  Returns:
    The demo dataset's paths plus 'tracking_train' and 'tracking_val'.
  """
  paths = dict(ensure_demo_dataset(output_dir, **dataset_kwargs))
  target = os.path.join(output_dir, TRACKING_DIR)
  paths['tracking_train'] = os.path.join(target, 'got10k_train')
  paths['tracking_val'] = os.path.join(target, 'otb_val')
  done = os.path.join(target, 'done.json')
  if os.path.exists(done):
    return paths
  manifest = _read_manifest(output_dir)
  cfg = demo_world.DemoWorldConfig(**{
      k: tuple(v) if isinstance(v, list) else v
      for k, v in manifest['world_config'].items()})

  def build(work_dir):
    counts = {}
    for split, layout, folder in (('train', 'got10k', 'got10k_train'),
                                  ('val', 'otb', 'otb_val')):
      names = demo_writers.write_tracking_sequences(
          iter_demo_videos(manifest['seed'], split, manifest[f'num_{split}'],
                           cfg),
          os.path.join(work_dir, folder), layout=layout,
          jpeg_quality=manifest['jpeg_quality'])
      counts[folder] = len(names)
    return counts

  _build_atomically(output_dir, target, '.tracking_tmp', build)
  return paths


def prepare_data(data: Any) -> Optional[Dict[str, object]]:
  """Makes the demo dataset a data config reads, if it reads one.

  A data config reads the demo dataset when its `demo_data_dir` is set (the
  `*_demo` experiments set it to `demo_paths.default_demo_dir()`). Tracking
  configs get the tracking folders, localization configs the keyframe
  records, the others the clip records; each is made on first use only.

  Args:
    data: a data config (any of the task data configs).

  Returns:
    The demo dataset's paths, or None when `data` reads no demo dataset.
  """
  demo_dir = getattr(data, 'demo_data_dir', '')
  if not demo_dir:
    return None
  if isinstance(data, tracking_cfg.TrackingDataConfig):
    return ensure_demo_tracking(demo_dir)
  if isinstance(data, localization_cfg.LocalizationDataConfig):
    return ensure_demo_ava_records(demo_dir)
  return ensure_demo_dataset(demo_dir)


def prepare_for(params: Any) -> None:
  """Makes every demo dataset an experiment's data configs read.

  What the entry points (`train.py`, `tools/run_demo.py`, the tools) call
  before building inputs; tasks never generate data themselves.

  Args:
    params: an experiment config (`params.task.*_data`).
  """
  task = params.task
  for name in ('train_data', 'validation_data'):
    data = getattr(task, name, None)
    if data is not None:
      prepare_data(data)
