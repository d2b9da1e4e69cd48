"""What every benchmark shares: the machine report and child processes.

Each measured configuration runs in its own process, because the oneDNN
switch (`TF_ENABLE_ONEDNN_OPTS`) is read when TensorFlow loads and peak memory
must be the configuration's own. A child prints one `RESULT {json}` line.
"""

import json
import os
import platform
import subprocess
import sys
from typing import Dict, List, Mapping, Optional


def cpu_model() -> str:
  """The CPU's model name (from /proc/cpuinfo on Linux)."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown CPU'


def cpu_flags() -> str:
  """The AVX-class flags of the CPU (they decide oneDNN's default)."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('flags'):
          flags = line.split(':', 1)[1].split()
          return ' '.join(sorted(f for f in flags
                                 if f.startswith(('avx', 'fma', 'amx'))))
  except OSError:
    pass
  return 'unknown'


def runtime_report() -> Dict[str, object]:
  """CPU, oneDNN state and thread counts of this process."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
  return {
      'cpu': cpu_model(),
      'cpu_flags': cpu_flags(),
      'cores_available': len(os.sched_getaffinity(0)),
      'onednn': bool(_pywrap_util_port.IsMklEnabled()),
      'TF_ENABLE_ONEDNN_OPTS': os.environ.get('TF_ENABLE_ONEDNN_OPTS'),
      'inter_op_threads':
          tf.config.threading.get_inter_op_parallelism_threads(),
      'intra_op_threads':
          tf.config.threading.get_intra_op_parallelism_threads(),
      'tensorflow': tf.__version__,
  }


def describe(info: Mapping[str, object]) -> str:
  """One line naming the CPU, the oneDNN state and the thread counts."""
  return (f'CPU: {info["cpu"]} ({info["cpu_flags"]}), '
          f'{info["cores_available"]} core(s); oneDNN '
          f'{"on" if info["onednn"] else "off"} (TF_ENABLE_ONEDNN_OPTS='
          f'{info["TF_ENABLE_ONEDNN_OPTS"]}); inter/intra-op threads '
          f'{info["inter_op_threads"]}/{info["intra_op_threads"]} '
          '(0 = one per core); TensorFlow ' + str(info['tensorflow']))


def print_result(result: Mapping[str, object]) -> None:
  """What a child prints for its parent."""
  print('RESULT ' + json.dumps(result), flush=True)


def run_child(args: List[str], env: Optional[Mapping[str, str]] = None,
              cores: Optional[List[int]] = None) -> Dict[str, object]:
  """Runs `python <args>` (optionally pinned to `cores`); returns its RESULT.

  Raises:
    SystemExit: the child failed; its stderr tail is printed.
  """
  cmd = [sys.executable] + list(args)
  if cores:
    cmd = ['taskset', '-c', ','.join(str(c) for c in cores)] + cmd
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', **(env or {}))
  proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                        check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')]
  if proc.returncode or not lines:
    sys.stderr.write(proc.stderr[-4000:])
    raise SystemExit(f'{" ".join(args[:3])} failed (exit {proc.returncode}).')
  return json.loads(lines[-1][len('RESULT '):])
