"""Whether this host's CPU kernels can run a bfloat16 network.

The package turns TensorFlow's oneDNN CPU kernels on by default (see the
package docstring). oneDNN's bfloat16 convolutions and matrix products need
AVX-512-class instructions (avx512_core or newer); on an AVX2-only CPU, or
with `ONEDNN_MAX_CPU_ISA=AVX2`, TensorFlow 2.20's oneDNN Conv3D / Conv2D
fail with "could not create a primitive descriptor" and its bfloat16 MatMul
crashes the process (segmentation fault; measured 2026-12-02, AMD EPYC Zen 4
with the AVX2 cap). Eigen's kernels (`TF_ENABLE_ONEDNN_OPTS=0`) run bfloat16
on any CPU, slowly. `bfloat16_cpu_problem` finds out with one tiny Conv3D,
which fails cleanly (a MatMul probe would take the process down), so that a
run can stop with a clear message before its model is built.
"""

import functools
import os
from typing import Optional

import tensorflow as tf


@functools.lru_cache(maxsize=None)
def bfloat16_cpu_problem() -> Optional[str]:
  """Why a bfloat16 network cannot run on this CPU, or None if it can."""
  x = tf.ones([1, 1, 3, 3, 1], tf.bfloat16)
  kernel = tf.ones([1, 1, 1, 1, 1], tf.bfloat16)
  try:
    with tf.device('/CPU:0'):
      tf.nn.conv3d(x, kernel, [1, 1, 1, 1, 1], 'SAME').numpy()
  except (tf.errors.AbortedError, tf.errors.InternalError,
          tf.errors.NotFoundError, tf.errors.UnimplementedError) as e:
    first_line = str(e).strip().splitlines()[0][:200]
    return ('bfloat16 convolutions do not run on this CPU with oneDNN on '
            f'(TF_ENABLE_ONEDNN_OPTS={_onednn_setting()}): oneDNN\'s bfloat16 '
            'kernels need an AVX-512-class CPU (TensorFlow said: '
            f'{first_line}). Run with TF_ENABLE_ONEDNN_OPTS=0 (Eigen\'s '
            'bfloat16 kernels, slow), or with '
            'runtime.mixed_precision_dtype=float32, or on a GPU/TPU.')
  return None


def _onednn_setting() -> str:
  return os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')
