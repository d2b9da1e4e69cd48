r"""Command line: AVA / AVA-Kinetics CSVs and frames -> keyframe TFRecords.

  python -m official_projects_const_cl.tools.convert_ava \
      --annotations=ava_train_v2.2.csv --frames_dir=frames/ \
      --label_map=ava_action_list_v2.2.pbtxt --output_prefix=/data/ava/train

Inputs, output layout and exit statuses: docs/datasets.md (AVA).
"""

import sys
from typing import List, Optional

from absl import flags
from absl import logging

from official_projects_const_cl import errors
from official_projects_const_cl.dataloaders.conversion import ava_converter


def define_flags(fv: flags.FlagValues) -> None:
  """AVA v2.2 / AVA-Kinetics labels and videos -> keyframe TFRecords."""
  c = ava_converter
  flags.DEFINE_string('annotations', None, 'CSV of video_id,timestamp,x1,y1,'
                      'x2,y2,action_id,person_id rows (ava_train_v2.2.csv, '
                      '...).', required=True, flag_values=fv)
  flags.DEFINE_string('output_prefix', None, 'Shards are '
                      '<prefix>-0000i-of-0000N.tfrecord.', required=True,
                      flag_values=fv)
  flags.DEFINE_string('frames_dir', None, 'Frame folders '
                      '<name>/<name>_%06d.jpg at --fps.', flag_values=fv)
  flags.DEFINE_string('videos_dir', None, 'Video files '
                      '<name>.mp4|mkv|webm|avi.', flag_values=fv)
  flags.DEFINE_string('video_records', None, 'Glob of clip TFRecords (e.g. '
                      'the demo world train-*.tfrecord).', flag_values=fv)
  flags.mark_flags_as_mutual_exclusive(
      ['frames_dir', 'videos_dir', 'video_records'], required=True,
      flag_values=fv)
  flags.DEFINE_string('label_map', None, 'Action label map pbtxt; rows of '
                      'other ids are dropped.', flag_values=fv)
  flags.DEFINE_string('excluded_timestamps', None, 'CSV of video_id,'
                      'timestamp keyframes not to write.', flag_values=fv)
  flags.DEFINE_string('detections', None, 'Person detections CSV video_id,'
                      'timestamp,x1,y1,x2,y2,...,score.', flag_values=fv)
  flags.DEFINE_bool('no_detection_keyframes', False, 'Write only keyframes '
                    'with ground truth, even when detections name others.',
                    flag_values=fv)
  flags.DEFINE_float('fps', c.DEFAULT_FPS, 'Frame rate of --frames_dir; '
                     'videos are resampled to it. Records use their own '
                     'clip/frame_rate.', flag_values=fv)
  flags.DEFINE_float('timestamp_offset_s', 0.0, 'Time of the first frame in '
                     'the CSV clock (AVA 15-min segments: 900).',
                     flag_values=fv)
  flags.DEFINE_integer('num_frames', c.DEFAULT_NUM_FRAMES, 'Clip frames.',
                       flag_values=fv)
  flags.DEFINE_integer('frame_stride', c.DEFAULT_FRAME_STRIDE, 'Source '
                       'frames between clip frames.', flag_values=fv)
  flags.DEFINE_integer('short_side', None, 'Resize frames to this shorter '
                       'side.', flag_values=fv)
  flags.DEFINE_integer('jpeg_quality', 90, 'JPEG quality.', flag_values=fv)
  flags.DEFINE_integer('num_shards', 1, 'Output shards.', flag_values=fv)
  flags.DEFINE_string('frame_pattern', c.DEFAULT_FRAME_PATTERN, 'Frame file '
                      'names in --frames_dir.', flag_values=fv)
  flags.DEFINE_integer('frame_start_index', 1, 'Index of the first frame '
                       'file.', flag_values=fv)
  flags.DEFINE_float('box_tolerance', c.DEFAULT_BOX_TOLERANCE, 'Corners may '
                     'leave [0, 1] by this much (clipped).', flag_values=fv)
  flags.DEFINE_float('seek_gap_s', c.DEFAULT_SEEK_GAP_S, 'Seek in a video '
                     'instead of decoding gaps longer than this.',
                     flag_values=fv)
  flags.DEFINE_integer('log_every', c.DEFAULT_LOG_EVERY, 'Progress every N '
                       'keyframes.', flag_values=fv)


def cli(argv: Optional[List[str]] = None) -> ava_converter.AvaConversionReport:
  """Command line; raises SystemExit(1) when no keyframe could be written.

  A missing or malformed input file raises a UserError (exit status 2 from
  `main`).
  """
  args = errors.parse_flags(define_flags, argv or [], 'convert_ava')
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
