"""User errors and exit codes shared by every entry point.

Every program of the project (`train.py`, the tools, the evaluation CLIs)
uses absl flags and runs its main function through `run_app` (programs on
the global `absl.flags.FLAGS`) or `run_main` (a `main(argv)` that parses its
flags with `parse_flags`), which turn the outcome into an exit status:

* 0: success.
* 1: failure: the program ran but produced nothing (e.g. no video could be
  converted), found problems it reports (`validate_records`), or hit an
  unexpected error (a bug; its traceback is printed).
* 2: user error: a bad flag, path, config or record. One line `ERROR: ...`
  names the user's file / key and the problem, without a traceback.

`--debug` on the command line (removed before the program's own flags are
parsed) or `CONST_CL_DEBUG=1` in the environment also prints the traceback
of user errors.

User errors are `UserError`s, errors of the types an entry point declares
(`user_errors=`, e.g. `ValueError` for a converter whose every ValueError is
about its inputs), input-pipeline errors whose message carries
`DATA_ERROR_TAG` (the data loaders' checks, which name the file and record),
and TensorFlow's `DataLossError` (a damaged TFRecord file).

This module imports nothing of the package (and not TensorFlow), so every
layer may raise `UserError`.
"""

import contextlib
import os
import re
import sys
import traceback
from typing import (Any, Callable, Iterator, List, Optional, Sequence, Tuple,
                    Type)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USER_ERROR = 2
DEBUG_ENV = 'CONST_CL_DEBUG'
DEBUG_FLAG = '--debug'
# Prefix of the messages of input-pipeline checks (tf.debugging.Assert):
# the text after it, up to the end of its line, is the user's message.
DATA_ERROR_TAG = 'Input data error: '
_VALIDATE_HINT = ('python -m official_projects_const_cl.tools.validate_records'
                  ' --input_path=<the input_path of the run>')


class UserError(Exception):
  """A problem with what the user gave: a flag, a path, a config, a record.

  The message must name the user's file / key / value and what was expected;
  entry points print it without a traceback and exit with status 2.
  """


def debug_requested(argv: Optional[Sequence[str]] = None) -> bool:
  """Whether `--debug` is in `argv` or CONST_CL_DEBUG is set (not 0)."""
  if os.environ.get(DEBUG_ENV, '').strip().lower() not in ('', '0', 'false',
                                                           'no'):
    return True
  return any(arg in (DEBUG_FLAG, DEBUG_FLAG + '=true', DEBUG_FLAG + '=1')
             for arg in (sys.argv if argv is None else argv)[1:])


def strip_debug_flag(argv: Sequence[str]) -> List[str]:
  """`argv` without the `--debug` forms `debug_requested` recognizes."""
  flags = (DEBUG_FLAG, DEBUG_FLAG + '=true', DEBUG_FLAG + '=1',
           DEBUG_FLAG + '=false', DEBUG_FLAG + '=0', '--nodebug')
  return [argv[0]] + [a for a in argv[1:] if a not in flags] if argv else []


def _without_gin_context(text: str) -> str:
  """Drops the 'In call to configurable ...' lines gin appends to errors."""
  return '\n'.join(line for line in text.split('\n')
                   if not line.strip().startswith('In call to configurable '))


def _data_error_text(message: str) -> Optional[str]:
  """The tagged line of an input-pipeline error message, if any."""
  start = message.find(DATA_ERROR_TAG)
  if start < 0:
    return None
  line = message[start:].split('\n', 1)[0].rstrip()
  # tf.debugging.Assert prints its data as '[<text>]'.
  return line[:-1].rstrip() if line.endswith(']') else line


def user_error_message(exc: BaseException,
                       user_errors: Tuple[Type[BaseException], ...] = ()
                       ) -> Optional[str]:
  """The one-line message of a user error, or None if `exc` is not one."""
  if isinstance(exc, UserError) or (user_errors and
                                    isinstance(exc, user_errors)):
    text = str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1:
      text = str(exc.args[0])  # KeyError's str() adds quotes.
    return _without_gin_context(text).rstrip() or type(exc).__name__
  message = getattr(exc, 'message', None) or str(exc)
  tagged = _data_error_text(message)
  if tagged:
    return tagged
  tf = sys.modules.get('tensorflow')
  if tf is not None and isinstance(exc, tf.errors.DataLossError):
    first = message.strip().split('\n', 1)[0]
    if 'record' in first:
      return (f'a TFRecord file is damaged ({first}); the file is named by '
              f'{_VALIDATE_HINT}.')
    return f'a file is damaged or truncated: {first}'
  return None


def report(exc: BaseException, debug: bool,
           user_errors: Tuple[Type[BaseException], ...] = ()) -> int:
  """Prints `exc` as an entry point should and returns the exit status."""
  message = user_error_message(exc, user_errors)
  if message is None:
    traceback.print_exception(type(exc), exc, exc.__traceback__)
    return EXIT_FAILURE
  if debug:
    traceback.print_exception(type(exc), exc, exc.__traceback__)
  sys.stderr.write(f'ERROR: {message}\n')
  if not debug:
    sys.stderr.write(f'(--debug or {DEBUG_ENV}=1 shows the traceback.)\n')
  sys.stderr.flush()
  return EXIT_USER_ERROR


def _exit_status(result: Any) -> int:
  # bool is an int: a main returning True/False is not an exit status.
  if isinstance(result, int) and not isinstance(result, bool):
    return result
  return EXIT_OK


def run_main(main: Callable[[List[str]], Any],
             argv: Optional[Sequence[str]] = None,
             user_errors: Tuple[Type[BaseException], ...] = ()) -> None:
  """Runs an argparse-style `main(argv)` and exits with its status.

  Args:
    main: called with the arguments after the program name, `--debug`
      removed; an int result is the exit status, anything else means 0.
    argv: the command line including the program name (default sys.argv).
    user_errors: exception types that are user errors in this program.
  """
  argv = list(sys.argv if argv is None else argv)
  debug = debug_requested(argv)
  try:
    status = _exit_status(main(strip_debug_flag(argv)[1:]))
  except SystemExit:
    raise  # argparse usage errors (status 2) and explicit exits.
  except KeyboardInterrupt:
    sys.stderr.write('Interrupted.\n')
    status = 130
  except Exception as e:  # pylint: disable=broad-except
    status = report(e, debug, user_errors)
  sys.exit(status)


def run_app(main: Callable[[List[str]], Any],
            user_errors: Tuple[Type[BaseException], ...] = ()) -> None:
  """`absl.app.run(main)` with the exit statuses of this module.

  A flags parsing error is a user error (status 2, one message); `main`'s
  return value is ignored (absl would hand it to `sys.exit`, so a returned
  dict would exit with status 1) unless it is an int.

  Args:
    main: the absl main, called with the remaining arguments.
    user_errors: exception types that are user errors in this program.
  """
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  debug = debug_requested()

  def parse_flags(argv):
    try:
      return flags.FLAGS(strip_debug_flag(argv))
    except flags.Error as e:
      sys.stderr.write(f'ERROR: {e}\nPass --helpshort or --helpfull to see '
                       'the flags.\n')
      sys.exit(EXIT_USER_ERROR)

  def wrapped(argv):
    try:
      return _exit_status(main(argv))
    except SystemExit:
      raise
    except KeyboardInterrupt:
      sys.stderr.write('Interrupted.\n')
      return 130
    except Exception as e:  # pylint: disable=broad-except
      return report(e, debug, user_errors)

  app.run(wrapped, flags_parser=parse_flags)


@contextlib.contextmanager
def reraise_as_user_error(types: Tuple[Type[BaseException], ...],
                          prefix: str = '') -> Iterator[None]:
  """Turns exceptions of `types` raised in the block into `UserError`s.

  For a boundary where every such error is about the user's input (e.g.
  parsing the user's config).

  Args:
    types: exception types to convert.
    prefix: put before the original message, e.g. '--params_override: '.

  Yields:
    Nothing.
  """
  try:
    yield
  except UserError:
    raise
  except types as e:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    raise UserError(f'{prefix}{text}') from e


def usage_error(message: str) -> None:
  """Reports a bad command line as one `ERROR:` line and exits with 2.

  The absl-flags counterpart of argparse's `parser.error`, for the checks a
  program makes on its flags after parsing them.
  """
  sys.stderr.write(f'ERROR: {message}\nPass --helpshort or --helpfull to see '
                   'the flags.\n')
  sys.stderr.flush()
  sys.exit(EXIT_USER_ERROR)


def _expand_multi_values(argv: Sequence[str], names: Sequence[str]
                         ) -> List[str]:
  """`--name a b` -> `--name=a --name=b` for the multi-value flags `names`."""
  out = []
  current = None
  for arg in argv:
    if arg.startswith('-'):
      current = None
      if arg.lstrip('-') in names:  # `--name` alone: values follow.
        current = arg.lstrip('-')
        continue
      out.append(arg)
    elif current is not None:
      out.append(f'--{current}={arg}')
    else:
      out.append(arg)
  return out


def parse_flags(define: Callable[[Any], None], argv: Sequence[str],
                program: str, multi_value: Sequence[str] = ()) -> Any:
  """Parses a tool's command line with absl flags, in a fresh `FlagValues`.

  Each call defines the flags anew, so a program's `main(argv)` can run
  several times in one process (tests) without touching `absl.flags.FLAGS`.

  Args:
    define: called with the new `flags.FlagValues` to define the flags on
      (`flags.DEFINE_string(..., flag_values=fv)`).
    argv: the arguments after the program name.
    program: the program name, for messages.
    multi_value: names of multi-string flags that also accept several values
      after one flag (`--results a b`), as the argparse versions did.

  Returns:
    The parsed `flags.FlagValues`.

  Raises:
    SystemExit: status 2 after one `ERROR:` line, for an unknown flag, a bad
      value, a missing required flag or a stray argument.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  values = flags.FlagValues()
  define(values)
  args = _expand_multi_values(list(argv), multi_value)
  if any(a in ('-h', '--help', '--helpshort', '--helpfull') for a in args):
    doc = (getattr(define, '__doc__', None) or '').strip()
    sys.stdout.write(f'{program}: {doc}\n\n{values.get_help()}\n')
    sys.exit(EXIT_OK)
  try:
    rest = values([program] + args)
  except flags.Error as e:
    missing = re.findall(r'Flag --(\w+) must have a value other than None',
                         str(e))
    usage_error('missing required flag ' + ', '.join(f'--{m}' for m in missing)
                if missing else ' '.join(str(e).split('\n')))
  if len(rest) > 1:
    usage_error(f'unexpected arguments: {" ".join(rest[1:])}')
  return values
