"""Where the AVA converter finds a keyframe's frames: folders, videos, records.

`SourceIndex` maps a CSV video id to the frame folder, video file or clip
record that holds it (AVA-Kinetics clips by their trimmed names);
`clip_frame_indices` gives the clip's source frames around a keyframe.
"""

import collections
import dataclasses
import math
import re
from typing import Dict, List, Optional, Tuple


_KINETICS_NAME = re.compile(r'(?P<id>.+)_(?P<start>\d{6})_(?P<end>\d{6})')


@dataclasses.dataclass(frozen=True)
class Source:
  """A frame folder, video file or clip record holding one video.

  Attributes:
    kind: 'frames', 'video' or 'record'.
    name: folder name / file stem / media id.
    location: the folder or file path; for records, the TFRecord file.
    position: the record's position in its file (records only).
    offset_s: time of the first frame in the CSV's clock.
    end_s: Kinetics clips: the end time in the CSV's clock.
  """
  kind: str
  name: str
  location: str
  position: int = -1
  offset_s: float = 0.0
  end_s: Optional[float] = None


class SourceIndex:
  """Finds the source of a keyframe by CSV video id and time."""

  def __init__(self, what: str, offset_s: float, parse_kinetics_names: bool):
    self.what = what
    self.offset_s = offset_s
    self.parse_kinetics_names = parse_kinetics_names
    self.by_name: Dict[str, List[Source]] = collections.defaultdict(list)
    self.count = 0

  def add(self, kind: str, name: str, location: str, position: int = -1):
    self.count += 1
    match = (_KINETICS_NAME.fullmatch(name) if self.parse_kinetics_names
             else None)
    if match:
      source = Source(kind, name, location, position,
                       float(int(match['start'])), float(int(match['end'])))
      self.by_name[match['id']].append(source)
    else:
      source = Source(kind, name, location, position, self.offset_s)
    self.by_name[name].append(source)

  def find(self, video_id: str, timestamp: int
           ) -> Tuple[Optional[Source], str, str]:
    """(source, '', '') or (None, reason, detail)."""
    candidates = self.by_name.get(video_id, [])
    if not candidates:
      return None, 'unknown_video', f'no {self.what} named {video_id!r}'
    holding = [s for s in candidates
               if s.end_s is None or s.offset_s <= timestamp <= s.end_s]
    if len(holding) == 1:
      return holding[0], '', ''
    if len(holding) > 1:
      return None, 'ambiguous_video', (
          f'{len(holding)} {self.what}s hold {video_id!r} at {timestamp} s: '
          + ', '.join(s.location + (f'#{s.position}' if s.position >= 0
                                    else '') for s in holding[:5]))
    if len(candidates) == 1:
      return candidates[0], '', ''  # Its frame check reports the time.
    return None, 'keyframe_outside_video', (
        f'none of the {len(candidates)} Kinetics clips of {video_id!r} ('
        + ', '.join(s.name for s in candidates[:5]) + f') holds {timestamp} s')


def clip_frame_indices(keyframe_index: int, num_frames: int, stride: int,
                       num_source_frames: Optional[int] = None) -> List[int]:
  """Source frame indices of the clip centred on a keyframe.

  `keyframe_index + (i - num_frames // 2) * stride` for i < num_frames,
  clamped to [0, num_source_frames - 1] (edge frames repeated); the upper
  clamp only when `num_source_frames` is given.
  """
  out = []
  for i in range(num_frames):
    index = max(0, keyframe_index + (i - num_frames // 2) * stride)
    if num_source_frames is not None:
      index = min(index, num_source_frames - 1)
    out.append(index)
  return out


def round_half_up(x: float) -> int:
  return int(math.floor(x + 0.5 + 1e-9))
