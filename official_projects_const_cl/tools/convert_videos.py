r"""Command line: convert a folder of videos into clip TFRecords.

  python -m official_projects_const_cl.tools.convert_videos \
      --input_dir=videos/ --output_prefix=/data/clips/train --num_shards=8

Labels: class sub-folders (default), `--labels_csv`, `--ucf101_split_dir`,
`--hmdb51_split_dir` or `--kinetics_csv`; see docs/datasets.md. Exit status:
0 when at least one video was converted, 1 when none was, 2 for a user error.
"""

import sys
from typing import List, Optional

from absl import flags
from absl import logging

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders.conversion import video_converter
from official_projects_const_cl.dataloaders.conversion import video_splits


def define_flags(fv: flags.FlagValues) -> None:
  """Convert videos or frame folders into clip TFRecords."""
  flags.DEFINE_string('input_dir', None, 'Folder of videos / frame folders.',
                      required=True, flag_values=fv)
  flags.DEFINE_string('output_prefix', None, 'Shards are '
                      '<prefix>-0000i-of-0000N.tfrecord.', required=True,
                      flag_values=fv)
  # Labels: at most one of these; default: labels from class sub-folders.
  flags.DEFINE_string('labels_csv', None, 'CSV of path_or_id,label rows.',
                      flag_values=fv)
  flags.DEFINE_string('ucf101_split_dir', None, 'UCF101 ucfTrainTestlist/ '
                      'folder (classInd.txt, trainlist0N.txt, '
                      'testlist0N.txt); needs --subset.', flag_values=fv)
  flags.DEFINE_string('hmdb51_split_dir', None, 'HMDB51 '
                      'testTrainMulti_7030_splits/ folder '
                      '(<class>_test_splitN.txt); needs --subset. Label map: '
                      'sorted class names.', flag_values=fv)
  flags.DEFINE_string('kinetics_csv', None, 'Kinetics CSV label,youtube_id,'
                      'time_start,time_end,split; videos <youtube_id>_'
                      '<start:06d>_<end:06d>.mp4 or full <youtube_id>.mp4 '
                      '(trimmed).', flag_values=fv)
  flags.DEFINE_string('kinetics_class_list', None, 'Label map for '
                      '--kinetics_csv, one class per line (e.g. the train '
                      '_label_map.txt); default: sorted CSV labels.',
                      flag_values=fv)
  flags.DEFINE_enum('split', None, ('1', '2', '3'), 'UCF101 / HMDB51 split '
                    '(default 1).', flag_values=fv)
  flags.DEFINE_enum('subset', None, ('train', 'test'), 'UCF101 / HMDB51 '
                    'subset.', flag_values=fv)
  flags.DEFINE_bool('allow_missing', None, 'UCF101 / HMDB51: convert the '
                    'found videos when listed ones are missing (they are '
                    'reported in <prefix>_failures.csv). Kinetics always '
                    'does.', flag_values=fv)
  flags.DEFINE_integer('num_shards', 1, 'Output shards.', flag_values=fv)
  flags.DEFINE_integer('num_frames', None, 'Frames kept per video (evenly '
                       'spaced).', flag_values=fv)
  flags.DEFINE_float('fps', None, 'Resample videos to this frame rate.',
                     flag_values=fv)
  flags.DEFINE_integer('short_side', None, 'Resize frames to this shorter '
                       'side.', flag_values=fv)
  flags.DEFINE_integer('jpeg_quality', 90, 'JPEG quality.', flag_values=fv)
  flags.DEFINE_float('frame_folder_rate', None, 'Frame rate of frame '
                     'folders.', flag_values=fv)
  flags.DEFINE_integer('log_every', 50, 'Progress every N videos.',
                       flag_values=fv)


def cli(argv: Optional[List[str]] = None) -> video_converter.ConversionReport:
  """Command line; raises SystemExit(1) when no video could be written.

  Raises `MissingVideosError` (a UserError), converting nothing, when videos
  listed by UCF101 or HMDB51 split files are missing and --allow_missing is
  not given, and a UserError for a missing input folder or labels file.
  """
  args = errors.parse_flags(define_flags, argv or [], 'convert_videos')
  try:
    label_source = video_splits.make_label_source(
        labels_csv=args.labels_csv, ucf101_split_dir=args.ucf101_split_dir,
        hmdb51_split_dir=args.hmdb51_split_dir, kinetics_csv=args.kinetics_csv,
        kinetics_class_list=args.kinetics_class_list,
        split=int(args.split) if args.split else None,
        subset=args.subset, allow_missing=args.allow_missing)
  except (ValueError, FileNotFoundError) as e:
    errors.usage_error(str(e))
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
    more = len(report.failed) - video_converter.MAX_PRINTED_FAILURES
    print(f'... {more} more failures '
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
