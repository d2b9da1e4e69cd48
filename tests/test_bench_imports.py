"""The benchmarks' imports of the package resolve (they run outside pytest).

`bench/` imports most of the package lazily, inside functions, so a module
moved elsewhere breaks a benchmark only when someone runs it. This parses
every `bench/*.py` and checks each `from official_projects_const_cl... import
name` (module level or not) against the package.
"""

import ast
import glob
import importlib
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHES = sorted(glob.glob(os.path.join(REPO, 'bench', '*.py')))


def _package_imports(path):
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and (
        node.module.split('.')[0] == 'official_projects_const_cl'):
      for alias in node.names:
        yield node.lineno, node.module, alias.name
    elif isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.split('.')[0] == 'official_projects_const_cl':
          yield node.lineno, alias.name, None


def test_there_are_benchmarks_with_package_imports():
  assert len(BENCHES) >= 4
  assert sum(len(list(_package_imports(p))) for p in BENCHES) >= 5


@pytest.mark.parametrize('path', BENCHES, ids=os.path.basename)
def test_bench_package_imports_resolve(path):
  for lineno, module, name in _package_imports(path):
    where = f'{os.path.basename(path)}:{lineno}'
    imported = importlib.import_module(module)
    if name is None:
      continue
    if not hasattr(imported, name):
      try:
        importlib.import_module(f'{module}.{name}')
      except ImportError:
        pytest.fail(f'{where}: {module} has no {name}')
