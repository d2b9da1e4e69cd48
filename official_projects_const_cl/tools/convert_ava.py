r"""Command line: AVA / AVA-Kinetics CSVs and frames -> keyframe TFRecords.

  python -m official_projects_const_cl.tools.convert_ava \
      --annotations=ava_train_v2.2.csv --frames_dir=frames/ \
      --label_map=ava_action_list_v2.2.pbtxt --output_prefix=/data/ava/train

Inputs, output layout and exit statuses: docs/datasets.md (AVA).
"""

import argparse
import sys
from typing import List, Optional

from absl import logging

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders.conversion import ava_converter


def cli(argv: Optional[List[str]] = None) -> ava_converter.AvaConversionReport:
  """Command line; raises SystemExit(1) when no keyframe could be written.

  A missing or malformed input file raises a UserError (exit status 2 from
  `main`).
  """
  parser = argparse.ArgumentParser(
      description='Convert AVA v2.2 / AVA-Kinetics keyframe labels and videos '
      'into keyframe TFRecords (one SequenceExample per keyframe).')
  parser.add_argument('--annotations', required=True,
                      help='CSV of video_id,timestamp,x1,y1,x2,y2,action_id,'
                      'person_id rows (ava_train_v2.2.csv, ...).')
  parser.add_argument('--output_prefix', required=True,
                      help='Shards are <prefix>-0000i-of-0000N.tfrecord.')
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument('--frames_dir', default=None,
                      help='Frame folders <name>/<name>_%%06d.jpg at --fps.')
  source.add_argument('--videos_dir', default=None,
                      help='Video files <name>.mp4|mkv|webm|avi.')
  source.add_argument('--video_records', default=None,
                      help='Glob of clip TFRecords (e.g. the demo world '
                      'train-*.tfrecord).')
  parser.add_argument('--label_map', default=None,
                      help='Action label map pbtxt; rows of other ids are '
                      'dropped.')
  parser.add_argument('--excluded_timestamps', default=None)
  parser.add_argument('--detections', default=None,
                      help='Person detections CSV video_id,timestamp,x1,y1,'
                      'x2,y2,...,score.')
  parser.add_argument('--no_detection_keyframes', action='store_true',
                      help='Write only keyframes with ground truth, even when '
                      'detections name others.')
  parser.add_argument('--fps', type=float, default=ava_converter.DEFAULT_FPS,
                      help='Frame rate of --frames_dir; videos are resampled '
                      'to it. Records use their own clip/frame_rate.')
  parser.add_argument('--timestamp_offset_s', type=float, default=0.0,
                      help='Time of the first frame in the CSV clock (AVA '
                      '15-min segments: 900).')
  parser.add_argument('--num_frames', type=int, default=ava_converter.DEFAULT_NUM_FRAMES)
  parser.add_argument('--frame_stride', type=int,
                      default=ava_converter.DEFAULT_FRAME_STRIDE)
  parser.add_argument('--short_side', type=int, default=None)
  parser.add_argument('--jpeg_quality', type=int, default=90)
  parser.add_argument('--num_shards', type=int, default=1)
  parser.add_argument('--frame_pattern', default=ava_converter.DEFAULT_FRAME_PATTERN)
  parser.add_argument('--frame_start_index', type=int, default=1)
  parser.add_argument('--box_tolerance', type=float,
                      default=ava_converter.DEFAULT_BOX_TOLERANCE)
  parser.add_argument('--seek_gap_s', type=float, default=ava_converter.DEFAULT_SEEK_GAP_S)
  parser.add_argument('--log_every', type=int, default=ava_converter.DEFAULT_LOG_EVERY)
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  try:
    report = ava_converter.convert_ava(
        args.annotations, args.output_prefix, frames_dir=args.frames_dir,
        videos_dir=args.videos_dir, video_records=args.video_records,
        label_map=args.label_map,
        excluded_timestamps=args.excluded_timestamps,
        detections=args.detections,
        detection_keyframes=not args.no_detection_keyframes, fps=args.fps,
        timestamp_offset_s=args.timestamp_offset_s,
        num_frames=args.num_frames, frame_stride=args.frame_stride,
        short_side=args.short_side, jpeg_quality=args.jpeg_quality,
        num_shards=args.num_shards, frame_pattern=args.frame_pattern,
        frame_start_index=args.frame_start_index,
        box_tolerance=args.box_tolerance, seek_gap_s=args.seek_gap_s,
        log_every=args.log_every)
  except (FileNotFoundError, ValueError) as e:
    raise errors.UserError(str(e)) from e
  print(report.summary())
  if report.keyframes_written == 0:
    sys.stderr.write('ERROR: no keyframe was written; the summary above '
                     'gives the reasons.\n')
    raise SystemExit(errors.EXIT_FAILURE)
  return report


def main(argv: Optional[List[str]] = None) -> None:
  """Console-script entry point: `cli` with the exit statuses of errors.py."""
  errors.run_main(cli, argv)


if __name__ == '__main__':
  main()
