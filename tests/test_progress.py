"""Progress lines: step, rate without evaluation time, ETA with evaluations."""

from official_projects_const_cl.tasks import progress


class _Run:
  """A fake clock and global step."""

  def __init__(self):
    self.now = 100.0
    self.step = 0


def test_format_seconds():
  assert progress.format_seconds(42.4) == '42s'
  assert progress.format_seconds(200) == '3m20s'
  assert progress.format_seconds(3725) == '1h02m'
  assert progress.format_seconds(None) == '?'
  assert progress.format_seconds(float('inf')) == '?'


def test_rate_excludes_evaluation_and_eta_counts_the_evaluations_left():
  run = _Run()
  lines = []
  bar = progress.TrainProgress(
      total_steps=1000, get_step=lambda: run.step, name='pretrain',
      evaluation_interval=500, smoothing=1.0, clock=lambda: run.now,
      write=lines.append)
  run.now, run.step = 130.0, 100  # First loop, with tracing: bounds.
  assert bar() == ('[pretrain] step 100/1000 (10%) | >=3.33 steps/s (first '
                   'loop, with tracing) | elapsed 30s | ETA <=4m30s '
                   '(+ evaluations)')
  run.now, run.step = 150.0, 200  # 100 steps in 20 s.
  bar()
  assert '5.00 steps/s' in lines[-1]
  # ETA: 800 steps at 5/s = 160 s; no evaluation timed yet.
  assert lines[-1].endswith('ETA 2m40s')
  run.now, run.step = 210.0, 500
  bar()  # 300 steps in 60 s: still 5/s.
  run.now = 250.0  # A 40-second evaluation at step 500 ...
  bar.eval_action({})
  run.now, run.step = 270.0, 600  # ... is not training time: 100 steps/20 s.
  bar()
  # 400 steps / 5 per s = 80 s, plus 1 evaluation (at 1000) of 40 s.
  assert lines[-1] == ('[pretrain] step 600/1000 (60%) | 5.00 steps/s | '
                       'elapsed 2m50s | ETA 2m00s')
  assert bar.lines == lines


def test_resumed_run_counts_from_its_first_step():
  run = _Run()
  run.step = 400  # Restored from a checkpoint.
  bar = progress.TrainProgress(total_steps=1000, get_step=lambda: run.step,
                               clock=lambda: run.now, write=lambda _: None)
  run.now, run.step = 110.0, 500  # 100 steps in 10 s (not 500).
  assert bar().endswith('| >=10.00 steps/s (first loop, with tracing) | '
                        'elapsed 10s | ETA <=50s')


def test_smoothing_averages_rates():
  run = _Run()
  bar = progress.TrainProgress(total_steps=10, get_step=lambda: run.step,
                               smoothing=0.5, clock=lambda: run.now,
                               write=lambda _: None)
  bar()
  run.now, run.step = 101.0, 2  # 2 steps/s.
  bar()
  run.now, run.step = 102.0, 6  # 4 steps/s -> 0.5 * 4 + 0.5 * 2 = 3.
  assert '3.00 steps/s' in bar()
  assert bar.eta_seconds(6) == 4 / 3
