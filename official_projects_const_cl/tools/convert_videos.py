"""Converts a folder of videos into the clip TFRecords of DESIGN §4.

Inputs under `input_dir` (searched recursively, sorted by path):
  * video files (.mp4 .avi .webm .mkv .mov .m4v), decoded with PyAV;
  * per-video frame folders: a folder whose own files include images
    (.jpg .jpeg .png .bmp), one image per frame in natural name order.

Labels come from a pluggable `LabelSource`:
  * `ClassFolderLabels` (default): `input_dir/<class_name>/<video>`; media
    directly in `input_dir` are written without a label.
  * `CsvLabels` (`labels_csv=`): rows `path_or_id,label` (header allowed;
    several rows for one video give it several labels); `path_or_id` is the
    path relative to `input_dir` (extension optional), a trailing part of that
    path, or the file stem, when only one video matches.
  * `Ucf101SplitLabels` (`--ucf101_split_dir`): the official
    `ucfTrainTestlist/` folder; `--split=1|2|3 --subset=train|test` selects the
    videos of `trainlist0N.txt` / `testlist0N.txt` under `input_dir`
    (`UCF-101/<Class>/v_<Class>_gXX_cYY.avi`). Label map = `classInd.txt`
    order (label index = classInd id - 1).
  * `Hmdb51SplitLabels` (`--hmdb51_split_dir`): the official
    `testTrainMulti_7030_splits/` folder of `<class>_test_split<N>.txt` files
    (`<video>.avi 1` train, `2` test, `0` unused); videos under `input_dir`
    as `hmdb51/<class>/<video>.avi`. Label map = the class names sorted
    (Python string order), as the split files name no index.
  * `KineticsCsvLabels` (`--kinetics_csv`): the official Kinetics CSV
    `label,youtube_id,time_start,time_end,split[,is_cc]` (columns found by
    header name; a headerless CSV is read in that order). A row's video is
    `<youtube_id>_<time_start:06d>_<time_end:06d>.<ext>` (an already trimmed
    clip, written whole) or else `<youtube_id>.<ext>` (the full video, trimmed
    to [time_start, time_end)), anywhere under `input_dir`; `clip/media_id` is
    the trimmed name either way. Label map = the sorted unique labels of the
    CSV, or the order of `--kinetics_class_list` (one name per line, e.g. the
    train conversion's `_label_map.txt`, so that val uses the same indices).
Videos are matched with or without extension, so re-encoded videos (.mp4
for .avi) and frame folders named like the videos are found too.

Listed videos missing from `input_dir`: UCF101 and HMDB51 splits are
benchmarks, so by default nothing is converted; `<output_prefix>_failures.csv`
names every missing video and `MissingVideosError` (CLI: exit status 2)
gives the count and the first names. `--allow_missing` converts the others
and reports the missing ones as failures. Kinetics always misses some YouTube
videos: they are counted, the first 20 logged by name, all written to the
failures CSV, and the others are converted.

Output: `<output_prefix>-0000i-of-0000N.tfrecord` (one SequenceExample per
video: JPEG frames in `image/encoded`, `clip/label/index`, `clip/label/text`,
`clip/media_id`, `image/timestamp`, ...), `<output_prefix>_label_map.txt`
(one class name per line, line i = label index i) and, when some videos could
not be read or are missing, `<output_prefix>_failures.csv` (header
`video,reason`, then one row per failed video). Unreadable videos (corrupt or
empty files, no video stream, no decodable frame, a corrupt frame image) are
reported by name with the reason and counted; the others are written. The
summary counts agree: `Converted 1 of 3 videos ...; 2 failed: ...`.

Exit status (`errors.py`): 0 when at least one video was converted (even
with failures), 1 when none was, 2 for a user error (bad flag or folder,
videos listed by a split file missing) with one `ERROR:` line.

CLI: `python -m official_projects_const_cl.tools.convert_videos
  --input_dir=videos/ --output_prefix=/data/clips/train --num_shards=8`;
  UCF101: `--input_dir=UCF-101 --ucf101_split_dir=ucfTrainTestlist --split=1
  --subset=train --output_prefix=/data/ucf101/train_split1`;
  HMDB51: `--input_dir=hmdb51 --hmdb51_split_dir=testTrainMulti_7030_splits
  --split=1 --subset=test --output_prefix=/data/hmdb51/test_split1`;
  Kinetics: `--input_dir=k400/train --kinetics_csv=kinetics_400/train.csv
  --output_prefix=/data/k400/train --num_shards=1024`.
"""

import abc
import argparse
import csv
import dataclasses
import io
import os
import re
import sys
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from official_projects_const_cl import errors
from official_projects_const_cl.tools import tfrecord_writer

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.webm', '.mkv', '.mov', '.m4v')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
_HEADER_LABEL_NAMES = ('label', 'labels', 'class', 'class_name', 'label_name',
                       'category')


class VideoReadError(Exception):
  """A video (or one of its frames) cannot be read; the message says why."""


class MissingVideosError(errors.UserError, ValueError):
  """Videos named by a label source's lists are not under the input folder.

  Attributes:
    missing: (name, reason) of every missing video.
    failures_csv: the CSV naming them all.
  """

  def __init__(self, message: str, missing: List[Tuple[str, str]],
               failures_csv: str):
    super().__init__(message)
    self.missing = missing
    self.failures_csv = failures_csv


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


@dataclasses.dataclass
class ConversionReport:
  """Result of `convert`.

  Attributes:
    written: number of videos written.
    failed: (path or name, reason) of every video not written: the missing
      ones first, then the unreadable ones.
    missing: (name, reason) of the videos the labels list but that are not
      under the input folder (also in `failed`).
    skipped: media found but not listed by the label source.
    output_paths: the shard files.
    label_map_path: the label map file (None when there are no labels).
    class_names: the label map.
    seconds: wall time.
  """
  written: int
  failed: List[Tuple[str, str]]
  missing: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  skipped: List[str] = dataclasses.field(default_factory=list)
  output_paths: List[str] = dataclasses.field(default_factory=list)
  label_map_path: Optional[str] = None
  class_names: List[str] = dataclasses.field(default_factory=list)
  seconds: float = 0.0

  @property
  def total(self) -> int:
    """Videos that were to be converted (written + failed)."""
    return self.written + len(self.failed)

  def summary(self) -> str:
    text = (f'Converted {self.written} of {self.total} videos to '
            f'{len(self.output_paths)} shards in {self.seconds:.1f}s; '
            f'{len(self.failed)} failed')
    if self.missing:
      text += f' ({len(self.missing)} listed but missing from the input)'
    if self.skipped:
      text += f', {len(self.skipped)} skipped (not in the labels)'
    if self.failed:
      text += ': ' + ', '.join(os.path.basename(p) for p, _ in self.failed[:10])
      if len(self.failed) > 10:
        text += ', ...'
    return text + '.'


def _natural_key(name: str):
  return [int(s) if s.isdigit() else s.lower() for s in re.split(r'(\d+)',
                                                                 name)]


def _is_frame_folder(path: str) -> bool:
  return any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(path)
             if os.path.isfile(os.path.join(path, f)))


def discover_media(root: str) -> List[str]:
  """Video files and frame folders under `root`, sorted by path."""
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    keep = []
    for d in dirnames:
      full = os.path.join(dirpath, d)
      if d.startswith('.'):
        continue
      if _is_frame_folder(full):
        found.append(full)
      else:
        keep.append(d)
    dirnames[:] = keep  # Do not descend into frame folders.
    found.extend(os.path.join(dirpath, f) for f in filenames
                 if f.lower().endswith(VIDEO_EXTENSIONS))
  return sorted(found)


def media_key(path: str, root: str) -> str:
  """Relative path without a video extension, with '/' separators."""
  rel = os.path.relpath(path, root).replace(os.sep, '/')
  stem, ext = os.path.splitext(rel)
  return stem if ext.lower() in VIDEO_EXTENSIONS else rel


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
    self.paths = discover_media(input_dir)
    self._by_key: Dict[str, str] = {}
    self._by_suffix: Dict[str, List[str]] = {}
    for path in self.paths:
      key = media_key(path, input_dir)
      self._by_key[key] = path
      parts = key.split('/')
      for i in range(len(parts)):
        self._by_suffix.setdefault('/'.join(parts[i:]), []).append(path)

  def find(self, name: str) -> Tuple[Optional[str], str]:
    """Returns (path, '') for a name, or (None, why it is not found)."""
    norm = name.strip().replace('\\', '/').removeprefix('./')
    stem, ext = os.path.splitext(norm)
    norm = stem if ext.lower() in VIDEO_EXTENSIONS else norm
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
        and not _is_frame_folder(os.path.join(input_dir, d)))
    items = []
    for path in discover_media(input_dir):
      key = media_key(path, input_dir)
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
        item = rows.setdefault(path, VideoItem(
            path=path, key=media_key(path, input_dir), start_s=start_s,
            end_s=end_s))
        if label not in item.labels:
          item.labels = item.labels + (label,)
    items = [rows[p] for p in index.paths if p in rows]
    skipped = [p for p in index.paths if p not in rows]
    class_names = _class_names_of(l for it in items for l in it.labels)
    return Collected(items=items, class_names=class_names, missing=missing,
                     skipped=skipped)


def _list_lines(path: str):
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
      key = video.media_id or media_key(path, input_dir)
      item = items.setdefault(key, VideoItem(path=path, key=key,
                                             start_s=start_s, end_s=end_s))
      item.labels += tuple(l for l in video.labels if l not in item.labels)
      used.add(path)
    return Collected(items=list(items.values()), class_names=class_names,
                     missing=missing,
                     skipped=[p for p in index.paths if p not in used])


def _check_split(split: int, subset: str):
  if split not in (1, 2, 3):
    raise ValueError(f'split must be 1, 2 or 3, got {split!r}.')
  if subset not in ('train', 'test'):
    raise ValueError(f"subset must be 'train' or 'test', got {subset!r}.")


def _is_dir_or_raise(path: str, what: str):
  if not os.path.isdir(path):
    raise FileNotFoundError(f'{what} {path} does not exist or is not a '
                            'folder.')


class Ucf101SplitLabels(ListedLabels):
  """UCF101 official splits: the `ucfTrainTestlist/` folder.

  `classInd.txt` lines `1 ApplyEyeMakeup` give the label map (label index =
  id - 1); `trainlist0<split>.txt` lines `ApplyEyeMakeup/v_..._g08_c01.avi 1`
  and `testlist0<split>.txt` lines `ApplyEyeMakeup/v_..._g01_c01.avi` (the
  class is the folder) name the videos of the subset, found under the input
  folder as `<Class>/v_...` (or by the bare video name).
  """

  def __init__(self, split_dir: str, split: int, subset: str,
               allow_missing: bool = False):
    """Initializes the source.

    Args:
      split_dir: the `ucfTrainTestlist/` folder.
      split: 1, 2 or 3.
      subset: 'train' or 'test'.
      allow_missing: see `LabelSource`; False by default (a benchmark split).

    Raises:
      FileNotFoundError: if the folder or one of its files does not exist.
      ValueError: for a bad split or subset.
    """
    super().__init__(allow_missing)
    _check_split(split, subset)
    _is_dir_or_raise(split_dir, 'UCF101 split folder')
    self.split, self.subset = split, subset
    self.class_ind_path = os.path.join(split_dir, 'classInd.txt')
    self.list_path = os.path.join(split_dir, f'{subset}list{split:02d}.txt')
    for path in (self.class_ind_path, self.list_path):
      if not os.path.isfile(path):
        raise FileNotFoundError(f'UCF101 split file {path} does not exist.')

  def describe(self) -> str:
    return f'UCF101 split {self.split} {self.subset} list {self.list_path}'

  def class_names(self) -> List[str]:
    """The classInd.txt names, index = id - 1."""
    names = []
    for line, text in _list_lines(self.class_ind_path):
      parts = text.split(None, 1)
      if len(parts) != 2 or not parts[0].isdigit() or (
          int(parts[0]) != len(names) + 1):
        raise ValueError(
            f'{self.class_ind_path}:{line}: expected "{len(names) + 1} '
            f'<ClassName>" (ids 1, 2, ... in order), got {text!r}.')
      names.append(parts[1].strip())
    if len(set(names)) != len(names):
      raise ValueError(f'{self.class_ind_path}: a class is named twice.')
    if len(names) != 101:
      logging.warning('%s names %d classes (UCF101 has 101).',
                      self.class_ind_path, len(names))
    return names

  def listed(self) -> Tuple[List[ListedVideo], List[str]]:
    names = self.class_names()
    # One class is spelled in two cases (HandstandPushups/v_HandStandPushups_
    # ...): compare folders with classInd.txt case-insensitively.
    by_folder = {n.lower(): i for i, n in enumerate(names)}
    videos = []
    for line, text in _list_lines(self.list_path):
      where = f'{self.list_path}:{line}'
      parts = text.split()
      rel = parts[0].replace('\\', '/')
      folder, _, file_name = rel.rpartition('/')
      if len(parts) > 2 or not folder or not file_name:
        raise ValueError(f'{where}: expected "<Class>/<video>.avi[ <id>]", '
                         f'got {text!r}.')
      index = by_folder.get(folder.lower())
      if index is None:
        raise ValueError(f'{where}: folder {folder!r} is not a class of '
                         f'{self.class_ind_path}.')
      if len(parts) == 2 and (not parts[1].isdigit()
                              or int(parts[1]) != index + 1):
        raise ValueError(f'{where}: class id {parts[1]} does not match the '
                         f'folder {folder!r} (id {index + 1} in '
                         f'{self.class_ind_path}).')
      stem = os.path.splitext(file_name)[0]
      videos.append(ListedVideo(
          name=rel, labels=(names[index],), where=where,
          candidates=((rel, None, None), (stem, None, None))))
    return videos, names


class Hmdb51SplitLabels(ListedLabels):
  """HMDB51 official splits: the `testTrainMulti_7030_splits/` folder.

  `<class>_test_split<split>.txt` lines `<video>.avi <0|1|2>` (1 = train,
  2 = test, 0 = in neither) name the videos of the subset, found under the
  input folder as `<class>/<video>` (or by the bare video name). The split
  files give no class index: the label map is the class names sorted in
  Python string order (`brush_hair`, `cartwheel`, ..., `walk`, `wave`).
  """

  _SUBSET_CODE = {'train': '1', 'test': '2'}

  def __init__(self, split_dir: str, split: int, subset: str,
               allow_missing: bool = False):
    """Initializes the source.

    Args:
      split_dir: the `testTrainMulti_7030_splits/` folder.
      split: 1, 2 or 3.
      subset: 'train' or 'test'.
      allow_missing: see `LabelSource`; False by default (a benchmark split).

    Raises:
      FileNotFoundError: if the folder does not exist.
      ValueError: for a bad split or subset.
    """
    super().__init__(allow_missing)
    _check_split(split, subset)
    _is_dir_or_raise(split_dir, 'HMDB51 split folder')
    self.split_dir, self.split, self.subset = split_dir, split, subset

  def describe(self) -> str:
    return (f'HMDB51 split {self.split} {self.subset} lists '
            f'{self.split_dir}/*_test_split{self.split}.txt')

  def listed(self) -> Tuple[List[ListedVideo], List[str]]:
    files = {}
    for file_name in os.listdir(self.split_dir):
      match = re.fullmatch(r'(.+)_test_split(\d)\.txt', file_name)
      if match and int(match.group(2)) == self.split:
        files[match.group(1)] = os.path.join(self.split_dir, file_name)
    if not files:
      raise FileNotFoundError(
          f'No <class>_test_split{self.split}.txt file in {self.split_dir}.')
    names = sorted(files)
    if len(names) != 51:
      logging.warning('%s has split %d files of %d classes (HMDB51 has 51).',
                      self.split_dir, self.split, len(names))
    code = self._SUBSET_CODE[self.subset]
    videos = []
    for name in names:
      for line, text in _list_lines(files[name]):
        where = f'{files[name]}:{line}'
        parts = text.rsplit(None, 1)
        if len(parts) != 2 or parts[1] not in ('0', '1', '2'):
          raise ValueError(f'{where}: expected "<video>.avi <0|1|2>", got '
                           f'{text!r}.')
        if parts[1] != code:
          continue
        stem = os.path.splitext(parts[0])[0]
        videos.append(ListedVideo(
            name=f'{name}/{parts[0]}', labels=(name,), where=where,
            candidates=((f'{name}/{parts[0]}', None, None),
                        (stem, None, None))))
    return videos, names


_KINETICS_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end', 'split')


def kinetics_clip_name(youtube_id: str, time_start: float,
                       time_end: float) -> str:
  """`<youtube_id>_<time_start:06d>_<time_end:06d>`: a trimmed clip's name."""
  return f'{youtube_id}_{int(time_start):06d}_{int(time_end):06d}'


class KineticsCsvLabels(ListedLabels):
  """Kinetics (400/600/700) official CSVs.

  Rows `label,youtube_id,time_start,time_end,split[,is_cc]`; the columns are
  found by header name (`youtube_id`, `time_start`, `time_end` required;
  without `label` the clips are unlabeled), and a CSV without header is read
  in that official order. A row's clip is the trimmed video
  `<youtube_id>_<time_start:06d>_<time_end:06d>` (written whole) or else the
  full video `<youtube_id>` (trimmed to [time_start, time_end)), anywhere
  under the input folder. Missing videos are expected (deleted YouTube
  videos): they are reported and the others converted.

  Label map: the sorted unique labels of the CSV, or the order of
  `class_list` (one class name per line; every CSV label must be in it).
  """

  def __init__(self, csv_path: str, class_list: Optional[str] = None,
               allow_missing: bool = True):
    """Initializes the source.

    Args:
      csv_path: the Kinetics CSV (e.g. `kinetics_400/train.csv`).
      class_list: optional file of class names, line i = label index i (e.g.
        the `_label_map.txt` of the train conversion, for val / test).
      allow_missing: see `LabelSource`.

    Raises:
      FileNotFoundError: if a file does not exist.
    """
    super().__init__(allow_missing)
    for path, what in ((csv_path, 'Kinetics CSV'),
                       (class_list, 'Kinetics class list')):
      if path is not None and not os.path.isfile(path):
        raise FileNotFoundError(f'{what} {path} does not exist.')
    self.csv_path, self.class_list = csv_path, class_list

  def describe(self) -> str:
    return f'Kinetics CSV {self.csv_path}'

  def _columns(self, header: List[str]) -> Optional[Dict[str, int]]:
    names = [h.strip().lower() for h in header]
    if 'youtube_id' not in names:
      return None
    for required in ('time_start', 'time_end'):
      if required not in names:
        raise ValueError(f'{self.csv_path}:1: the header has no {required} '
                         f'column: {header!r}.')
    return {n: names.index(n) for n in _KINETICS_COLUMNS if n in names}

  def listed(self) -> Tuple[List[ListedVideo], List[str]]:
    videos = []
    columns = None
    with open(self.csv_path, newline='', encoding='utf-8-sig') as f:
      for line, row in enumerate(csv.reader(f), start=1):
        if not row or not ''.join(row).strip():
          continue
        if columns is None:
          columns = self._columns(row)
          if columns is not None:
            continue
          columns = {n: i for i, n in enumerate(_KINETICS_COLUMNS)}
        where = f'{self.csv_path}:{line}'
        try:
          youtube_id = row[columns['youtube_id']].strip()
          start_s = float(row[columns['time_start']])
          end_s = float(row[columns['time_end']])
          label = row[columns['label']].strip() if 'label' in columns else ''
        except (IndexError, ValueError) as e:
          raise ValueError(
              f'{where}: expected "label,youtube_id,time_start,time_end,split'
              f'" ({e}), got {row!r}.') from e
        if not youtube_id or not end_s > start_s >= 0:
          raise ValueError(f'{where}: needs a youtube_id and 0 <= time_start '
                           f'< time_end, got {row!r}.')
        clip = kinetics_clip_name(youtube_id, start_s, end_s)
        videos.append(ListedVideo(
            name=clip, labels=(label,) if label else (), where=where,
            candidates=((clip, None, None), (youtube_id, start_s, end_s)),
            media_id=clip))
    labels = sorted({l for v in videos for l in v.labels})
    if self.class_list is None:
      return videos, labels
    names = [text for _, text in _list_lines(self.class_list)]
    if len(set(names)) != len(names):
      raise ValueError(f'{self.class_list}: a class is named twice.')
    known = set(names)
    unknown = [l for l in labels if l not in known]
    if unknown:
      raise ValueError(f'{self.csv_path}: labels not in the class list '
                       f'{self.class_list}: {", ".join(unknown[:10])}.')
    return videos, names


@dataclasses.dataclass
class DecodedVideo:
  """Frames of one video, ready to write.

  Attributes:
    frames_jpeg: T JPEG-encoded frames.
    timestamps_us: T timestamps in microseconds, or None when unknown.
    frame_rate: frames per second of the kept frames, or None when unknown.
    height: frame height in pixels.
    width: frame width in pixels.
  """
  frames_jpeg: List[bytes]
  timestamps_us: Optional[List[int]]
  frame_rate: Optional[float]
  height: int
  width: int


def _resized_shape(height: int, width: int, short_side: Optional[int]
                   ) -> Tuple[int, int]:
  if not short_side:
    return height, width
  scale = short_side / min(height, width)
  # Even sizes keep chroma-subsampled codecs and JPEG blocks happy.
  return (max(2, int(round(height * scale / 2)) * 2),
          max(2, int(round(width * scale / 2)) * 2))


class _FrameSelector:
  """Keeps frames inside [start_s, end_s) and at most `fps` per second."""

  def __init__(self, fps, start_s, end_s):
    self.fps, self.start_s, self.end_s = fps, start_s, end_s
    self.next_t = None

  def keep(self, t: float) -> bool:
    if self.start_s is not None and t < self.start_s - 1e-6:
      return False
    if self.end_s is not None and t >= self.end_s - 1e-6:
      return False
    if self.fps is None:
      return True
    if self.next_t is None:
      self.next_t = t
    if t + 0.5e-3 >= self.next_t:  # Half a millisecond of rounding slack.
      while self.next_t <= t + 0.5e-3:
        self.next_t += 1.0 / self.fps
      return True
    return False


def _subsample(n: int, num_frames: Optional[int]) -> np.ndarray:
  if num_frames is None or n <= num_frames:
    return np.arange(n)
  return np.unique(np.round(np.linspace(0, n - 1, num_frames)).astype(int))


def iter_video_frames(path: str, start_s: Optional[float] = None
                      ) -> Iterator[Tuple[float, object]]:
  """Yields (time_s, frame) of a video file's frames, in decoding order.

  For reading a window of a long video: with `start_s`, the container seeks
  to the key frame at or before `start_s`, so the first frame yielded is at
  or before `start_s` and the frames before that key frame are not decoded.
  When the container cannot seek (no index, or the seek lands after
  `start_s`), decoding starts at the first frame instead. The caller stops
  iterating when it has the frames it needs (which closes the file).

  Times are seconds from the container's start time (`container.start_time`,
  0 for most files; `decode_video_file` uses the raw stream times), from the
  frame's presentation time, else index / average rate.

  Args:
    path: the video file.
    start_s: the first time needed, in seconds (None / <= 0: from the start).

  Yields:
    (time_s, av.VideoFrame); convert the frames one keeps with
    `frame.reformat(width=, height=, format='rgb24').to_ndarray()`.

  Raises:
    VideoReadError: naming the file when it is empty, has no video stream or
      cannot be decoded.
  """
  import av  # pylint: disable=g-import-not-at-top
  if os.path.getsize(path) == 0:
    raise VideoReadError(f'{path}: empty file (0 bytes).')
  seek = start_s is not None and start_s > 0
  while True:
    yielded = 0
    landed_after = False
    try:
      with av.open(path) as container:
        if not container.streams.video:
          raise VideoReadError(f'{path}: no video stream.')
        stream = container.streams.video[0]
        stream.thread_type = 'AUTO'
        origin = (container.start_time / av.time_base
                  if container.start_time is not None else 0.0)
        rate = float(stream.average_rate) if stream.average_rate else None
        if seek:
          container.seek(int((start_s + origin) * av.time_base),
                         backward=True)
        for index, frame in enumerate(container.decode(stream)):
          if seek and index == 0 and (
              frame.time is None or frame.time - origin > start_s + 1e-6):
            landed_after = True
            break
          t = frame.time - origin if frame.time is not None else (
              index / rate if rate else float(index))
          yielded += 1
          yield t, frame
    except VideoReadError:
      raise
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as e:
      if not (seek and yielded == 0):
        raise VideoReadError(
            f'{path}: cannot decode ({type(e).__name__}: {e}).') from e
      landed_after = True  # Not seekable: decode from the start below.
    if not landed_after:
      return
    seek = False


def decode_video_file(path: str, fps: Optional[float] = None,
                      short_side: Optional[int] = None,
                      num_frames: Optional[int] = None,
                      start_s: Optional[float] = None,
                      end_s: Optional[float] = None,
                      jpeg_quality: int = 90) -> DecodedVideo:
  """Decodes a video file with PyAV into JPEG frames.

  Args:
    path: the video file.
    fps: keep at most this many frames per second (None keeps all).
    short_side: resize so the short side has this many pixels (None keeps).
    num_frames: keep at most this many frames, evenly spread (None keeps all).
    start_s: segment start in seconds.
    end_s: segment end in seconds (exclusive).
    jpeg_quality: JPEG quality.

  Returns:
    The `DecodedVideo`.

  Raises:
    VideoReadError: naming the file when it cannot be opened or decoded or
      holds no frame in the requested segment.
  """
  import av  # pylint: disable=g-import-not-at-top
  if os.path.getsize(path) == 0:
    raise VideoReadError(f'{path}: empty file (0 bytes).')

  def read(seek: bool):
    """(kept, times, size, rate); None when a seek passed the segment start."""
    selector = _FrameSelector(fps, start_s, end_s)
    kept, times, size, rate = [], [], None, None
    with av.open(path) as container:
      if not container.streams.video:
        raise VideoReadError(f'{path}: no video stream.')
      stream = container.streams.video[0]
      stream.thread_type = 'AUTO'
      if stream.average_rate:
        rate = float(stream.average_rate)
      if seek:
        # To the key frame at or before start_s: a segment of a long video
        # does not need all the frames before it decoded.
        container.seek(int(start_s * av.time_base), backward=True)
      for index, frame in enumerate(container.decode(stream)):
        if seek and index == 0 and (frame.time is None
                                    or frame.time > start_s + 1e-6):
          return None
        t = frame.time if frame.time is not None else (
            index / rate if rate else float(index))
        if not selector.keep(t):
          if end_s is not None and t >= end_s:
            break
          continue
        if size is None:
          size = _resized_shape(frame.height, frame.width, short_side)
        rgb = frame.reformat(width=size[1], height=size[0],
                             format='rgb24').to_ndarray()
        # Without subsampling, encode now so long videos stay small in memory.
        kept.append(rgb if num_frames else tfrecord_writer.encode_jpeg(
            rgb, jpeg_quality))
        times.append(t)
    return kept, times, size, rate

  try:
    result = None
    if start_s is not None and start_s > 0:
      try:
        result = read(seek=True)
      except av.FFmpegError:
        result = None  # Not seekable: decode from the start below.
    if result is None:
      result = read(seek=False)
  except VideoReadError:
    raise
  except (av.FFmpegError, OSError, ValueError, RuntimeError) as e:
    raise VideoReadError(f'{path}: cannot decode ({type(e).__name__}: {e}).'
                         ) from e
  kept, times, size, rate = result
  if not kept:
    raise VideoReadError(f'{path}: no decodable video frame'
                         + (' in the requested segment.' if start_s is not None
                            or end_s is not None else '.'))
  idx = _subsample(len(kept), num_frames)
  frames = [kept[i] if isinstance(kept[i], bytes) else
            tfrecord_writer.encode_jpeg(kept[i], jpeg_quality) for i in idx]
  out_rate = min(fps, rate) if fps is not None and rate else rate
  if num_frames and len(idx) > 1 and len(idx) < len(kept):
    out_rate = None  # Uneven subsampling: only the timestamps are exact.
  return DecodedVideo(
      frames_jpeg=frames,
      timestamps_us=[int(round(times[i] * 1e6)) for i in idx],
      frame_rate=out_rate, height=size[0], width=size[1])


def load_frame_image(data: bytes, where: str,
                     short_side: Optional[int] = None,
                     size: Optional[Tuple[int, int]] = None,
                     jpeg_quality: int = 90) -> Tuple[bytes, Tuple[int, int]]:
  """Checks that an encoded frame image decodes; returns it as a JPEG.

  JPEG RGB frames already at the wanted size are returned unchanged; others
  are converted to RGB, resized (bilinear) and re-encoded.

  Args:
    data: the encoded image (JPEG, PNG, BMP, ...).
    where: names the frame (file path, record and index) in errors.
    short_side: resize so the short side has this many pixels (used when
      `size` is None).
    size: the wanted (height, width), e.g. the one returned for the first
      frame of a video, so all its frames have one size; None: this image's
      own size, after `short_side`.
    jpeg_quality: JPEG quality of re-encoded frames.

  Returns:
    (JPEG bytes, (height, width)).

  Raises:
    VideoReadError: naming `where` when the image cannot be decoded.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    image = Image.open(io.BytesIO(data))
    image.load()
  except (OSError, SyntaxError, ValueError) as e:
    raise VideoReadError(f'{where}: cannot decode frame image ({e}).') from e
  if size is None:
    size = _resized_shape(image.height, image.width, short_side)
  same_size = (image.height, image.width) == tuple(size)
  if image.format == 'JPEG' and image.mode == 'RGB' and same_size:
    return data, tuple(size)
  image = image.convert('RGB')
  if not same_size:
    image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
  return (tfrecord_writer.encode_jpeg(np.asarray(image), jpeg_quality),
          tuple(size))


def decode_frame_folder(path: str, frame_rate: Optional[float] = None,
                        fps: Optional[float] = None,
                        short_side: Optional[int] = None,
                        num_frames: Optional[int] = None,
                        jpeg_quality: int = 90,
                        start_s: Optional[float] = None,
                        end_s: Optional[float] = None) -> DecodedVideo:
  """Reads a folder of frame images (natural name order) into JPEG frames.

  JPEG frames that need no resizing are stored unchanged (after checking that
  they decode); other frames are re-encoded.

  Args:
    path: the frame folder.
    frame_rate: frames per second of the folder, if known (timestamps and
      `fps` resampling need it).
    fps: keep at most this many frames per second (needs frame_rate).
    short_side: resize so the short side has this many pixels.
    num_frames: keep at most this many frames, evenly spread.
    jpeg_quality: JPEG quality of re-encoded frames.
    start_s: segment start in seconds, frame i being at i / frame_rate
      (needs frame_rate).
    end_s: segment end in seconds, exclusive (needs frame_rate).

  Returns:
    The `DecodedVideo`.

  Raises:
    VideoReadError: naming the frame file that cannot be decoded, or when
      the folder has no frame (in the segment).
  """
  names = sorted((f for f in os.listdir(path)
                  if f.lower().endswith(IMAGE_EXTENSIONS)), key=_natural_key)
  if not names:
    raise VideoReadError(f'{path}: frame folder without images.')
  if fps is not None and frame_rate is None:
    raise VideoReadError(f'{path}: fps resampling of a frame folder needs its '
                         'frame rate (frame_folder_rate).')
  if (start_s is not None or end_s is not None) and frame_rate is None:
    raise VideoReadError(f'{path}: trimming a frame folder to a segment needs '
                         'its frame rate (frame_folder_rate).')
  selector = _FrameSelector(fps, start_s, end_s)
  picked = [i for i in range(len(names))
            if frame_rate is None or selector.keep(i / frame_rate)]
  if not picked:
    raise VideoReadError(f'{path}: no frame in the requested segment.')
  num_selected = len(picked)
  picked = [picked[i] for i in _subsample(num_selected, num_frames)]
  frames, size = [], None
  for i in picked:
    file = os.path.join(path, names[i])
    try:
      with open(file, 'rb') as f:
        data = f.read()
    except OSError as e:
      raise VideoReadError(f'{file}: cannot decode frame image ({e}).') from e
    jpeg, size = load_frame_image(data, file, short_side=short_side,
                                  size=size, jpeg_quality=jpeg_quality)
    frames.append(jpeg)
  timestamps = None
  out_rate = None
  if frame_rate is not None:
    timestamps = [int(round(i / frame_rate * 1e6)) for i in picked]
    out_rate = fps if fps is not None else frame_rate
    if num_frames and len(picked) > 1 and len(picked) < num_selected and (
        fps is None):
      out_rate = None
  return DecodedVideo(frames_jpeg=frames, timestamps_us=timestamps,
                      frame_rate=out_rate, height=size[0], width=size[1])


def _progress_iter(items: Sequence[VideoItem], enabled: bool):
  if enabled and sys.stderr.isatty():
    try:
      import tqdm  # pylint: disable=g-import-not-at-top
      return tqdm.tqdm(items, unit='video')
    except ImportError:
      pass
  return items


_MAX_LOGGED_MISSING = 20
_MAX_PRINTED_FAILURES = 100


FAILURES_HEADER = ('video', 'reason')


def _write_failures(path: str, failed: List[Tuple[str, str]]):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(FAILURES_HEADER)
    writer.writerows(failed)


def convert(input_dir: str,
            output_prefix: str,
            labels_csv: Optional[str] = None,
            num_shards: int = 1,
            num_frames: Optional[int] = None,
            fps: Optional[float] = None,
            short_side: Optional[int] = None,
            jpeg_quality: int = 90,
            frame_folder_rate: Optional[float] = None,
            label_source: Optional[LabelSource] = None,
            log_every: int = 50,
            progress: bool = True) -> ConversionReport:
  """Converts the videos under `input_dir` into sharded clip TFRecords.

  Args:
    input_dir: folder of videos and/or frame folders.
    output_prefix: shards are `<output_prefix>-0000i-of-0000N.tfrecord`.
    labels_csv: a `path_or_id,label` CSV (instead of class sub-folders).
    num_shards: number of output shards.
    num_frames: keep at most this many frames per video, evenly spread.
    fps: keep at most this many frames per second.
    short_side: resize frames so their short side has this many pixels.
    jpeg_quality: JPEG quality of (re-)encoded frames.
    frame_folder_rate: frames per second of frame folders, if known.
    label_source: a `LabelSource`; overrides `labels_csv`.
    log_every: log progress every this many videos.
    progress: show a tqdm bar when tqdm is installed and stderr is a tty.

  Returns:
    A `ConversionReport`.

  Raises:
    FileNotFoundError: if `input_dir` (or `labels_csv`) does not exist.
    ValueError: if `input_dir` holds no video or frame folder.
    MissingVideosError: if videos that the label source lists are missing
      and it does not `allow_missing`; nothing is converted, and
      `<output_prefix>_failures.csv` names them all.
  """
  start = time.time()
  if not os.path.isdir(input_dir):
    raise FileNotFoundError(f'Input folder {input_dir} does not exist or is '
                            'not a folder.')
  if label_source is None:
    label_source = (CsvLabels(labels_csv) if labels_csv
                    else ClassFolderLabels())
  collected = label_source.collect(input_dir)
  if not collected.items and not collected.missing:
    raise ValueError(
        f'No videos ({", ".join(VIDEO_EXTENSIONS)}) or frame folders '
        f'({", ".join(IMAGE_EXTENSIONS)} images) found under {input_dir}'
        + (f' that are listed in {labels_csv}' if labels_csv else '') + '.')
  failures_csv = f'{output_prefix}_failures.csv'
  missing = list(collected.missing)
  if missing:
    _write_failures(failures_csv, missing)
    for name, reason in missing[:_MAX_LOGGED_MISSING]:
      logging.warning('Missing video %s: %s', name, reason)
    listed = len(collected.items) + len(missing)
    message = (f'{len(missing)} of the {listed} videos listed by '
               f'{label_source.describe()} are missing under {input_dir}: '
               + ', '.join(name for name, _ in missing[:_MAX_LOGGED_MISSING])
               + (', ...' if len(missing) > _MAX_LOGGED_MISSING else '')
               + f'; {failures_csv} names them all.')
    if not label_source.allow_missing:
      raise MissingVideosError(
          message + ' Nothing was converted: fix --input_dir, or pass '
          '--allow_missing (allow_missing=True) to convert the others.',
          missing, failures_csv)
    logging.warning('%s Converting the other %d.', message,
                    len(collected.items))
  index_of = {name: i for i, name in enumerate(collected.class_names)}
  label_map_path = None
  if collected.class_names:
    label_map_path = f'{output_prefix}_label_map.txt'
    os.makedirs(os.path.dirname(os.path.abspath(label_map_path)),
                exist_ok=True)
    with open(label_map_path, 'w') as f:
      f.write('\n'.join(collected.class_names) + '\n')

  failed = list(missing)
  total = len(collected.items)
  written = 0
  with tfrecord_writer.ShardedWriter(output_prefix, num_shards) as writer:
    for n, item in enumerate(_progress_iter(collected.items, progress), 1):
      try:
        if os.path.isdir(item.path):
          decoded = decode_frame_folder(
              item.path, frame_rate=frame_folder_rate, fps=fps,
              short_side=short_side, num_frames=num_frames,
              jpeg_quality=jpeg_quality, start_s=item.start_s,
              end_s=item.end_s)
        else:
          decoded = decode_video_file(
              item.path, fps=fps, short_side=short_side,
              num_frames=num_frames, start_s=item.start_s, end_s=item.end_s,
              jpeg_quality=jpeg_quality)
      except VideoReadError as e:
        failed.append((item.path, str(e)))
        logging.warning('Skipping unreadable video %s', e)
        decoded = None
      if decoded is not None:
        writer.write(tfrecord_writer.make_sequence_example(
            decoded.frames_jpeg,
            labels=[index_of[l] for l in item.labels],
            label_texts=list(item.labels),
            media_id=item.key,
            timestamps_us=decoded.timestamps_us,
            frame_rate=decoded.frame_rate,
            height=decoded.height,
            width=decoded.width))
        written += 1
      if log_every and (n % log_every == 0 or n == total):
        elapsed = max(time.time() - start, 1e-6)
        logging.info('Read %d of %d videos (%.1f videos/s): %d converted, '
                     '%d failed.', n, total, n / elapsed, written,
                     n - written)

  if failed:
    _write_failures(failures_csv, failed)
  elif os.path.isfile(failures_csv):
    os.remove(failures_csv)  # From an earlier run; this one has none.
  report = ConversionReport(
      written=written, failed=failed, missing=missing,
      skipped=collected.skipped,
      output_paths=writer.paths, label_map_path=label_map_path,
      class_names=list(collected.class_names),
      seconds=time.time() - start)
  logging.info(report.summary())
  return report


def make_label_source(labels_csv: Optional[str] = None,
                      ucf101_split_dir: Optional[str] = None,
                      hmdb51_split_dir: Optional[str] = None,
                      kinetics_csv: Optional[str] = None,
                      kinetics_class_list: Optional[str] = None,
                      split: Optional[int] = None,
                      subset: Optional[str] = None,
                      allow_missing: Optional[bool] = None
                      ) -> Optional[LabelSource]:
  """The label source that the CLI flags name (None: class sub-folders).

  Args:
    labels_csv: a `path_or_id,label` CSV.
    ucf101_split_dir: the UCF101 `ucfTrainTestlist/` folder.
    hmdb51_split_dir: the HMDB51 `testTrainMulti_7030_splits/` folder.
    kinetics_csv: a Kinetics CSV.
    kinetics_class_list: the label map of `kinetics_csv` (optional).
    split: 1, 2 or 3 (UCF101 / HMDB51; default 1).
    subset: 'train' or 'test' (UCF101 / HMDB51; required).
    allow_missing: convert the found videos when some are missing (default:
      False for UCF101 / HMDB51, True otherwise).

  Returns:
    The `LabelSource`, or None for the default (`ClassFolderLabels`).

  Raises:
    ValueError: if several sources are named, or an option does not go with
      the source.
  """
  named = [flag for flag, value in (
      ('labels_csv', labels_csv), ('ucf101_split_dir', ucf101_split_dir),
      ('hmdb51_split_dir', hmdb51_split_dir), ('kinetics_csv', kinetics_csv))
           if value]
  if len(named) > 1:
    raise ValueError(f'Give at most one of {", ".join(named)}.')
  splits = ucf101_split_dir or hmdb51_split_dir
  if not splits and (split is not None or subset is not None):
    raise ValueError('split and subset select UCF101 / HMDB51 split lists: '
                     'give ucf101_split_dir or hmdb51_split_dir.')
  if kinetics_class_list and not kinetics_csv:
    raise ValueError('kinetics_class_list goes with kinetics_csv.')
  if splits and subset is None:
    raise ValueError('subset (train or test) is required with '
                     f'{named[0]}.')
  if allow_missing is not None and not (splits or kinetics_csv):
    raise ValueError('allow_missing goes with ucf101_split_dir, '
                     'hmdb51_split_dir or kinetics_csv.')
  missing_ok = {} if allow_missing is None else {'allow_missing':
                                                     allow_missing}
  if ucf101_split_dir:
    return Ucf101SplitLabels(ucf101_split_dir, split or 1, subset,
                             **missing_ok)
  if hmdb51_split_dir:
    return Hmdb51SplitLabels(hmdb51_split_dir, split or 1, subset,
                             **missing_ok)
  if kinetics_csv:
    return KineticsCsvLabels(kinetics_csv, kinetics_class_list, **missing_ok)
  if labels_csv:
    return CsvLabels(labels_csv)
  return None


def cli(argv: Optional[List[str]] = None) -> ConversionReport:
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
    label_source = make_label_source(
        labels_csv=args.labels_csv, ucf101_split_dir=args.ucf101_split_dir,
        hmdb51_split_dir=args.hmdb51_split_dir, kinetics_csv=args.kinetics_csv,
        kinetics_class_list=args.kinetics_class_list, split=args.split,
        subset=args.subset, allow_missing=args.allow_missing)
  except (ValueError, FileNotFoundError) as e:
    parser.error(str(e))
  logging.set_verbosity(logging.INFO)
  with errors.reraise_as_user_error((ValueError, FileNotFoundError)):
    report = convert(
        args.input_dir, args.output_prefix, labels_csv=args.labels_csv,
        num_shards=args.num_shards, num_frames=args.num_frames, fps=args.fps,
        short_side=args.short_side, jpeg_quality=args.jpeg_quality,
        frame_folder_rate=args.frame_folder_rate, label_source=label_source,
        log_every=args.log_every)
  print(report.summary())
  for path, reason in report.failed[:_MAX_PRINTED_FAILURES]:
    print(f'FAILED {path}: {reason}')
  if len(report.failed) > _MAX_PRINTED_FAILURES:
    print(f'... {len(report.failed) - _MAX_PRINTED_FAILURES} more failures '
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
