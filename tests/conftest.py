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
