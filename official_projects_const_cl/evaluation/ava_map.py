r"""Command line (prints frame-mAP and per-class AP with names):

  python -m official_projects_const_cl.evaluation.ava_map \
    --groundtruth=ava_val_v2.2.csv --detections=predictions.csv \
    --labelmap=ava_action_list_v2.2_for_activitynet_2019.pbtxt \
    --exclusions=ava_val_excluded_timestamps_v2.2.csv

Metric: `evaluation/ava_metrics.py`; files: `dataloaders/ava_io.py`.
"""

import math
from typing import Any, Dict, Mapping, Optional, Sequence

from absl import flags

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders import ava_io
from official_projects_const_cl.evaluation import ava_metrics
from official_projects_const_cl.ops import ava_keyframes


def evaluate_files(groundtruth_csv: ava_io.PathOrFile,
                   detections_csv: ava_io.PathOrFile,
                   label_map: ava_io.PathOrFile,
                   exclusions_csv: Optional[ava_io.PathOrFile] = None,
                   iou_threshold: float = ava_metrics.DEFAULT_IOU_THRESHOLD
                   ) -> Dict[str, Any]:
  """The official evaluation from files.

  Args:
    groundtruth_csv: AVA ground-truth CSV (8 columns, person_id last).
    detections_csv: predictions `video_id,timestamp,x1,y1,x2,y2,action,score`.
    label_map: pbtxt label map, e.g. ava_action_list_v2.2_for_activitynet_2019.
    exclusions_csv: optional excluded-timestamps CSV.
    iou_threshold: matching threshold (0.5 in the official protocol).

  Returns:
    `frame_map`'s dict plus 'class_names' ({id: name}) and 'categories'.
  """
  categories, class_ids = ava_io.read_label_map(label_map)
  excluded = ava_io.read_exclusions(exclusions_csv)
  groundtruth = ava_io.read_csv(groundtruth_csv, class_ids, 0,
                                is_groundtruth=True)
  detections = ava_io.read_csv(detections_csv, class_ids,
                               ava_keyframes.DETECTION_CAPACITY)
  result = ava_metrics.frame_map(groundtruth, detections, class_ids, excluded,
                     iou_threshold=iou_threshold)
  result['class_names'] = {c['id']: c['name'] for c in categories}
  result['categories'] = categories
  return result


def format_result(result: Mapping[str, Any],
                  class_names: Optional[Mapping[int, str]] = None) -> str:
  """Human-readable mAP and per-class AP table."""
  class_names = class_names or result.get('class_names', {})
  total = len(result['per_class_ap'])
  lines = [f'frame-mAP@{result.get("iou_threshold", 0.5)}IOU: '
           f'{result["mAP"]:.6f} (averaged over '
           f'{result["num_evaluated_classes"]} of {total} classes with ground '
           'truth)',
           f'{"id":>4}  {"AP":>8}  {"#GT":>7}  {"#det":>8}  name']
  for class_id, ap in result['per_class_ap'].items():
    ap_text = f'{ap:8.6f}' if not math.isnan(ap) else f'{"n/a":>8}'
    lines.append(f'{class_id:>4}  {ap_text}  '
                 f'{result["per_class_num_groundtruth"][class_id]:>7}  '
                 f'{result["per_class_num_detections"][class_id]:>8}  '
                 f'{class_names.get(class_id, "")}')
  return '\n'.join(lines)


def define_flags(fv: flags.FlagValues) -> None:
  """AVA v2.2 / AVA-Kinetics frame-mAP@0.5IOU (ActivityNet protocol)."""
  flags.DEFINE_string('groundtruth', None, 'ground-truth CSV', short_name='g',
                      required=True, flag_values=fv)
  flags.DEFINE_string('detections', None, 'detections CSV: video_id,timestamp,'
                      'x1,y1,x2,y2,action_id,score', short_name='d',
                      required=True, flag_values=fv)
  flags.DEFINE_string('labelmap', None, 'label map pbtxt (the evaluated '
                      'classes)', short_name='l', required=True,
                      flag_values=fv)
  flags.DEFINE_string('exclusions', None, 'optional excluded-timestamps CSV',
                      short_name='e', flag_values=fv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Command line: prints frame-mAP and per-class AP; returns 0."""
  args = errors.parse_flags(define_flags, argv or [], 'ava_map')
  result = evaluate_files(args.groundtruth, args.detections, args.labelmap,
                          args.exclusions)
  print(format_result(result))
  return 0


def console_main(argv: Optional[Sequence[str]] = None) -> None:
  """`main` with exit statuses: a missing / malformed file is exit 2."""
  errors.run_main(main, argv, user_errors=(ValueError, OSError))


if __name__ == '__main__':
  console_main()
