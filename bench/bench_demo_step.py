"""The demo training step on this CPU: compute only, the real loop, oneDNN.

  .venv/bin/python bench/bench_demo_step.py                 # oneDNN on and off
  .venv/bin/python bench/bench_demo_step.py --onednn 1 --profile 10

Both measurements go through Model Garden's trainer (`official.core`'s
`Trainer.train`, the Orbit loop `train.py` runs), `--steps` steps per call:

- compute: the loop fed one real batch, cached (`take(1).cache().repeat()`),
  so no input work is left: forward, both losses, backward, SGD update;
- loop: the loop fed by the experiment's own input pipeline (JPEG decode,
  augmentation, boxes), which shares the CPU cores with the step.

Each oneDNN setting runs in its own process (TensorFlow reads
`TF_ENABLE_ONEDNN_OPTS` when it loads). `--profile N` also traces a few
compute-only steps with the TensorFlow profiler and prints the N costliest
ops (op time summed over threads). The printout names the CPU, the oneDNN
state and the thread counts.
"""

import collections
import glob
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


def _trainer(experiment: str, params_override: str, cached: bool):
  """Model Garden's trainer of `experiment`, fed by its input pipeline.

  With `cached`, the pipeline's first batch is cached and repeated, so the
  loop does no input work.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official.core import base_trainer  # pylint: disable=g-import-not-at-top
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from official.core import train_utils  # pylint: disable=g-import-not-at-top
  from official.modeling import hyperparams  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  from official_projects_const_cl.dataloaders import demo_data  # pylint: disable=g-import-not-at-top
  params = exp_factory.get_exp_config(experiment)
  if params_override:
    params = hyperparams.override_params_dict(params, params_override,
                                              is_strict=True)
  demo_data.prepare_for(params)
  task = task_factory.get_task(params.task)
  dataset = task.build_inputs(params.task.train_data)
  if cached:
    dataset = dataset.take(1).cache().repeat()
  strategy = tf.distribute.get_strategy()
  return base_trainer.Trainer(
      params, task, model=task.build_model(),
      optimizer=train_utils.create_optimizer(task, params), train=True,
      evaluate=False,
      train_dataset=strategy.experimental_distribute_dataset(dataset))


def _seconds_per_step(trainer, steps: int, repeats: int) -> float:
  """Median seconds per step of `repeats` calls of `trainer.train(steps)`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  num_steps = tf.constant(steps, tf.int32)
  for _ in range(2):  # Warm-up: tracing, oneDNN primitives, input buffers.
    trainer.train(num_steps)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    trainer.train(num_steps)
    times.append((time.perf_counter() - start) / steps)
  return statistics.median(times)


def _top_ops(logdir: str, steps: int, count: int) -> list:
  """The `count` costliest ops of a profiler trace, ms per step."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  path = glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True)
  space = xplane_pb2.XSpace()
  with open(path[0], 'rb') as f:
    space.ParseFromString(f.read())
  total = collections.defaultdict(float)
  for plane in space.planes:
    names = {k: v.name for k, v in plane.event_metadata.items()}
    for line in plane.lines:
      if not line.name.startswith('tf_'):
        continue
      for event in line.events:
        name = names.get(event.metadata_id, '')
        if ':' in name and not name.startswith('ExecutorState'):
          total[name] += event.duration_ps / 1e9 / steps
  all_ms = sum(total.values())
  rows = sorted(total.items(), key=lambda kv: -kv[1])[:count]
  return [{'op': k, 'ms_per_step': v, 'share': v / all_ms} for k, v in rows]


def run_child(args) -> dict:
  """Times the step in this process; returns the measurements."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  result = dict(benchlib.runtime_report(), experiment=args.experiment)
  trainer = _trainer(args.experiment, args.params_override, cached=True)
  result['compute_s'] = _seconds_per_step(trainer, args.steps, args.repeats)
  result['params'] = int(trainer.model.count_params())
  if args.profile:
    with tempfile.TemporaryDirectory() as logdir:
      tf.profiler.experimental.start(logdir)
      trainer.train(tf.constant(args.steps, tf.int32))
      tf.profiler.experimental.stop()
      result['top_ops'] = _top_ops(logdir, args.steps, args.profile)
  trainer = _trainer(args.experiment, args.params_override, cached=False)
  result['loop_s'] = _seconds_per_step(trainer, args.steps, args.repeats)
  return result


def _define_flags(fv) -> None:
  """The flags of this benchmark."""
  flags.DEFINE_string('experiment', 'const_cl_pretrain_demo', 'experiment',
                      flag_values=fv)
  flags.DEFINE_string('params_override', '', 'params override', flag_values=fv)
  flags.DEFINE_string('onednn', '1,0', 'TF_ENABLE_ONEDNN_OPTS values to measure',
                      flag_values=fv)
  flags.DEFINE_integer('steps', 10, 'steps per timed trainer.train call',
                       flag_values=fv)
  flags.DEFINE_integer('repeats', 5, 'timed calls (the median is reported)',
                       flag_values=fv)
  flags.DEFINE_integer('profile', 0, 'print the N costliest ops of the compute step',
                       flag_values=fv)
  flags.DEFINE_bool('_child', False, 'internal: run one measurement',
                    flag_values=fv)


def main():
  args = errors.parse_flags(_define_flags, sys.argv[1:],
                            os.path.basename(__file__))
  if args._child:  # pylint: disable=protected-access
    benchlib.print_result(run_child(args))
    return
  results = []
  for value in args.onednn.split(','):
    print(f'[bench] {args.experiment}, TF_ENABLE_ONEDNN_OPTS={value} ...',
          flush=True)
    child_args = [__file__, '--_child', '--experiment', args.experiment,
                  '--steps', str(args.steps), '--repeats', str(args.repeats),
                  '--profile', str(args.profile)]
    if args.params_override:
      child_args += ['--params_override', args.params_override]
    results.append(benchlib.run_child(
        child_args, env={'TF_ENABLE_ONEDNN_OPTS': value}))
  print()
  for r in results:
    print(benchlib.describe(r))
  print(f'\n{args.experiment} ({results[0]["params"]:,} parameters), median '
        f'of {args.repeats} x {args.steps} steps of Model Garden\'s trainer:')
  print(f'{"oneDNN":<8}{"compute s/step":>16}{"loop s/step":>13}'
        f'{"loop/compute":>14}')
  for r in results:
    print(f'{"on" if r["onednn"] else "off":<8}{r["compute_s"]:>16.3f}'
          f'{r["loop_s"]:>13.3f}{r["loop_s"] / r["compute_s"]:>14.2f}')
  if len(results) > 1:
    print(f'oneDNN off / on, compute: '
          f'{results[-1]["compute_s"] / results[0]["compute_s"]:.2f}x')
  for r in results:
    if r.get('top_ops'):
      print(f'\nCostliest ops, oneDNN {"on" if r["onednn"] else "off"} '
            '(ms per step, summed over threads; share of all op time):')
      for row in r['top_ops']:
        print(f'  {row["ms_per_step"]:7.2f} ms  {100 * row["share"]:5.1f}%  '
              f'{row["op"]}')


if __name__ == '__main__':
  main()
