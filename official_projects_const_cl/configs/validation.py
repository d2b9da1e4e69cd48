"""Checks an experiment config before anything runs: types, then ranges.

Model Garden's `hyperparams.Config` accepts any value for any field
(`trainer.train_steps=abc` is stored as the string 'abc' and fails much
later, deep in Orbit). `validate_experiment` walks every dataclass field of
an experiment and

1. compares each value with the field's annotation (int, float, bool, str,
   Optional / Union, tuples and lists of those, nested configs); a value
   equal to the field's default is always accepted, and so is None for a
   str field (`key=` in an override);
2. then, if the types are right, asks every config that defines
   `value_errors()` for its range rules (this project's configs define them
   beside their fields, with the helpers below), and checks the trainer's
   steps and intervals for the mode.

All problems are reported together, each with its full key, e.g.
`trainer.train_steps: expected int, got 'abc' (str)`.
"""

import collections.abc
import dataclasses
import functools
import typing
from typing import (Any, Callable, Iterable, List, Mapping, NamedTuple,
                    Optional, Sequence, Tuple)

from official.modeling.hyperparams import base_config

TRAIN_MODES = ('train', 'train_and_eval', 'continuous_train_and_eval',
               'train_and_post_eval')
# `runtime.mixed_precision_dtype` values `performance.set_mixed_precision_policy`
# accepts; it names the Keras policies 'mixed_bfloat16' / 'mixed_float16' by
# their compute dtype.
MIXED_PRECISION_DTYPES = ('float32', 'bfloat16', 'float16')
# (relative key, problem) pairs returned by `value_errors()`.
Problems = List[Tuple[str, str]]


class ConfigError(ValueError):
  """An experiment config has values of the wrong type or out of range."""

  def __init__(self, problems: Sequence[str]):
    self.problems = list(problems)
    super().__init__('invalid experiment config:\n  ' +
                     '\n  '.join(self.problems))


class Check(NamedTuple):
  """A range rule: `test(value)` must hold; `expected` says what it wants."""
  test: Callable[[Any], bool]
  expected: str


def at_least(bound: float) -> Check:
  return Check(lambda v: v >= bound, f'>= {bound}')


def greater_than(bound: float) -> Check:
  return Check(lambda v: v > bound, f'> {bound}')


def between(low: float, high: float, high_open: bool = False,
            low_open: bool = False) -> Check:
  """low <= v <= high (or < at an open end)."""
  def test(v):
    return ((v > low if low_open else v >= low) and
            (v < high if high_open else v <= high))
  return Check(test, f'in {"(" if low_open else "["}{low}, {high}'
               f'{")" if high_open else "]"}')


def one_of(*choices: Any) -> Check:
  return Check(lambda v: v in choices, f'one of {list(choices)}')


POSITIVE = greater_than(0)
NON_NEGATIVE = at_least(0)
PROBABILITY = between(0.0, 1.0)
FRACTION = between(0.0, 1.0, high_open=True)


def field_errors(config: base_config.Config, **checks: Check) -> Problems:
  """Problems of `config`'s fields against one `Check` each (None skipped)."""
  problems = []
  for name, check in checks.items():
    value = getattr(config, name)
    if value is None:
      continue
    try:
      ok = check.test(value)
    except TypeError:  # Reported by the type pass.
      continue
    if not ok:
      problems.append((name, f'must be {check.expected}, got {value!r}'))
  return problems


def ordered_errors(config: base_config.Config, low: str,
                   high: str) -> Problems:
  """[(low, problem)] unless `config.low <= config.high`."""
  a, b = getattr(config, low), getattr(config, high)
  if a is not None and b is not None and a > b:
    return [(low, f'must be <= {high} ({b!r}), got {a!r}')]
  return []


def equal_errors(config: base_config.Config, key_a: str,
                 key_b: str) -> Problems:
  """[(key_b, problem)] unless the dotted keys `key_a`, `key_b` are equal."""
  get = lambda key: functools.reduce(getattr, key.split('.'), config)
  a, b = get(key_a), get(key_b)
  if a != b:
    return [(key_b, f'must equal {key_a} ({a!r}), got {b!r}')]
  return []


def shape_errors(config: base_config.Config, name: str, rank: int,
                 channels: Optional[int] = None) -> Problems:
  """Problems of a positive integer shape field such as `feature_shape`."""
  shape = tuple(getattr(config, name))
  if len(shape) != rank or any(s < 1 for s in shape):
    return [(name, f'must be {rank} positive integers, got {list(shape)}')]
  if channels is not None and shape[-1] != channels:
    return [(name, f'must end with {channels} channels, got {list(shape)}')]
  return []


# ------------------------------------------------------------------ types ---


def _describe(tp: Any, plural: bool = False) -> str:
  """'int', 'str or None', 'a list of int', 'a Foo config' for annotations."""
  if tp is type(None):
    return 'None'
  origin, args = typing.get_origin(tp), typing.get_args(tp)
  if origin is typing.Union:
    return ' or '.join(_describe(a, plural) for a in args)
  if origin in (tuple, list, collections.abc.Sequence):
    inner = args[0] if args else Any
    return f'{"lists" if plural else "a list"} of {_describe(inner, True)}'
  if isinstance(tp, type) and issubclass(tp, base_config.Config):
    return f'{tp.__name__} configs' if plural else f'a {tp.__name__} config'
  return getattr(tp, '__name__', str(tp))


def _matches(value: Any, tp: Any) -> bool:
  """Whether `value` fits annotation `tp` (unknown annotations fit)."""
  if tp is Any or isinstance(tp, (str, typing.TypeVar)):
    return True
  if tp is type(None):
    return value is None
  origin, args = typing.get_origin(tp), typing.get_args(tp)
  if origin is typing.Union:
    return any(_matches(value, a) for a in args)
  if tp is bool:
    return isinstance(value, bool)
  if tp is int:
    return isinstance(value, int) and not isinstance(value, bool)
  if tp is float:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
  if tp is str:
    # `key=` in a Model Garden override sets None; for str fields it is the
    # usual way to say "none" (e.g. `task.train_data.demo_data_dir=`).
    return value is None or isinstance(value, str)
  if origin in (tuple, list, collections.abc.Sequence):
    if not isinstance(value, (list, tuple)):
      return False
    if origin is tuple and args and args[-1] is not Ellipsis:
      return (len(value) == len(args) and
              all(_matches(v, a) for v, a in zip(value, args)))
    inner = args[0] if args else Any
    return all(_matches(v, inner) for v in value)
  if origin in (dict, collections.abc.Mapping):
    return isinstance(value, (dict, base_config.Config))
  if isinstance(tp, type) and issubclass(tp, base_config.Config):
    return isinstance(value, (tp, dict))
  return True


def _type_hints(cls: type) -> Mapping[str, Any]:
  try:
    return typing.get_type_hints(cls)
  except Exception:  # pylint: disable=broad-except
    return {}  # Unresolvable annotations: no type checks for this class.


def _default(field: dataclasses.Field) -> Any:
  if field.default is not dataclasses.MISSING:
    return field.default
  return dataclasses.MISSING


def _same(a: Any, b: Any) -> bool:
  try:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
      return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and bool(a == b)
  except Exception:  # pylint: disable=broad-except
    return False


def _configs(config: base_config.Config, path: str
             ) -> Iterable[Tuple[str, base_config.Config]]:
  """(key, config) of `config` and every config nested in it."""
  yield path, config
  for field in dataclasses.fields(config):
    value = getattr(config, field.name, None)
    key = f'{path}.{field.name}' if path else field.name
    if isinstance(value, base_config.Config):
      yield from _configs(value, key)
    elif isinstance(value, (list, tuple)):
      for i, item in enumerate(value):
        if isinstance(item, base_config.Config):
          yield from _configs(item, f'{key}[{i}]')


def type_errors(config: base_config.Config, path: str = '') -> List[str]:
  """'key: expected ..., got ...' for every field whose value has a wrong type."""
  problems = []
  for key, cfg in _configs(config, path):
    hints = _type_hints(type(cfg))
    for field in dataclasses.fields(cfg):
      if field.name not in hints:
        continue
      value = getattr(cfg, field.name, None)
      if _same(value, _default(field)):
        continue
      if not _matches(value, hints[field.name]):
        name = f'{key}.{field.name}' if key else field.name
        problems.append(f'{name}: expected {_describe(hints[field.name])}, '
                        f'got {value!r} ({type(value).__name__})')
  return problems


# ----------------------------------------------------------------- ranges ---


def trainer_errors(trainer: base_config.Config, mode: Optional[str]
                   ) -> Problems:
  """Steps and intervals Orbit needs for `mode` (None: any mode)."""
  training = mode is None or mode in TRAIN_MODES
  problems = field_errors(
      trainer, train_steps=at_least(1) if training else NON_NEGATIVE,
      steps_per_loop=at_least(1), validation_interval=at_least(1),
      checkpoint_interval=at_least(1), max_to_keep=at_least(1))
  if trainer.validation_steps == 0 or trainer.validation_steps < -1:
    problems.append(('validation_steps', 'must be -1 (the whole validation '
                     f'set) or >= 1, got {trainer.validation_steps!r}'))
  if training and trainer.summary_interval is not None:
    if trainer.summary_interval < 1:
      problems.append(('summary_interval',
                       f'must be >= 1, got {trainer.summary_interval!r}'))
    elif (trainer.steps_per_loop >= 1 and
          trainer.summary_interval % trainer.steps_per_loop):
      problems.append(('summary_interval', 'must be a multiple of '
                       f'steps_per_loop ({trainer.steps_per_loop}), got '
                       f'{trainer.summary_interval}'))
  return problems


def runtime_errors(runtime: base_config.Config) -> Problems:
  """`mixed_precision_dtype` spelled as Model Garden's runtime expects."""
  dtype = runtime.mixed_precision_dtype
  if dtype in (None, '') or dtype in MIXED_PRECISION_DTYPES:
    return []
  hint = ''
  if isinstance(dtype, str) and dtype.startswith('mixed_'):
    hint = (f' (Model Garden spells the Keras policy {dtype!r} as '
            f'{dtype[len("mixed_"):]!r})')
  return [('mixed_precision_dtype', 'must be one of '
           f'{list(MIXED_PRECISION_DTYPES)}, got {dtype!r}{hint}')]


def multi_worker_errors(params: base_config.Config) -> Problems:
  """A multi-worker run needs one file-shuffle seed shared by all workers.

  Model Garden's InputReader shuffles the training files, then gives worker
  i every N-th file from i; without `seed` each worker shuffles with its own
  random seed, so the workers' file shards overlap (docs/recipes.md).
  """
  runtime, task = params.runtime, getattr(params, 'task', None)
  train_data = getattr(task, 'train_data', None)
  if (getattr(runtime, 'distribution_strategy', None) !=
      'multi_worker_mirrored' or train_data is None or
      getattr(train_data, 'seed', 0) is not None):
    return []
  return [('task.train_data.seed', 'must be set (any int, the same on every '
           'worker) with runtime.distribution_strategy=multi_worker_mirrored:'
           ' without it each worker shuffles the training files with its own '
           'random seed and the workers read overlapping file shards')]


def range_errors(params: base_config.Config,
                 mode: Optional[str] = None) -> List[str]:
  """'key: problem' from every nested config's `value_errors()`."""
  problems = []
  for key, cfg in _configs(params, ''):
    found = list(cfg.value_errors()) if hasattr(cfg, 'value_errors') else []
    if key == 'trainer':
      found += trainer_errors(cfg, mode)
    if key == 'runtime':
      found += runtime_errors(cfg)
    if not key and hasattr(cfg, 'runtime'):
      found += multi_worker_errors(cfg)
    problems += [f'{key}.{name}: {problem}' if key else f'{name}: {problem}'
                 for name, problem in found]
  return problems


def validate_experiment(params: base_config.Config,
                        mode: Optional[str] = None) -> None:
  """Raises `ConfigError` listing every wrong type, then every bad range.

  Args:
    params: an experiment config (after every override).
    mode: the Model Garden mode it will run in (train checks need
      `train_steps >= 1`); None checks as for training.

  Raises:
    ConfigError: naming each offending key.
  """
  problems = type_errors(params)
  if not problems:
    problems = range_errors(params, mode)
  if problems:
    raise ConfigError(problems)
