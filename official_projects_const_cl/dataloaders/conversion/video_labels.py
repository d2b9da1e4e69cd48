"""Labels of the videos to convert: class folders, CSVs and dataset splits.

`LabelSource`s: class sub-folders, a `path_or_id,label` CSV, the official
UCF101 / HMDB51 split files and the Kinetics CSVs (paper §4.1 datasets).
Each returns the videos to convert, the label map and the listed videos
that are missing. Formats: docs/datasets.md.
"""

import abc
import csv
import dataclasses
import os
import re
from typing import Dict, List, Optional, Tuple

from absl import logging

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
        item = rows.setdefault(path, VideoItem(
            path=path, key=video_sources.media_key(path, input_dir), start_s=start_s,
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
      key = video.media_id or video_sources.media_key(path, input_dir)
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
