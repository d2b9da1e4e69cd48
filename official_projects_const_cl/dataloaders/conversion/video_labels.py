"""Labels of the videos to convert: class folders and CSVs.

`LabelSource`s return the videos to convert, the label map and the listed
videos that are missing: class sub-folders, a `path_or_id,label` CSV, and
`ListedLabels`, the base of the dataset split files (`video_splits.py`).
Formats: docs/datasets.md.
"""

import abc
import csv
import dataclasses
import os
import re
from typing import Dict, List, Optional, Tuple


from official_projects_const_cl.dataloaders.conversion import video_sources


_HEADER_LABEL_NAMES = ('label', 'labels', 'class', 'class_name', 'label_name',
                       'category')


@dataclasses.dataclass
class VideoItem:
  """One video to convert.

  Attributes:
    path: the video file or frame folder.
    key: media id; the path relative to the input folder without extension.
    labels: class names (empty = unlabeled).
    start_s: optional segment start in seconds (trimming).
    end_s: optional segment end in seconds (exclusive).
  """
  path: str
  key: str
  labels: Tuple[str, ...] = ()
  start_s: Optional[float] = None
  end_s: Optional[float] = None


@dataclasses.dataclass
class Collected:
  """What a label source found.

  Attributes:
    items: videos to convert, labeled.
    class_names: label map, index = label id.
    missing: (name, reason) of videos the labels name but that are absent.
    skipped: paths of media that the labels do not mention.
  """
  items: List[VideoItem]
  class_names: List[str]
  missing: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  skipped: List[str] = dataclasses.field(default_factory=list)


def _class_names_of(labels) -> List[str]:
  names = sorted(set(labels))
  if names and all(re.fullmatch(r'\d+', n) for n in names):
    # Integer labels are their own indices.
    return [str(i) for i in range(max(int(n) for n in names) + 1)]
  return names


class LabelSource(abc.ABC):
  """Finds the videos under an input folder and their labels.

  Attributes:
    allow_missing: whether `convert` converts the found videos when some that
      the labels list are missing (they are reported either way); False makes
      it raise `MissingVideosError` before converting anything.
  """

  allow_missing: bool = True

  @abc.abstractmethod
  def collect(self, input_dir: str) -> Collected:
    """Returns the labeled items (see `Collected`)."""

  def describe(self) -> str:
    """Names the source (its list files) in messages."""
    return type(self).__name__


class _MediaIndex:
  """The media under a folder, found by name.

  A name is a path relative to the folder, with or without a video extension
  (`Class/v_x.avi` finds `Class/v_x.mp4` and a frame folder `Class/v_x/`), or
  a trailing part of such a path down to the bare stem (`v_x`), when only one
  medium matches it.
  """

  def __init__(self, input_dir: str):
    self.input_dir = input_dir
    self.paths = video_sources.discover_media(input_dir)
    self._by_key: Dict[str, str] = {}
    self._by_suffix: Dict[str, List[str]] = {}
    for path in self.paths:
      key = video_sources.media_key(path, input_dir)
      self._by_key[key] = path
      parts = key.split('/')
      for i in range(len(parts)):
        self._by_suffix.setdefault('/'.join(parts[i:]), []).append(path)

  def find(self, name: str) -> Tuple[Optional[str], str]:
    """Returns (path, '') for a name, or (None, why it is not found)."""
    norm = name.strip().replace('\\', '/').removeprefix('./')
    stem, ext = os.path.splitext(norm)
    norm = stem if ext.lower() in video_sources.VIDEO_EXTENSIONS else norm
    path = self._by_key.get(norm)
    if path is not None:
      return path, ''
    matches = self._by_suffix.get(norm, [])
    if len(matches) == 1:
      return matches[0], ''
    if matches:
      return None, f'{name} is ambiguous: ' + ', '.join(matches)
    return None, 'no such video under the input folder'


class ClassFolderLabels(LabelSource):
  """Labels from class sub-folders: `input_dir/<class_name>/<video>`.

  Every top-level folder that is not itself a frame folder is a class (kept
  in the label map even when empty, so indices are stable). Media directly in
  `input_dir` are unlabeled.
  """

  def collect(self, input_dir: str) -> Collected:
    classes = sorted(
        d for d in os.listdir(input_dir)
        if not d.startswith('.') and os.path.isdir(os.path.join(input_dir, d))
        and not video_sources.is_frame_folder(os.path.join(input_dir, d)))
    items = []
    for path in video_sources.discover_media(input_dir):
      key = video_sources.media_key(path, input_dir)
      top = key.split('/')[0]
      labels = (top,) if '/' in key and top in classes else ()
      items.append(VideoItem(path=path, key=key, labels=labels))
    return Collected(items=items, class_names=classes)


class CsvLabels(LabelSource):
  """Labels from a CSV of `path_or_id,label` rows (header allowed).

  Subclasses for other CSV layouts override `parse_row`.
  """

  def __init__(self, csv_path: str):
    if not os.path.isfile(csv_path):
      raise FileNotFoundError(f'Labels CSV {csv_path} does not exist.')
    self.csv_path = csv_path

  def describe(self) -> str:
    return f'labels CSV {self.csv_path}'

  def parse_row(self, row: List[str], line: int
                ) -> Optional[Tuple[str, str, Optional[float],
                                    Optional[float]]]:
    """(key, label, start_s, end_s) of a row; None skips it (a header).

    Raises:
      ValueError: naming the CSV and line when the row is malformed.
    """
    if line == 1 and len(row) >= 2 and (
        row[1].strip().lower() in _HEADER_LABEL_NAMES):
      return None
    if len(row) < 2 or not row[0].strip() or not row[1].strip():
      raise ValueError(f'{self.csv_path}:{line}: expected "path_or_id,label", '
                       f'got {row!r}.')
    return row[0].strip(), row[1].strip(), None, None

  def collect(self, input_dir: str) -> Collected:
    index = _MediaIndex(input_dir)
    rows: Dict[str, VideoItem] = {}
    missing = []
    with open(self.csv_path, newline='') as f:
      for line, row in enumerate(csv.reader(f), start=1):
        if not row or not ''.join(row).strip() or row[0].startswith('#'):
          continue
        parsed = self.parse_row(row, line)
        if parsed is None:
          continue
        name, label, start_s, end_s = parsed
        path, reason = index.find(name)
        if path is None:
          missing.append((name, f'{reason} (listed in {self.csv_path}:'
                                f'{line})'))
          continue
        item = rows.setdefault(
            path,
            VideoItem(path=path,
                      key=video_sources.media_key(path, input_dir),
                      start_s=start_s,
                      end_s=end_s))
        if label not in item.labels:
          item.labels = item.labels + (label,)
    items = [rows[p] for p in index.paths if p in rows]
    skipped = [p for p in index.paths if p not in rows]
    class_names = _class_names_of(l for it in items for l in it.labels)
    return Collected(items=items, class_names=class_names, missing=missing,
                     skipped=skipped)


def list_lines(path: str):
  """Yields (line number, stripped text) of a list file's non-blank lines.

  CRLF / CR line endings, a UTF-8 byte order mark and trailing blank lines are
  accepted.
  """
  with open(path, encoding='utf-8-sig') as f:  # Universal newlines.
    for line, text in enumerate(f, start=1):
      text = text.strip()
      if text:
        yield line, text


@dataclasses.dataclass
class ListedVideo:
  """A video named by a dataset's list files.

  Attributes:
    name: the video as listed (reports name it so).
    labels: class names.
    where: `file:line` of the listing.
    candidates: (name, start_s, end_s) looked up in order under the input
      folder (see `_MediaIndex`); the first found is converted, trimmed to
      [start_s, end_s) when they are not None.
    media_id: the written `clip/media_id`; None: the found video's path
      relative to the input folder, without extension.
  """
  name: str
  labels: Tuple[str, ...]
  where: str
  candidates: Tuple[Tuple[str, Optional[float], Optional[float]], ...]
  media_id: Optional[str] = None


class ListedLabels(LabelSource):
  """Base of the sources whose list files name every video (official splits).

  Subclasses implement `listed`. The label map is the one of the lists, so a
  class keeps its index when all its videos are missing.
  """

  def __init__(self, allow_missing: bool):
    self.allow_missing = allow_missing

  @abc.abstractmethod
  def listed(self) -> Tuple[List[ListedVideo], List[str]]:
    """Returns the listed videos and the label map (index = label id).

    Raises:
      FileNotFoundError: naming a list file that does not exist.
      ValueError: naming the file and line of a malformed list entry.
    """

  def collect(self, input_dir: str) -> Collected:
    videos, class_names = self.listed()
    if not videos:
      raise ValueError(f'{self.describe()} lists no video.')
    index = _MediaIndex(input_dir)
    items: Dict[str, VideoItem] = {}
    used = set()
    missing = []
    for video in videos:
      reasons = []
      for name, start_s, end_s in video.candidates:
        path, reason = index.find(name)
        if path is not None:
          break
        if reason not in reasons:
          reasons.append(reason)
      else:
        tried = ' or '.join(repr(n) for n, _, _ in video.candidates)
        missing.append((video.name, f'{"; ".join(reasons)}: looked for '
                                    f'{tried} (listed in {video.where})'))
        continue
      key = video.media_id or video_sources.media_key(path, input_dir)
      item = items.setdefault(key, VideoItem(path=path, key=key,
                                             start_s=start_s, end_s=end_s))
      item.labels += tuple(l for l in video.labels if l not in item.labels)
      used.add(path)
    return Collected(items=list(items.values()), class_names=class_names,
                     missing=missing,
                     skipped=[p for p in index.paths if p not in used])
