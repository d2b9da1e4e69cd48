"""The oneDNN CPU kernels are on by default at every entry point."""

import ast
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Top-level modules whose import loads TensorFlow.
_TF_LOADERS = ('tensorflow', 'tf_keras', 'official', 'orbit', 'keras')
_PROBE = ('import official_projects_const_cl; '
          'from tensorflow.python.util import _pywrap_util_port as p; '
          'print("onednn", p.IsMklEnabled())')


def _probe(env_value):
  env = {k: v for k, v in os.environ.items() if k != 'TF_ENABLE_ONEDNN_OPTS'}
  if env_value is not None:
    env['TF_ENABLE_ONEDNN_OPTS'] = env_value
  env['TF_CPP_MIN_LOG_LEVEL'] = '3'
  out = subprocess.run([sys.executable, '-c', _PROBE], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300, check=True)
  return out.stdout.split()[-1]


@pytest.mark.parametrize('env_value,expected', [(None, 'True'), ('0', 'False'),
                                                ('1', 'True')])
def test_package_import_turns_onednn_on_unless_the_user_chose(env_value,
                                                              expected):
  assert _probe(env_value) == expected


def _first_imports(path):
  """Top-level imported module names of a script, in order."""
  tree = ast.parse(open(path).read(), path)
  names = []
  for node in tree.body:
    if isinstance(node, ast.Import):
      names.extend(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.append(node.module)
  return names


@pytest.mark.parametrize('script', ['train.py'] + sorted(
    os.path.relpath(p, ROOT)
    for p in glob.glob(os.path.join(ROOT, 'bench', 'bench_*.py'))))
def test_scripts_import_the_package_before_tensorflow(script):
  """Scripts outside the package set the default before TensorFlow loads."""
  names = _first_imports(os.path.join(ROOT, script))
  assert 'official_projects_const_cl' in names, script
  first = names.index('official_projects_const_cl')
  loaders = [n for n in names[:first] if n.split('.')[0] in _TF_LOADERS]
  assert not loaders, f'{script} imports {loaders} before the package'
