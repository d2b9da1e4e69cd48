"""Times one pretraining step: our ConST-CL, CVRL and VCLR vs Model Garden's CVRL.

  .venv/bin/python bench/bench_pretrain_step.py            # b4, 16x112^2, R3D-50
  .venv/bin/python bench/bench_pretrain_step.py --batch 8 --frames 16 --size 224

All use the same clip shape, batch of videos and the R3D-50 backbone of
supplementary Table 1 (CVRL and ConST-CL: two clips per video; VCLR
(`vclr_pretrain_k400`'s model and losses with 3D clips of this shape):
two tuples of K = 3 segment clips plus a second view of one, 7 clips per
video) (Model Garden's CVRL gets its
`resnet_3d` configured with the same stem and temporal kernels), synthetic
inputs (the input pipeline is not timed), SGD, float32. Each method runs in
its own process so that peak memory (max RSS on CPU, the allocator's peak on
GPU) is its own. Prints median seconds/step, peak memory and the ratios to
Model Garden's CVRL; `--json` also writes them to a file.

Targets: our ConST-CL <= 1.25x Model Garden CVRL (paper FLOPs
ratio 56.5/45.6 = 1.24); our CVRL <= 1.0x.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Sets the CPU kernel defaults before TensorFlow loads (package doc).
import official_projects_const_cl  # pylint: disable=unused-import,g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position,g-bad-import-order
from official_projects_const_cl import errors  # pylint: disable=g-import-not-at-top,wrong-import-position

METHODS = ('mg_cvrl', 'cvrl', 'const_cl', 'vclr')


def _table1_mg_backbone():
  from official.vision.configs import backbones_3d  # pylint: disable=g-import-not-at-top
  kernels = [(1,) * 3, (1,) * 4, (3,) * 6, (3,) * 3]
  return backbones_3d.Backbone3D(
      type='resnet_3d',
      resnet_3d=backbones_3d.ResNet3D(
          model_id=50, stem_type='v0', stem_conv_temporal_kernel_size=5,
          stem_conv_temporal_stride=2, stem_pool_temporal_stride=1,
          block_specs=tuple(
              backbones_3d.ResNet3DBlock(temporal_strides=1,
                                         temporal_kernel_sizes=k,
                                         use_self_gating=False)
              for k in kernels)))


def _build(method, batch, frames, size):
  """Returns (task, model, optimizer, step_fn, inputs)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  shape = (frames, size, size, 3)
  if method == 'mg_cvrl':
    from official.projects.video_ssl.tasks import pretrain  # pylint: disable=g-import-not-at-top,unused-import
    exp = exp_factory.get_exp_config('video_ssl_pretrain_kinetics400')
    exp.task.model.backbone = _table1_mg_backbone()
    exp.task.model.norm_activation.use_sync_bn = False
    exp.task.model.hidden_norm_activation.use_sync_bn = False
    exp.task.losses.l2_weight_decay = 1e-6
    inputs = ({'image': tf.random.uniform((2 * batch,) + shape)},
              tf.zeros([2 * batch, 400]))
  elif method == 'vclr':
    from official_projects_const_cl import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
    exp = exp_factory.get_exp_config('vclr_pretrain_k400')
    exp.task.model.norm_activation.use_sync_bn = False
    k = exp.task.train_data.vclr_num_segments
    inputs = {
        'anchor': tf.random.uniform((batch, k) + shape),
        'positive': tf.random.uniform((batch, k) + shape),
        'anchor_second_view': tf.random.uniform((batch,) + shape),
        'order_permutation': tf.tile(tf.range(k)[None, None], [batch, 2, 1]),
        'order_label': tf.zeros([batch], tf.int32),
        'label': tf.zeros([batch], tf.int32),
        'num_corrupt_frames': tf.zeros([batch], tf.int32),
    }
  else:
    from official_projects_const_cl import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
    exp = exp_factory.get_exp_config(
        'const_cl_pretrain_k400' if method == 'const_cl' else
        'cvrl_pretrain_k400')
    exp.task.model.norm_activation.use_sync_bn = False
    # Context frames must be distinct: at most T' = frames / 2 of them.
    exp.task.model.context_length = min(exp.task.model.context_length,
                                        (frames // 2) - (frames // 2 + 1) % 2)
    n = exp.task.model.num_boxes
    ymin = tf.random.uniform([batch, 2, frames, n, 2], 0, 0.5)
    inputs = {
        'image': tf.random.uniform((batch, 2) + shape),
        'boxes': tf.concat([ymin, ymin + 0.3], -1),
        'boxes_mask': tf.ones([batch, 2, frames, n]),
        'frame_index': tf.tile(tf.range(frames)[None, None], [batch, 2, 1]),
        'label': tf.zeros([batch], tf.int32),
        'num_corrupt_frames': tf.zeros([batch], tf.int32),
    }
  exp.task.train_data.feature_shape = shape
  exp.task.validation_data.feature_shape = shape
  exp.task.train_data.global_batch_size = batch
  exp.runtime.mixed_precision_dtype = 'float32'
  task = task_factory.get_task(exp.task)
  model = task.build_model()
  optimizer = task.create_optimizer(exp.trainer.optimizer_config,
                                    exp.runtime)
  metrics = task.build_metrics(training=True)

  @tf.function
  def step(x):
    return task.train_step(x, model, optimizer, metrics)

  return model, step, inputs


def run_one(method, batch, frames, size, steps, warmup):
  """Times `method` in this process; returns a dict of measurements."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  model, step, inputs = _build(method, batch, frames, size)
  for _ in range(warmup):
    tf.nest.map_structure(lambda t: t.numpy(), step(inputs))
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), step(inputs))
    times.append(time.perf_counter() - start)
  out = {'method': method, 'median_s': statistics.median(times),
         'min_s': min(times), 'params': int(model.count_params()),
         'peak_rss_mib': resource.getrusage(
             resource.RUSAGE_SELF).ru_maxrss / 1024.0}
  gpus = tf.config.list_physical_devices('GPU')
  if gpus:
    out['peak_gpu_mib'] = tf.config.experimental.get_memory_info(
        'GPU:0')['peak'] / 2**20
  out['device'] = 'GPU' if gpus else 'CPU'
  return out


def _define_flags(fv) -> None:
  """The flags of this benchmark."""
  flags.DEFINE_integer('batch', 4, 'videos per step', flag_values=fv)
  flags.DEFINE_integer('frames', 16, 'frames', flag_values=fv)
  flags.DEFINE_integer('size', 112, 'size', flag_values=fv)
  flags.DEFINE_integer('steps', 5, 'steps', flag_values=fv)
  flags.DEFINE_integer('warmup', 2, 'warmup', flag_values=fv)
  flags.DEFINE_string('methods', ','.join(METHODS), 'methods', flag_values=fv)
  flags.DEFINE_string('json', '', 'also write results here', flag_values=fv)
  flags.DEFINE_string('_child', '', 'internal: run one measurement',
                      flag_values=fv)


def main():
  args = errors.parse_flags(_define_flags, sys.argv[1:],
                            os.path.basename(__file__))
  if args._child:  # pylint: disable=protected-access
    res = run_one(args._child, args.batch, args.frames, args.size,  # pylint: disable=protected-access
                  args.steps, args.warmup)
    print('RESULT ' + json.dumps(res), flush=True)
    return
  results = {}
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  for method in args.methods.split(','):
    cmd = [sys.executable, __file__, '--_child', method, '--batch',
           str(args.batch), '--frames', str(args.frames), '--size',
           str(args.size), '--steps', str(args.steps), '--warmup',
           str(args.warmup)]
    print(f'[bench] {method} ...', flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          check=False)
    lines = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')]
    if proc.returncode or not lines:
      sys.stderr.write(proc.stderr[-4000:])
      raise SystemExit(f'{method} failed (exit {proc.returncode}).')
    results[method] = json.loads(lines[-1][len('RESULT '):])
  base = results.get('mg_cvrl')
  print(f'\nbatch {args.batch} videos (x2 clips), {args.frames}x'
        f'{args.size}^2, {args.steps} timed steps, device '
        f'{next(iter(results.values()))["device"]}')
  print(f'{"method":<22}{"params":>12}{"s/step":>10}{"peak MiB":>10}'
        f'{"x MG CVRL":>11}')
  names = {'mg_cvrl': 'Model Garden CVRL', 'cvrl': 'ours: CVRL',
           'const_cl': 'ours: ConST-CL', 'vclr': 'ours: VCLR (7 clips)'}
  for method, r in results.items():
    mem = r.get('peak_gpu_mib', r['peak_rss_mib'])
    ratio = r['median_s'] / base['median_s'] if base else float('nan')
    r['ratio_to_mg_cvrl'] = ratio
    print(f'{names[method]:<22}{r["params"]:>12,}{r["median_s"]:>10.3f}'
          f'{mem:>10.0f}{ratio:>11.2f}')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump({'args': args.flag_values_dict(), 'results': results}, f,
                indent=2)


if __name__ == '__main__':
  main()
