r"""Command line: convert a folder of videos into clip TFRecords.

  python -m official_projects_const_cl.tools.convert_videos \
      --input_dir=videos/ --output_prefix=/data/clips/train --num_shards=8

Labels: class sub-folders (default), `--labels_csv`, `--ucf101_split_dir`,
`--hmdb51_split_dir` or `--kinetics_csv`; see docs/datasets.md. Exit status:
0 when at least one video was converted, 1 when none was, 2 for a user error.
"""

import argparse
import sys
from typing import List, Optional

from absl import logging

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders.conversion import video_converter
from official_projects_const_cl.dataloaders.conversion import video_labels


def cli(argv: Optional[List[str]] = None) -> video_converter.ConversionReport:
  """Command line; raises SystemExit(1) when no video could be written.

  Raises `MissingVideosError` (a UserError), converting nothing, when videos
  listed by UCF101 or HMDB51 split files are missing and --allow_missing is
  not given, and a UserError for a missing input folder or labels file.
  """
  parser = argparse.ArgumentParser(
      description='Convert videos or frame folders into clip TFRecords.')
  parser.add_argument('--input_dir', required=True)
  parser.add_argument('--output_prefix', required=True,
                      help='Shards are <prefix>-0000i-of-0000N.tfrecord.')
  labels = parser.add_argument_group(
      'labels', 'At most one of these; default: labels from class '
      'sub-folders.')
  labels.add_argument('--labels_csv', default=None,
                      help='CSV of path_or_id,label rows.')
  labels.add_argument('--ucf101_split_dir', default=None,
                      help='UCF101 ucfTrainTestlist/ folder (classInd.txt, '
                      'trainlist0N.txt, testlist0N.txt); needs --subset.')
  labels.add_argument('--hmdb51_split_dir', default=None,
                      help='HMDB51 testTrainMulti_7030_splits/ folder '
                      '(<class>_test_splitN.txt); needs --subset. Label map: '
                      'sorted class names.')
  labels.add_argument('--kinetics_csv', default=None,
                      help='Kinetics CSV label,youtube_id,time_start,'
                      'time_end,split; videos <youtube_id>_<start:06d>_'
                      '<end:06d>.mp4 or full <youtube_id>.mp4 (trimmed).')
  labels.add_argument('--kinetics_class_list', default=None,
                      help='Label map for --kinetics_csv, one class per line '
                      '(e.g. the train _label_map.txt); default: sorted CSV '
                      'labels.')
  labels.add_argument('--split', type=int, choices=(1, 2, 3), default=None,
                      help='UCF101 / HMDB51 split (default 1).')
  labels.add_argument('--subset', choices=('train', 'test'), default=None,
                      help='UCF101 / HMDB51 subset.')
  labels.add_argument('--allow_missing', action='store_true', default=None,
                      help='UCF101 / HMDB51: convert the found videos when '
                      'listed ones are missing (they are reported in '
                      '<prefix>_failures.csv). Kinetics always does.')
  parser.add_argument('--num_shards', type=int, default=1)
  parser.add_argument('--num_frames', type=int, default=None)
  parser.add_argument('--fps', type=float, default=None)
  parser.add_argument('--short_side', type=int, default=None)
  parser.add_argument('--jpeg_quality', type=int, default=90)
  parser.add_argument('--frame_folder_rate', type=float, default=None)
  parser.add_argument('--log_every', type=int, default=50)
  args = parser.parse_args(argv)
  try:
    label_source = video_labels.make_label_source(
        labels_csv=args.labels_csv, ucf101_split_dir=args.ucf101_split_dir,
        hmdb51_split_dir=args.hmdb51_split_dir, kinetics_csv=args.kinetics_csv,
        kinetics_class_list=args.kinetics_class_list, split=args.split,
        subset=args.subset, allow_missing=args.allow_missing)
  except (ValueError, FileNotFoundError) as e:
    parser.error(str(e))
  logging.set_verbosity(logging.INFO)
  with errors.reraise_as_user_error((ValueError, FileNotFoundError)):
    report = video_converter.convert(
        args.input_dir, args.output_prefix, labels_csv=args.labels_csv,
        num_shards=args.num_shards, num_frames=args.num_frames, fps=args.fps,
        short_side=args.short_side, jpeg_quality=args.jpeg_quality,
        frame_folder_rate=args.frame_folder_rate, label_source=label_source,
        log_every=args.log_every)
  print(report.summary())
  for path, reason in report.failed[:video_converter.MAX_PRINTED_FAILURES]:
    print(f'FAILED {path}: {reason}')
  if len(report.failed) > video_converter.MAX_PRINTED_FAILURES:
    print(f'... {len(report.failed) - video_converter.MAX_PRINTED_FAILURES} more failures '
          f'in {args.output_prefix}_failures.csv.')
  if report.written == 0:
    sys.stderr.write(f'ERROR: no video was converted ({len(report.failed)} '
                     f'failed; {args.output_prefix}_failures.csv lists '
                     'them).\n')
    raise SystemExit(errors.EXIT_FAILURE)
  return report


def main(argv: Optional[List[str]] = None) -> None:
  """Console-script entry point: `cli` with the exit statuses of errors.py."""
  errors.run_main(cli, argv)


if __name__ == '__main__':
  main()
