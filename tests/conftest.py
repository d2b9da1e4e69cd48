"""Shared pytest set-up: quiet TensorFlow, register everything once."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def _share_cores_between_workers():
  """Gives each pytest-xdist worker its share of the cores as TF threads.

  Without it every worker's TensorFlow starts one thread per core for its
  ops, so N workers on N cores run N^2 busy threads and the oneDNN parallel
  regions wait on preempted threads. Read by TensorFlow when it loads; an
  explicit TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS wins.
  """
  workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
  if workers <= 1:
    return
  share = max(1, len(os.sched_getaffinity(0)) // workers)
  os.environ.setdefault('TF_NUM_INTRAOP_THREADS', str(share))
  os.environ.setdefault('TF_NUM_INTEROP_THREADS', str(share))


_share_cores_between_workers()

# Sets the CPU kernel defaults before TensorFlow loads (package doc).
import official_projects_const_cl  # pylint: disable=unused-import,g-import-not-at-top,wrong-import-position
# Registers every experiment, task, model and backbone, as train.py does.
from official_projects_const_cl import registry_imports  # pylint: disable=unused-import,g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position,g-bad-import-order


@pytest.fixture
def cli_error(capsys):
  """Runs a `console_main(argv)`; returns its one ERROR line (exit 2)."""
  def run(console_main, argv):
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
      console_main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err, err
    lines = [l for l in err.splitlines() if l.startswith('ERROR')]
    assert len(lines) == 1, err
    return lines[0]
  return run


# Set in the subprocess of `bfloat16_kernels` (no second rerun).
_EIGEN_RERUN_ENV = 'CONST_CL_TEST_EIGEN_RERUN'


@pytest.fixture
def bfloat16_kernels(request):
  """True: run the bfloat16 test here. False: it passed in a subprocess.

  Where oneDNN has no bfloat16 kernels (AVX2-only CPUs;
  `cpu_kernels.bfloat16_cpu_problem`), bfloat16 runs only on Eigen's
  kernels, and `TF_ENABLE_ONEDNN_OPTS` is read when TensorFlow loads: the
  same test, with the same assertions, then runs in a fresh process with
  oneDNN off, and the fixture returns False once it passed there.
  """
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from official_projects_const_cl.ops import cpu_kernels  # pylint: disable=g-import-not-at-top
  problem = cpu_kernels.bfloat16_cpu_problem()
  if not problem:
    return True
  assert not os.environ.get(_EIGEN_RERUN_ENV), problem
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS='0', **{_EIGEN_RERUN_ENV: '1'})
  env.pop('PYTEST_XDIST_WORKER_COUNT', None)
  result = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
       request.node.nodeid], cwd=repo, env=env, capture_output=True,
      text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
  assert '1 passed' in result.stdout, result.stdout[-2000:]
  return False


@pytest.fixture(autouse=True)
def _unseeded_after_each_test():
  """Clears the global seeds a test set (`tf.random.set_seed`,
  `tf_keras.utils.set_random_seed`) when it ends.

  With a TensorFlow global seed set, every newly built input pipeline draws
  the same random numbers, so a later test of the same pytest worker that
  checks a random augmentation over several fresh pipelines saw one outcome
  twenty times (test_training_flip_moves_boxes_with_pixels, fresh-clone CI,
  2026-12-02).
  """
  yield
  import random  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.random.set_seed(None)
  np.random.seed(None)
  random.seed(None)
