"""ConST-CL (CVPR 2022) in TensorFlow Model Garden style.

Importing the package first turns on TensorFlow's oneDNN CPU kernels unless
`TF_ENABLE_ONEDNN_OPTS` is already set. TensorFlow 2.20 enables them by
default only on AVX-512-class CPUs; without them its 3D convolutions run
3-8x slower on AVX2-only hosts (see docs/performance.md). The variable is
read when TensorFlow loads, so the entry points import this package before
anything that imports TensorFlow. `TF_ENABLE_ONEDNN_OPTS=0` restores the
Eigen kernels (results agree up to float rounding).

Importing the package imports nothing else: `train.py`, the tools, `bench/`
and the tests import `registry_imports` to register every experiment, task,
model and backbone.
"""

import os

os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
