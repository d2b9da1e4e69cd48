"""Pretraining input pipeline throughput: ours vs Model Garden's CVRL.

  .venv/bin/python bench/bench_input_pipeline.py --cores 1 --batches 12

Both pipelines read the same records (written here once: `--videos` videos
of `--frames` JPEG frames at `--height` x `--width`, cut from the
scikit-image photographs with a slow pan, quality 90) and produce two
16-frame views at stride 2 of 224^2 per video with their full training
augmentation:

- ours: `dataloaders/pretrain_input.py` with `const_cl_pretrain_k400`'s
  train_data (JPEG decode of the sampled frames, random resized crop, flip,
  color jitter, grayscale, blur, 8 random boxes per frame);
- Model Garden: `official.projects.video_ssl` (CVRL), task
  `video_ssl_pretrain_kinetics400`'s `build_inputs` (decode, crop, flip,
  color jitter, blur, solarization, two views).

Each pipeline runs in its own process pinned to `--cores` CPU cores, so
videos/s divided by the cores is a per-core rate. The printout names the CPU,
the oneDNN state and the thread counts. From the per-core rate and a GPU's
training throughput it also says how many host cores one GPU needs
(`--gpu_videos_per_s`: videos per second of one GPU's training step).
"""

import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Sets the CPU kernel defaults before TensorFlow loads (package doc).
import official_projects_const_cl  # pylint: disable=unused-import,g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position,g-bad-import-order
from bench import benchlib  # pylint: disable=g-import-not-at-top,wrong-import-position
from official_projects_const_cl import errors  # pylint: disable=g-import-not-at-top,wrong-import-position

PIPELINES = ('ours', 'mg_cvrl')
# A published R3D-50-class GPU training rate: MMAction2's benchmark
# (docs/benchmark.md) trains I3D-R50 on 32x224^2 clips, 8 videos per V100, at
# 0.45 s/iter (data included), i.e. 17.8 clips/s per GPU. Two 16-frame views
# hold the frames of one 32-frame clip, so one V100 pretrains about 17.8
# videos/s; faster GPUs and mixed precision raise it (pass your own).
DEFAULT_GPU_VIDEOS_PER_S = 17.8


def write_records(out_dir: str, videos: int, frames: int, height: int,
                  width: int) -> str:
  """Writes the benchmark's video records; returns their glob."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  from skimage import transform  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl.dataloaders.conversion import tfrecord_writer  # pylint: disable=g-import-not-at-top
  photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(),
            skdata.rocket()]
  path = os.path.join(out_dir, 'bench-00000-of-00001.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    for v in range(videos):
      photo = photos[v % len(photos)]
      big = transform.resize(photo, (height + frames, width + frames),
                             preserve_range=True).astype(np.uint8)
      clip = [big[t:t + height, t:t + width] for t in range(frames)]
      example = tfrecord_writer.make_sequence_example(
          [tfrecord_writer.encode_jpeg(f, quality=90) for f in clip],
          labels=[v % 4])
      writer.write(example.SerializeToString())
  return path


def _dataset(pipeline: str, pattern: str, batch: int):
  """The training dataset of `pipeline` on `pattern`."""
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  if pipeline == 'mg_cvrl':
    from official.projects.video_ssl.tasks import pretrain  # pylint: disable=g-import-not-at-top,unused-import
    exp = exp_factory.get_exp_config('video_ssl_pretrain_kinetics400')
  else:
    from official_projects_const_cl import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
    exp = exp_factory.get_exp_config('const_cl_pretrain_k400')
  data = exp.task.train_data
  data.input_path = pattern
  data.global_batch_size = batch
  data.shuffle_buffer_size = 8
  data.cycle_length = 1
  task = task_factory.get_task(exp.task)
  return task.build_inputs(data)


def run_child(pipeline: str, pattern: str, batch: int, batches: int,
              warmup: int) -> dict:
  """Times `pipeline` in this process; returns its measurements."""
  dataset = _dataset(pipeline, pattern, batch)
  iterator = iter(dataset)
  first = next(iterator)
  for _ in range(warmup):
    next(iterator)
  times = []
  for _ in range(batches):
    start = time.perf_counter()
    next(iterator)
    times.append(time.perf_counter() - start)
  images = first[0]['image'] if isinstance(first, tuple) else first['image']
  cores = len(os.sched_getaffinity(0))
  per_batch = statistics.median(times)
  return {'pipeline': pipeline, 'image_shape': images.shape.as_list(),
          'median_s_per_batch': per_batch,
          'videos_per_s': batch / per_batch,
          'videos_per_s_per_core': batch / per_batch / cores,
          **benchlib.runtime_report()}


def _define_flags(fv) -> None:
  """The flags of this benchmark."""
  flags.DEFINE_integer('cores', 1, 'CPU cores each pipeline process may use',
                       flag_values=fv)
  flags.DEFINE_integer('batch', 8, 'videos per batch', flag_values=fv)
  flags.DEFINE_integer('batches', 12, 'batches', flag_values=fv)
  flags.DEFINE_integer('warmup', 3, 'warmup', flag_values=fv)
  flags.DEFINE_integer('videos', 16, 'videos', flag_values=fv)
  flags.DEFINE_integer('frames', 64, 'frames', flag_values=fv)
  flags.DEFINE_integer('height', 256, 'height', flag_values=fv)
  flags.DEFINE_integer('width', 340, 'width', flag_values=fv)
  flags.DEFINE_string('pipelines', ','.join(PIPELINES), 'pipelines',
                      flag_values=fv)
  flags.DEFINE_float('gpu_videos_per_s', DEFAULT_GPU_VIDEOS_PER_S, 'gpu videos per s',
                     flag_values=fv)
  flags.DEFINE_string('records', '', 'existing records to read instead of writing new',
                      flag_values=fv)
  flags.DEFINE_string('json', '', 'also write results here', flag_values=fv)
  flags.DEFINE_string('_child', '', 'internal: run one measurement',
                      flag_values=fv)


def main():
  args = errors.parse_flags(_define_flags, sys.argv[1:],
                            os.path.basename(__file__))
  if args._child:  # pylint: disable=protected-access
    res = run_child(args._child, args.records, args.batch, args.batches,  # pylint: disable=protected-access
                    args.warmup)
    benchlib.print_result(res)
    return
  cores = sorted(os.sched_getaffinity(0))
  if args.cores > len(cores):
    raise SystemExit(f'--cores {args.cores}: only {len(cores)} available.')
  with tempfile.TemporaryDirectory() as tmp:
    pattern = args.records or write_records(tmp, args.videos, args.frames,
                                            args.height, args.width)
    results = {}
    for pipeline in args.pipelines.split(','):
      print(f'[bench] {pipeline} on {args.cores} core(s) ...', flush=True)
      results[pipeline] = benchlib.run_child(
          [__file__, '--_child', pipeline, '--records', pattern, '--batch',
           str(args.batch), '--batches', str(args.batches), '--warmup',
           str(args.warmup)], cores=cores[:args.cores])
  info = next(iter(results.values()))
  print('\n' + benchlib.describe(info))
  print(f'{args.videos} videos of {args.frames} frames at {args.height}x'
        f'{args.width}, batch {args.batch}, two 16x224^2 views per video\n')
  print(f'{"pipeline":<20}{"s/batch":>10}{"videos/s":>10}'
        f'{"videos/s/core":>15}{"x MG":>7}')
  base = results.get('mg_cvrl')
  names = {'ours': 'ours (ConST-CL)', 'mg_cvrl': 'Model Garden CVRL'}
  for name, r in results.items():
    ratio = (r['videos_per_s_per_core'] / base['videos_per_s_per_core']
             if base else float('nan'))
    r['ratio_to_mg_cvrl'] = ratio
    print(f'{names[name]:<20}{r["median_s_per_batch"]:>10.3f}'
          f'{r["videos_per_s"]:>10.2f}{r["videos_per_s_per_core"]:>15.2f}'
          f'{ratio:>7.2f}')
  if 'ours' in results:
    rate = args.gpu_videos_per_s
    need = rate / results['ours']['videos_per_s_per_core']
    print(f'\nOne GPU pretraining {rate:.1f} videos/s (two views each; a step '
          f'at batch 64 every {64 / rate:.1f} s) needs about {need:.1f} such '
          'cores to feed it.')
    results['cores_per_gpu'] = need
  if args.json:
    with open(args.json, 'w') as f:
      json.dump({'args': args.flag_values_dict(), 'results': results}, f,
                indent=2)


if __name__ == '__main__':
  main()
