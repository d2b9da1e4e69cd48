"""Exit statuses and user-error messages of every entry point (errors.py)."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from official_projects_const_cl import errors
from official_projects_const_cl.evaluation import ava_map
from official_projects_const_cl.evaluation import otb
from official_projects_const_cl.tools import convert_ava
from official_projects_const_cl.tools import convert_videos
from official_projects_const_cl.tools import demo_data as demo_data_cli
from official_projects_const_cl.tools import validate_records

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _exit_status(fn, *args, **kwargs):
  with pytest.raises(SystemExit) as info:
    fn(*args, **kwargs)
  return info.value.code


def test_run_main_statuses_and_messages(capsys, monkeypatch):
  monkeypatch.delenv(errors.DEBUG_ENV, raising=False)
  def main(argv):
    if argv == ['user']:
      raise errors.UserError('data/x.csv: no such file')
    if argv == ['value']:
      raise ValueError('line 3: bad number')
    if argv == ['bug']:
      raise ZeroDivisionError('oops')
    return int(argv[0]) if argv else {'a': 1}

  assert _exit_status(errors.run_main, main, ['prog']) == 0  # A dict: 0.
  assert _exit_status(errors.run_main, main, ['prog', '1']) == 1
  capsys.readouterr()
  assert _exit_status(errors.run_main, main, ['prog', 'user']) == 2
  err = capsys.readouterr().err
  assert err.splitlines()[0] == 'ERROR: data/x.csv: no such file'
  assert 'Traceback' not in err
  # A ValueError is a user error only where the entry point says so.
  assert _exit_status(errors.run_main, main, ['prog', 'value'],
                      user_errors=(ValueError,)) == 2
  assert 'ERROR: line 3: bad number' in capsys.readouterr().err
  assert _exit_status(errors.run_main, main, ['prog', 'value']) == 1
  assert 'Traceback' in capsys.readouterr().err
  assert _exit_status(errors.run_main, main, ['prog', 'bug']) == 1
  assert 'ZeroDivisionError: oops' in capsys.readouterr().err
  # --debug (removed before main sees it) or the variable adds the traceback.
  assert _exit_status(errors.run_main, main, ['prog', 'user', '--debug']) == 2
  err = capsys.readouterr().err
  assert 'Traceback' in err and 'ERROR: data/x.csv: no such file' in err
  monkeypatch.setenv(errors.DEBUG_ENV, '1')
  assert _exit_status(errors.run_main, main, ['prog', 'user']) == 2
  assert 'Traceback' in capsys.readouterr().err


def test_data_errors_and_data_loss_are_user_errors():
  tagged = tf.errors.InvalidArgumentError(
      None, None, '{{function_node x}} assertion failed: [Input data error: '
      '/d/a.tfrecord record 3: class label 9 is outside [0, 8) '
      '(num_classes)]\n\t [[{{node Assert}}]] [Op:IteratorGetNext]')
  assert errors.user_error_message(tagged) == (
      'Input data error: /d/a.tfrecord record 3: class label 9 is outside '
      '[0, 8) (num_classes)')
  loss = tf.errors.DataLossError(None, None, 'corrupted record at 1234')
  message = errors.user_error_message(loss)
  assert message.startswith('a TFRecord file is damaged (corrupted record '
                            'at 1234)') and 'validate_records' in message
  assert errors.user_error_message(
      tf.errors.InvalidArgumentError(None, None, 'shapes differ')) is None
  assert errors.user_error_message(KeyError('no key x'), (KeyError,)) == (
      'no key x')


def test_gin_context_lines_are_dropped():
  error = errors.UserError('2 files are bad:\n  a.tfrecord is gzip\n'
                           "  In call to configurable 'Trainer' (<class>)")
  assert errors.user_error_message(error) == (
      '2 files are bad:\n  a.tfrecord is gzip')


def test_reraise_as_user_error():
  with pytest.raises(errors.UserError, match='^config: bad$') as info:
    with errors.reraise_as_user_error((ValueError,), 'config: '):
      raise ValueError('bad')
  assert isinstance(info.value.__cause__, ValueError)
  with pytest.raises(TypeError):
    with errors.reraise_as_user_error((ValueError,)):
      raise TypeError('not converted')


def test_debug_flag_forms():
  assert errors.strip_debug_flag(['p', '--debug', '--x=1', '--nodebug']) == [
      'p', '--x=1']
  assert errors.debug_requested(['p', '--debug'])
  assert not errors.debug_requested(['p', '--debugger'])


def _run(module, *args):
  return subprocess.run(
      [sys.executable, '-m', module, *args], capture_output=True, text=True,
      cwd=REPO, check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=REPO))


def _one_error_line(stderr, expected):
  assert 'Traceback' not in stderr
  lines = [l for l in stderr.splitlines() if l.startswith('ERROR')]
  assert len(lines) == 1 and expected in lines[0], stderr


@pytest.mark.parametrize('entry,args,expected', [
    (ava_map.console_main,
     ['-g', 'missing_gt.csv', '-d', 'missing_det.csv', '-l', 'm.pbtxt'],
     "No such file or directory: 'm.pbtxt'"),
    (otb.console_main, ['--root', 'no_such_root', '--results', 'r'],
     'no_such_root'),
    (validate_records.main, ['--input_path=no_such_dir/*.tfrecord'],
     "input_path pattern 'no_such_dir/*.tfrecord' matches no file"),
    (convert_ava.main, ['--annotations=no_such.csv', '--frames_dir=.',
                        '--output_prefix=/tmp/x'], 'no_such.csv'),
    (convert_videos.main, ['--input_dir=no_such_dir', '--output_prefix=/tmp/x'],
     'Input folder no_such_dir does not exist'),
    (demo_data_cli.main, ['--output_dir=/tmp/x', '--num_train=0'],
     'Need num_train >= 1'),
], ids=['ava_map', 'otb', 'validate_records', 'convert_ava', 'convert_videos',
        'demo_data'])
def test_argparse_entry_points_exit_2_with_one_message(entry, args, expected,
                                                       capsys):
  assert _exit_status(entry, ['prog'] + args) == 2
  _one_error_line(capsys.readouterr().err, expected)


@pytest.mark.parametrize('module,args,expected', [
    ('official_projects_const_cl.tools.run_demo', ['--no_such_flag'],
     "Unknown command line flag 'no_such_flag'"),
    ('official_projects_const_cl.tools.retrieval',
     ['--experiment=no_such_experiment', '--init_checkpoint=x'],
     "--experiment is unknown: 'no_such_experiment'"),
], ids=['run_demo', 'retrieval'])
def test_absl_entry_points_exit_2_with_one_message(module, args, expected):
  proc = _run(module, *args)
  assert proc.returncode == 2, proc.stderr[-2000:]
  _one_error_line(proc.stderr, expected)
