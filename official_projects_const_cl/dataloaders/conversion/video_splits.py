"""Official dataset splits as label sources: UCF101, HMDB51, Kinetics.

The UCF101 `ucfTrainTestlist/` and HMDB51 `testTrainMulti_7030_splits/`
files and the Kinetics CSVs (paper §4.1, supp. §3.1 datasets), and
`make_label_source`, which picks the source a command line asks for.
Formats: docs/datasets.md.
"""

import csv
import os
import re
from typing import Dict, List, Optional, Tuple

from absl import logging

from official_projects_const_cl.dataloaders.conversion import video_labels


def _check_split(split: int, subset: str):
  if split not in (1, 2, 3):
    raise ValueError(f'split must be 1, 2 or 3, got {split!r}.')
  if subset not in ('train', 'test'):
    raise ValueError(f"subset must be 'train' or 'test', got {subset!r}.")


def _is_dir_or_raise(path: str, what: str):
  if not os.path.isdir(path):
    raise FileNotFoundError(f'{what} {path} does not exist or is not a '
                            'folder.')


class Ucf101SplitLabels(video_labels.ListedLabels):
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
    for line, text in video_labels.list_lines(self.class_ind_path):
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

  def listed(self) -> Tuple[List[video_labels.ListedVideo], List[str]]:
    names = self.class_names()
    # One class is spelled in two cases (HandstandPushups/v_HandStandPushups_
    # ...): compare folders with classInd.txt case-insensitively.
    by_folder = {n.lower(): i for i, n in enumerate(names)}
    videos = []
    for line, text in video_labels.list_lines(self.list_path):
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
      videos.append(video_labels.ListedVideo(
          name=rel, labels=(names[index],), where=where,
          candidates=((rel, None, None), (stem, None, None))))
    return videos, names


class Hmdb51SplitLabels(video_labels.ListedLabels):
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

  def listed(self) -> Tuple[List[video_labels.ListedVideo], List[str]]:
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
      for line, text in video_labels.list_lines(files[name]):
        where = f'{files[name]}:{line}'
        parts = text.rsplit(None, 1)
        if len(parts) != 2 or parts[1] not in ('0', '1', '2'):
          raise ValueError(f'{where}: expected "<video>.avi <0|1|2>", got '
                           f'{text!r}.')
        if parts[1] != code:
          continue
        stem = os.path.splitext(parts[0])[0]
        videos.append(video_labels.ListedVideo(
            name=f'{name}/{parts[0]}', labels=(name,), where=where,
            candidates=((f'{name}/{parts[0]}', None, None),
                        (stem, None, None))))
    return videos, names


_KINETICS_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end', 'split')


def kinetics_clip_name(youtube_id: str, time_start: float,
                       time_end: float) -> str:
  """`<youtube_id>_<time_start:06d>_<time_end:06d>`: a trimmed clip's name."""
  return f'{youtube_id}_{int(time_start):06d}_{int(time_end):06d}'


class KineticsCsvLabels(video_labels.ListedLabels):
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

  def listed(self) -> Tuple[List[video_labels.ListedVideo], List[str]]:
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
        videos.append(video_labels.ListedVideo(
            name=clip, labels=(label,) if label else (), where=where,
            candidates=((clip, None, None), (youtube_id, start_s, end_s)),
            media_id=clip))
    labels = sorted({l for v in videos for l in v.labels})
    if self.class_list is None:
      return videos, labels
    names = [text for _, text in video_labels.list_lines(self.class_list)]
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
                      ) -> Optional[video_labels.LabelSource]:
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
    return video_labels.CsvLabels(labels_csv)
  return None
