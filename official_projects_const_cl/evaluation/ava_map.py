r"""Command line (prints frame-mAP and per-class AP with names):

  python -m official_projects_const_cl.evaluation.ava_map \
    --groundtruth=ava_val_v2.2.csv --detections=predictions.csv \
    --labelmap=ava_action_list_v2.2_for_activitynet_2019.pbtxt \
    --exclusions=ava_val_excluded_timestamps_v2.2.csv [--protocol=current]

`--protocol=2018` (default) applies the keyframe rules of the ActivityNet
script that SlowFast and MMAction2 vendor, `--protocol=current` those of
today's `get_ava_performance.py` (`ava_metrics.frame_map`, docs/metrics.md);
both keep ActivityNet's 50 detection rows per keyframe
(`--max_detections_per_keyframe=0`: all rows, as SlowFast and MMAction2).
A missing or malformed file exits with status 2 and one message naming the
file and line.
Metric: `evaluation/ava_metrics.py`; files: `dataloaders/ava_io.py`.
"""

import math
from typing import Any, Dict, Mapping, Optional, Sequence

from absl import flags

from official_projects_const_cl import errors
from official_projects_const_cl.configs import ava_protocols
from official_projects_const_cl.dataloaders import ava_io
from official_projects_const_cl.evaluation import ava_metrics
from official_projects_const_cl.ops import ava_keyframes


def evaluate_files(groundtruth_csv: ava_io.PathOrFile,
                   detections_csv: ava_io.PathOrFile,
                   label_map: ava_io.PathOrFile,
                   exclusions_csv: Optional[ava_io.PathOrFile] = None,
                   iou_threshold: float = ava_metrics.DEFAULT_IOU_THRESHOLD,
                   protocol: str = ava_protocols.DEFAULT_PROTOCOL,
                   detection_capacity: int = ava_keyframes.DETECTION_CAPACITY
                   ) -> Dict[str, Any]:
  """The official evaluation from files.

  Args:
    groundtruth_csv: AVA ground-truth CSV (8 columns, person_id last; under
      'current' also `video_id,timestamp` rows).
    detections_csv: predictions `video_id,timestamp,x1,y1,x2,y2,action,score`.
    label_map: pbtxt label map, e.g. ava_action_list_v2.2_for_activitynet_2019.
    exclusions_csv: optional excluded-timestamps CSV.
    iou_threshold: matching threshold (0.5 in the official protocol).
    protocol: '2018' or 'current' (`ava_metrics.frame_map`).
    detection_capacity: detection rows kept per keyframe (50 in both
      ActivityNet versions; 0 = all, as SlowFast and MMAction2).

  Returns:
    `frame_map`'s dict plus 'class_names' ({id: name}) and 'categories'.

  Raises:
    ValueError: naming the file (and line) of a malformed input.
    OSError: on a file that cannot be opened.
  """
  ava_protocols.check_protocol(protocol)
  categories, class_ids = ava_io.read_label_map(label_map)
  excluded = ava_io.read_exclusions(exclusions_csv)
  groundtruth = ava_io.read_csv(groundtruth_csv, class_ids, 0,
                                is_groundtruth=True, protocol=protocol)
  detections = ava_io.read_csv(detections_csv, class_ids, detection_capacity,
                               protocol=protocol)
  result = ava_metrics.frame_map(groundtruth, detections, class_ids, excluded,
                                 iou_threshold=iou_threshold,
                                 detection_capacity=detection_capacity,
                                 protocol=protocol)
  result['class_names'] = {c['id']: c['name'] for c in categories}
  result['categories'] = categories
  return result


def format_result(result: Mapping[str, Any],
                  class_names: Optional[Mapping[int, str]] = None) -> str:
  """Human-readable mAP and per-class AP table."""
  class_names = class_names or result.get('class_names', {})
  total = len(result['per_class_ap'])
  protocol = result.get('protocol', ava_protocols.DEFAULT_PROTOCOL)
  lines = [f'frame-mAP@{result.get("iou_threshold", 0.5)}IOU: '
           f'{result["mAP"]:.6f} (averaged over '
           f'{result["num_evaluated_classes"]} of {total} classes with ground '
           f'truth; protocol {protocol})']
  if result.get('num_ignored_detections'):
    count = result['num_ignored_detections']
    lines.append(f'{count} detection row{"s" if count != 1 else ""} on '
                 'keyframes without a ground-truth row ignored (protocol '
                 'current)')
  lines.append(f'{"id":>4}  {"AP":>8}  {"#GT":>7}  {"#det":>8}  name')
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
  flags.DEFINE_enum('protocol', ava_protocols.DEFAULT_PROTOCOL,
                    ava_protocols.PROTOCOLS,
                    "'2018': ActivityNet's script before 2020 (what SlowFast "
                    'and MMAction2 report): detections on keyframes without '
                    "ground truth are false positives. 'current': today's "
                    'script: they are ignored unless the ground truth lists '
                    'the keyframe (a video_id,timestamp row is a keyframe '
                    'without actions).', flag_values=fv)
  flags.DEFINE_integer('max_detections_per_keyframe',
                       ava_keyframes.DETECTION_CAPACITY,
                       'detection rows kept per keyframe, highest scores '
                       '(ActivityNet: 50; 0 = all, as SlowFast / MMAction2)',
                       lower_bound=0, flag_values=fv)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Command line: prints frame-mAP and per-class AP; returns 0."""
  args = errors.parse_flags(define_flags, argv or [], 'ava_map')
  result = evaluate_files(args.groundtruth, args.detections, args.labelmap,
                          args.exclusions, protocol=args.protocol,
                          detection_capacity=args.max_detections_per_keyframe)
  print(format_result(result))
  return 0


def console_main(argv: Optional[Sequence[str]] = None) -> None:
  """`main` with exit statuses: a missing / malformed file is exit 2."""
  errors.run_main(main, argv, user_errors=(ValueError, OSError))


if __name__ == '__main__':
  console_main()
