"""Progress lines with a time estimate for long training runs.

Orbit logs the losses every `summary_interval` steps; a user waiting for a
run also wants to know how far it is and when it ends. `TrainProgress` is an
Orbit train action (called after every `steps_per_loop` steps) and, through
`eval_action`, an eval action; it prints

  [pretrain] step 400/1000 (40%) | 4.9 steps/s | elapsed 1m25s | ETA 2m03s

The rate is measured over the last train loop, smoothed, and leaves out
the time spent evaluating; the estimate adds the evaluations still to come
at the duration of the last one. The first loop also builds and traces the
step, so its line gives the rate since the start as a lower bound and the
ETA as an upper bound:

  [pretrain] step 100/1000 (10%) | >=3.33 steps/s (first loop, with
  tracing) | elapsed 30s | ETA <=4m30s
"""

import math
import sys
import time
from typing import Any, Callable, Optional


def format_seconds(seconds: float) -> str:
  """1h02m, 3m20s, 42s."""
  if seconds is None or not math.isfinite(seconds):
    return '?'
  seconds = int(round(max(seconds, 0.0)))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return f'{hours}h{minutes:02d}m'
  if minutes:
    return f'{minutes}m{secs:02d}s'
  return f'{secs}s'


class TrainProgress:
  """Prints step / total, rate, elapsed time and ETA after each train loop."""

  def __init__(self,
               total_steps: int,
               get_step: Callable[[], int],
               name: str = 'train',
               evaluation_interval: Optional[int] = None,
               smoothing: float = 0.5,
               clock: Callable[[], float] = time.monotonic,
               write: Callable[[str], Any] = None):
    """Initializes the reporter.

    Args:
      total_steps: The step the run ends at.
      get_step: Returns the current global step.
      name: Shown in brackets at the start of each line.
      evaluation_interval: Steps between evaluations (None: no evaluation in
        the loop); used to count the evaluations left.
      smoothing: Weight of the newest rate in the moving average.
      clock: Seconds (monotonic).
      write: Where lines go (default: stdout, flushed).
    """
    self._total = int(total_steps)
    self._get_step = get_step
    self._name = name
    self._eval_interval = evaluation_interval
    self._smoothing = smoothing
    self._clock = clock
    self._write = write or self._print
    self._begin = clock()
    self._start_step = int(get_step())
    self._window = None  # (step, time) where the current rate window began.
    self._last_report = None
    self._rate = None
    self._last_eval_duration = None
    self.lines = []

  @staticmethod
  def _print(line: str) -> None:
    print(line, flush=True, file=sys.stdout)

  def eval_action(self, output: Any = None) -> None:
    """Orbit eval action: times the evaluation and restarts the rate window.

    An evaluation starts right after the train loop that precedes it, so its
    duration is the time since the last progress report.
    """
    del output
    now = self._clock()
    if self._last_report is not None:
      self._last_eval_duration = now - self._last_report
    self._window = (int(self._get_step()), now)

  def __call__(self, output: Any = None) -> str:
    """Orbit train action: reports the progress; returns the line."""
    del output
    step = int(self._get_step())
    now = self._clock()
    if self._window is not None and step > self._window[0]:
      rate = (step - self._window[0]) / max(now - self._window[1], 1e-9)
      self._rate = rate if self._rate is None else (
          self._smoothing * rate + (1 - self._smoothing) * self._rate)
    self._window = (step, now)
    self._last_report = now
    line = self.format(step, now)
    self.lines.append(line)
    self._write(line)
    return line

  def eta_seconds(self, step: int) -> Optional[float]:
    """Seconds left: training steps at the rate, plus evaluations to come."""
    if self._rate is None:
      return None
    left = max(self._total - step, 0) / self._rate
    if self._eval_interval and self._last_eval_duration is not None:
      evals_left = (self._total // self._eval_interval -
                    step // self._eval_interval)
      left += max(evals_left, 0) * self._last_eval_duration
    return left

  def format(self, step: int, now: float) -> str:
    percent = 100.0 * step / self._total if self._total else 100.0
    eta = f'ETA {format_seconds(self.eta_seconds(step))}'
    if self._rate:
      rate = f'{self._rate:.2f} steps/s'
    elif step > self._start_step and now > self._begin:
      # The first loop: the time since the start includes building and
      # tracing, so this rate is a lower bound and the ETA an upper one.
      first = (step - self._start_step) / (now - self._begin)
      rate = f'>={first:.2f} steps/s (first loop, with tracing)'
      eta = (f'ETA <={format_seconds(max(self._total - step, 0) / first)}'
             ' (+ evaluations)' if self._eval_interval else
             f'ETA <={format_seconds(max(self._total - step, 0) / first)}')
    else:
      rate = 'rate ?'
    return (f'[{self._name}] step {step}/{self._total} ({percent:.0f}%) | '
            f'{rate} | elapsed {format_seconds(now - self._begin)} | {eta}')
