r"""Command line: OTB one-pass evaluation of tracker result folders.

  python -m official_projects_const_cl.evaluation.otb --root=OTB100 \
      --results=results/OTB2015/MyTracker [--results=... more trackers] \
      [--report_dir=reports]
prints the summary as JSON and, with --report_dir, writes performance.json
(the toolkit's 'overall' / 'seq_wise' structure) and success_plots.png /
precision_plots.png. A missing or malformed file exits with status 2 and one
message naming the file (and sequence / line). Metrics: `otb_metrics`;
datasets: `dataloaders/tracking_datasets.py`.
"""

import json
import os
import sys
from typing import Dict, List, Mapping, Optional

from absl import flags
import numpy as np

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import tracking_datasets
from official_projects_const_cl.evaluation import otb_metrics
from official_projects_const_cl.evaluation import otb_plots


def evaluate_results_dir(results_dir: str,
                         ground_truth: Mapping[str, np.ndarray],
                         skip_missing: bool = False) -> Dict[str, object]:
  """`evaluate_sequences` of the `<seq>.txt` predictions in `results_dir`.

  A sequence without a result file is an error unless `skip_missing`.

  Raises:
    FileNotFoundError: naming `results_dir` and the sequences without
      results.
    ValueError: naming the sequence and its file, when a result file has
      another number of boxes than the ground truth has frames (or cannot be
      parsed, or the ground truth has no frame).
  """
  missing = [n for n in ground_truth
             if not os.path.isfile(os.path.join(results_dir, f'{n}.txt'))]
  if missing and not skip_missing:
    raise FileNotFoundError(
        f'{results_dir}: no results for {len(missing)} of '
        f'{len(ground_truth)} sequences: {missing[:10]}'
        + (' ...' if len(missing) > 10 else ''))
  names = [n for n in ground_truth if n not in missing]
  sequences = {}
  for name in names:
    path = os.path.join(results_dir, f'{name}.txt')
    boxes = tracking_datasets.read_results(results_dir, name)
    num_frames = len(ground_truth[name])
    if num_frames == 0:
      raise ValueError(f'{name}: the ground truth has no frame')
    if len(boxes) != num_frames:
      raise ValueError(f'{name}: {path} has {len(boxes)} boxes but the '
                       f'ground truth has {num_frames} frames (one box per '
                       'frame, the first included)')
    sequences[name] = (boxes, ground_truth[name])
  return otb_metrics.evaluate_sequences(
      sequences,
      times={n: tracking_datasets.read_times(results_dir, n) for n in names})


def define_flags(fv: flags.FlagValues) -> None:
  """OTB one-pass evaluation matching the toolkit's ExperimentOTB.report."""
  flags.DEFINE_string('root', None, 'Dataset root (OTB: folder of sequence '
                      'folders).', required=True, flag_values=fv)
  flags.DEFINE_multi_string('results', None, 'Folder(s) of <seq>.txt '
                            'predictions, one tracker each; the tracker is '
                            'named after the folder.', required=True,
                            flag_values=fv)
  flags.DEFINE_string('names', None, 'Comma-separated tracker names for '
                      '--results.', flag_values=fv)
  flags.DEFINE_enum('layout', 'otb', ('otb', 'got10k'), 'Dataset layout.',
                    flag_values=fv)
  flags.DEFINE_string('subset', None, 'GOT-10k subset folder under --root '
                      '(val, ...).', flag_values=fv)
  flags.DEFINE_string('sequences', None, 'Comma-separated sequence names '
                      '(default: all).', flag_values=fv)
  flags.DEFINE_bool('skip_missing', False, 'Evaluate only sequences that have '
                    'results.', flag_values=fv)
  flags.DEFINE_string('report_dir', None, 'Write performance.json and the PNG '
                      'plots here.', flag_values=fv)


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
  """Command line; returns {'trackers': {name: summary}, 'files': [...]}."""
  args = errors.parse_flags(define_flags, argv or [], 'otb',
                            multi_value=('results',))

  names = ([n.strip() for n in args.names.split(',')] if args.names else
           [os.path.basename(os.path.normpath(d)) for d in args.results])
  if len(names) != len(args.results) or len(set(names)) != len(names):
    raise ValueError(f'Need one distinct tracker name per --results folder '
                     f'(--names, or the folder names); got {names} for '
                     f'{args.results}.')
  ground_truth = tracking_datasets.load_ground_truth(
      args.root, args.layout, args.subset,
      args.sequences.split(',') if args.sequences else None)
  results = {name: evaluate_results_dir(d, ground_truth, args.skip_missing)
             for name, d in zip(names, args.results)}
  summary = {name: {k: r[k] for k in ('success_score', 'precision_score',
                                      'success_rate', 'speed_fps',
                                      'num_sequences')}
             for name, r in results.items()}
  files = []
  if args.report_dir:
    os.makedirs(args.report_dir, exist_ok=True)
    report_file = os.path.join(args.report_dir, 'performance.json')
    with open(report_file, 'w') as f:
      json.dump(otb_metrics.toolkit_report(results), f, indent=2)
    files = [report_file] + otb_plots.plot_curves(results, args.report_dir)
  output = {'trackers': summary, 'files': files}
  json.dump(output, sys.stdout, indent=2)
  sys.stdout.write('\n')
  return output


def console_main(argv: Optional[List[str]] = None) -> None:
  """`main` with exit statuses: a missing / malformed file is exit 2.

  KeyError is a user error too: the readers raise it for an unknown
  sequence name or folder (`--sequences`, `--root`).
  """
  errors.run_main(main, argv, user_errors=(ValueError, OSError, KeyError))


if __name__ == '__main__':
  console_main()
