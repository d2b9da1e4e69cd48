"""Imports run one way: entry points, tasks, models, data, ops, configs.

Every module's imports (module level and inside functions) are read with
`ast` and checked against the layer table below (docs/layout.md):

  train.py, tools/     entry points; nothing imports train.py
  tasks/               no tools
  modeling/, losses/   no tasks, tools, dataloaders, evaluation
  dataloaders/         dataloaders, ops, configs, errors
  evaluation/          evaluation, ops, configs, errors; the two command
                       lines (`evaluation.ava_map`, `evaluation.otb`) also
                       read their files with the data layer's readers
  ops/                 ops, configs
  configs/             configs only

`errors` (the user-error types and exit statuses) imports nothing of the
package and may be imported by every layer but configs and ops. The bare
package (`import official_projects_const_cl`) only sets an environment
default, so anything may import it.
"""

import ast
import os
import subprocess
import sys

import pytest

PACKAGE = 'official_projects_const_cl'
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Layer -> the layers it may import (itself included).
ALLOWED = {
    'configs': {'configs'},
    'ops': {'ops', 'configs'},
    'evaluation': {'evaluation', 'ops', 'configs', 'errors'},
    'dataloaders': {'dataloaders', 'ops', 'configs', 'errors'},
    'losses': {'losses', 'ops', 'configs', 'errors'},
    'modeling': {'modeling', 'losses', 'ops', 'configs', 'errors'},
    'tasks': {'tasks', 'modeling', 'losses', 'dataloaders', 'evaluation',
              'ops', 'configs', 'errors'},
    'tools': {'tools', 'tasks', 'modeling', 'losses', 'dataloaders',
              'evaluation', 'ops', 'configs', 'errors', 'registry_imports'},
    'registry_imports': {'configs', 'modeling', 'tasks'},
    'errors': set(),
}
# Modules allowed one import beyond their layer: command lines of metrics
# that read dataset files through the data layer's (TF-free) readers.
EXTRA = {
    f'{PACKAGE}.evaluation.ava_map': {f'{PACKAGE}.dataloaders.ava_io'},
    f'{PACKAGE}.evaluation.otb': {f'{PACKAGE}.dataloaders.tracking_datasets'},
}


def module_name(path: str) -> str:
  rel = os.path.relpath(path, REPO)[:-len('.py')].replace(os.sep, '.')
  return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def layer_of(module: str) -> str:
  """`official_projects_const_cl.<layer>...` -> layer; '' for the package."""
  parts = module.split('.')
  return parts[1] if len(parts) > 1 else ''


def _is_module(name: str) -> bool:
  path = os.path.join(REPO, *name.split('.'))
  return os.path.isfile(path + '.py') or os.path.isdir(path)


def imported_modules(source: str, module: str):
  """(line, imported module) of every import of the package in `source`."""
  out = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      out += [(node.lineno, a.name) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:  # Relative import: resolve against `module`.
        parent = module.split('.')[:-node.level]
        base = '.'.join(parent + ([base] if base else []))
      for alias in node.names:  # `from a.b import c`: module a.b.c or a.b.
        child = f'{base}.{alias.name}'
        out.append((node.lineno, child if _is_module(child) else base))
  return [(line, m) for line, m in out
          if m == PACKAGE or m.startswith(PACKAGE + '.') or m == 'train']


def violations(source: str, module: str):
  """'module:line imports X' for every import the layer table forbids."""
  found = []
  layer = layer_of(module) if module.startswith(PACKAGE) else module
  for line, imported in imported_modules(source, module):
    where = f'{module}:{line} imports {imported}'
    if imported == 'train':
      found.append(where + ' (nothing imports train.py)')
      continue
    target = layer_of(imported)
    if not target or target == layer:  # The bare package, or its own layer.
      continue
    if imported in EXTRA.get(module, ()):
      continue
    allowed = ALLOWED.get(layer)
    if allowed is None:  # bench/, train.py: entry points.
      continue
    if target not in allowed:
      found.append(f'{where} ({layer} may import {sorted(allowed)})')
  return found


def _python_files():
  roots = [os.path.join(REPO, PACKAGE), os.path.join(REPO, 'bench')]
  files = [os.path.join(REPO, 'train.py')]
  for root in roots:
    for dirpath, _, names in os.walk(root):
      files += [os.path.join(dirpath, n) for n in names if n.endswith('.py')]
  return sorted(files)


def test_every_import_follows_the_layers():
  problems = []
  for path in _python_files():
    with open(path, encoding='utf-8') as f:
      problems += violations(f.read(), module_name(path))
  assert not problems, '\n'.join(problems)


def test_every_module_has_a_layer():
  layers = {layer_of(module_name(p)) for p in _python_files()
            if module_name(p).startswith(PACKAGE + '.')}
  assert layers <= set(ALLOWED), layers - set(ALLOWED)


@pytest.mark.parametrize('module,source,expected', [
    ('dataloaders.tracking_input',
     'from official_projects_const_cl.modeling import siamfc_model\n',
     'dataloaders may import'),
    ('configs.tracking',
     'from official_projects_const_cl.dataloaders import demo_data\n',
     'configs may import'),
    ('evaluation.otb_metrics',
     'def f():\n  from official_projects_const_cl.dataloaders import '
     'tracking_datasets\n', 'evaluation may import'),
    ('ops.box_ops', 'from official_projects_const_cl import errors\n',
     'ops may import'),
    ('tasks.pretrain', 'import official_projects_const_cl.tools.demo_data\n',
     'tasks may import'),
    ('modeling.siamfc_model',
     'from official_projects_const_cl.tasks import tracking\n',
     'modeling may import'),
    ('tools.run_demo', 'import train\n', 'nothing imports train.py'),
    ('dataloaders.ava_io', 'from ..evaluation import ava_metrics\n',
     'dataloaders may import'),
])
def test_a_wrong_import_is_reported(module, source, expected):
  found = violations(source, f'{PACKAGE}.{module}')
  assert len(found) == 1 and expected in found[0], found


def test_allowed_imports_are_not_reported():
  assert not violations(
      'import official_projects_const_cl\n'
      'from official_projects_const_cl import errors\n'
      'from official_projects_const_cl.ops import temporal\n',
      f'{PACKAGE}.dataloaders.tracking_input')
  assert not violations(
      'from official_projects_const_cl.dataloaders import ava_io\n',
      f'{PACKAGE}.evaluation.ava_map')


@pytest.mark.parametrize('module', [
    'official_projects_const_cl.evaluation.ava_map',
    'official_projects_const_cl.evaluation.otb',
])
def test_metric_modules_import_without_tensorflow(module):
  code = (f'import sys\nimport {module}\n'
          "heavy = sorted(m for m in ('tensorflow', 'tf_keras', 'official') "
          'if m in sys.modules)\n'
          'print(heavy)\n')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, cwd=REPO, check=True,
                       env=dict(os.environ, PYTHONPATH=REPO))
  assert out.stdout.strip() == '[]', out.stdout + out.stderr


def test_importing_the_package_registers_nothing():
  code = ('import sys\nimport official_projects_const_cl\n'
          "print(sorted(m for m in sys.modules if m.startswith("
          "'official_projects_const_cl.') or m == 'tensorflow'))\n")
  out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, cwd=REPO, check=True,
                       env=dict(os.environ, PYTHONPATH=REPO))
  assert out.stdout.strip() == '[]', out.stdout + out.stderr
