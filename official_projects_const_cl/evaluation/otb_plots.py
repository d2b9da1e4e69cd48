"""Success and precision plots of OTB evaluations (the toolkit's figures)."""

import os
from typing import List, Mapping

from official_projects_const_cl.evaluation import otb_metrics


def plot_curves(results_by_tracker: Mapping[str, Mapping[str, object]],
                out_dir: str, dpi: int = 150) -> List[str]:
  """Writes the success and precision plots of OPE as PNG files.

  Args:
    results_by_tracker: tracker name -> `evaluate_sequences` result.
    out_dir: output folder (created).
    dpi: resolution.

  Returns:
    [out_dir/success_plots.png, out_dir/precision_plots.png] (the toolkit's
    file names). Legends read 'name: [score]', trackers sorted by score.
  """
  if not results_by_tracker:
    raise ValueError('No tracker results to plot.')
  # The object-oriented API: no pyplot state, no display backend needed.
  from matplotlib.backends import backend_agg  # pylint: disable=g-import-not-at-top
  from matplotlib import figure  # pylint: disable=g-import-not-at-top

  os.makedirs(out_dir, exist_ok=True)
  styles = [c + s for s in ('-', '--', '-.') for c in ('',) * 10]
  plots = (
      ('success_plots.png', 'success_curve', 'success_score',
       otb_metrics.IOU_THRESHOLDS, 'Overlap threshold', 'Success rate',
       'Success plots of OPE', 1.0),
      ('precision_plots.png', 'precision_curve', 'precision_score',
       otb_metrics.CENTER_ERROR_THRESHOLDS, 'Location error threshold',
       'Precision', 'Precision plots of OPE',
       float(otb_metrics.CENTER_ERROR_THRESHOLDS.max())),
  )
  paths = []
  for fname, curve_key, score_key, xs, xlabel, ylabel, title, xmax in plots:
    names = sorted(results_by_tracker,
                   key=lambda n: -float(results_by_tracker[n][score_key]))
    fig = figure.Figure(figsize=(6.4, 4.8))
    backend_agg.FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, name in enumerate(names):
      result = results_by_tracker[name]
      ax.plot(xs, result[curve_key], styles[i % len(styles)],
              label=f'{name}: [{float(result[score_key]):.3f}]')
    legend = ax.legend(loc='center left', bbox_to_anchor=(1, 0.5),
                       fontsize=7.4)
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(0, xmax), ylim=(0, 1),
           title=title)
    ax.grid(True)
    path = os.path.join(out_dir, fname)
    fig.savefig(path, dpi=dpi, bbox_extra_artists=(legend,),
                bbox_inches='tight')
    paths.append(path)
  return paths
