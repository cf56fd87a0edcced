"""Loaders for real data sets in their standard prepared layouts (conventions §9).

None of these data sets ships with the project or is downloaded; users bring the files. Each loader
checks the layout and raises ``FileNotFoundError`` / ``ValueError`` describing what it expected.

- NYUv2 as prepared by MTAN (``lorenmt/mtan``, also used by ``AvivNavon/nash-mtl``):
  ``root/{train,val}/{image,label,depth,normal}/<i>.npy`` with per-sample arrays image (H, W, 3),
  label (H, W) (class ids 0..12, ``-1`` = ignore), depth (H, W, 1) (0 = invalid), normal (H, W, 3);
  288×384 in the original preparation.
- AliExpress CSVs as prepared by MTReclib (``easezyc/Multitask-Recommendation-Library:datasets/
  aliexpress.py``): a header row, a first id column (dropped), then 16 categorical columns, the
  numerical columns, and the click and purchase labels (``specs/nmt.md`` §4.6).
- ParetoMTL's Multi-MNIST pickles (``Xi-L/ParetoMTL:multiMNIST/train.py``): one pickle of
  ``(trainX, trainLabel, testX, testLabel)`` with 36×36 images and (N, 2) labels. Pickles execute code
  when loaded: only load files you trust.
- Census-Income (KDD) ``census-income.data`` / ``.test`` (UCI): comma-separated rows without header;
  task columns given by the caller (MMoE's defaults: income and never-married).
"""

from __future__ import annotations

import csv
import logging
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ._common import ImageTasks, RecsysData, SceneData, check_choice

__all__ = [
    "NYUv2MTAN",
    "load_nyuv2_mtan",
    "load_aliexpress_csv",
    "load_pmtl_multimnist",
    "load_census_income",
    "CENSUS_NUMERIC_COLUMNS",
    "CENSUS_TASKS",
]

logger = logging.getLogger(__name__)

_NYU_PARTS = ("image", "label", "depth", "normal")
_NYU_LAYOUT = "root/{train,val}/{image,label,depth,normal}/<i>.npy (MTAN's NYUv2 preparation)"


class NYUv2MTAN(Dataset):
    """Lazy NYUv2 reader for MTAN's per-sample ``.npy`` layout; items are ``(image, seg, depth, normal)``.

    ``image (3, H, W)`` float32, ``seg (H, W)`` int64 (``-1`` = ignore), ``depth (1, H, W)`` float32
    (0 = invalid), ``normal (3, H, W)`` float32 — the :class:`SceneData` layout. Shapes are checked per
    item; the file sets of the four folders must match.
    """

    def __init__(self, root: str | Path, split: str = "train") -> None:
        check_choice("split", split, ("train", "val"))
        self.folder = Path(root) / split
        missing = [p for p in _NYU_PARTS if not (self.folder / p).is_dir()]
        if missing:
            raise FileNotFoundError(f"NYUv2 folders {missing} not found under `{self.folder}`. Expected {_NYU_LAYOUT}.")
        names = {p: sorted(f.name for f in (self.folder / p).glob("*.npy")) for p in _NYU_PARTS}
        if not names["image"]:
            raise FileNotFoundError(f"No `.npy` files in `{self.folder / 'image'}`. Expected {_NYU_LAYOUT}.")
        for p in _NYU_PARTS[1:]:
            if names[p] != names["image"]:
                diff = sorted(set(names[p]) ^ set(names["image"]))[:5]
                raise ValueError(
                    f"NYUv2 folders `image` and `{p}` under `{self.folder}` hold different files (e.g. "
                    f"{diff})."
                )
        self.names = sorted(names["image"], key=lambda s: (len(s), s))

    def __len__(self) -> int:
        return len(self.names)

    def _load(self, part: str, name: str, channels: int | None) -> np.ndarray:
        path = self.folder / part / name
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"File `{path}` is not a plain `.npy` array: {err}") from err
        expected = "(H, W)" if channels is None else f"(H, W, {channels})"
        ok = arr.ndim == 2 if channels is None else arr.ndim == 3 and arr.shape[-1] == channels
        if not ok:
            raise ValueError(f"NYUv2 file `{path}` should have shape {expected}. Found shape {arr.shape}.")
        return arr

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        name = self.names[index]
        image = self._load("image", name, 3)
        label = self._load("label", name, None)
        depth = self._load("depth", name, 1)
        normal = self._load("normal", name, 3)
        shapes = {p: a.shape[:2] for p, a in zip(_NYU_PARTS, (image, label, depth, normal))}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"NYUv2 sample `{name}` under `{self.folder}` has inconsistent sizes {shapes}.")
        chw = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 0)).astype(np.float32))  # noqa: E731
        return chw(image), torch.from_numpy(label.astype(np.int64)), chw(depth), chw(normal)


def load_nyuv2_mtan(root: str | Path, split: str = "train", max_samples: int | None = None) -> SceneData:
    """Read a whole MTAN-layout NYUv2 split (or its first ``max_samples``) into memory as :class:`SceneData`."""
    ds = NYUv2MTAN(root, split)
    n = len(ds) if max_samples is None else min(max_samples, len(ds))
    items = [ds[i] for i in range(n)]
    return SceneData(*(torch.stack(parts) for parts in zip(*items)))


def load_aliexpress_csv(
    path: str | Path, *, n_categorical: int = 16, n_labels: int = 2, drop_first_column: bool = True,
    vocab_sizes: Sequence[int] | None = None,
) -> RecsysData:
    """Read one MTReclib AliExpress CSV (e.g. ``AliExpress_NL/train.csv``) as :class:`RecsysData`.

    Layout (after the header row and the dropped id column): columns ``[:16]`` categorical ids,
    ``[16:-2]`` numerical features, ``[-2:]`` click and purchase labels (0/1). Vocabulary sizes default
    to the column maxima + 1, as MTReclib's ``field_dims``; pass the training file's ``vocab_sizes``
    when loading its test file so both agree.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"AliExpress CSV `{p}` not found. Expected MTReclib's processed layout: a header row, an id "
            f"column, {n_categorical} categorical columns, numerical columns, then click and purchase."
        )
    try:
        data = np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"AliExpress CSV `{p}` should hold only numbers after its header row: {err}") from err
    if drop_first_column:
        data = data[:, 1:]
    if data.shape[1] < n_categorical + n_labels + 1 or len(data) == 0:
        raise ValueError(
            f"AliExpress CSV `{p}` should have at least {n_categorical} categorical, 1 numerical and "
            f"{n_labels} label columns (plus the id column). Found {data.shape[1]} columns, {len(data)} rows."
        )
    cat = data[:, :n_categorical]
    labels = data[:, -n_labels:]
    if np.any(cat < 0) or np.any(cat != np.round(cat)):
        raise ValueError(
            f"AliExpress CSV `{p}`: the first {n_categorical} data columns should be non-negative integer ids."
        )
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError(f"AliExpress CSV `{p}`: the last {n_labels} columns should be 0/1 labels.")
    cat = cat.astype(np.int64)
    vocab = tuple(int(v) for v in (cat.max(0) + 1)) if vocab_sizes is None else tuple(int(v) for v in vocab_sizes)
    if len(vocab) != n_categorical or np.any(cat.max(0) >= np.asarray(vocab)):
        raise ValueError(
            f"Parameter `vocab_sizes` should give {n_categorical} sizes above the ids in `{p}`. "
            f"Found `vocab_sizes = {vocab}`."
        )
    return RecsysData(
        categorical=torch.from_numpy(cat),
        dense=torch.from_numpy(data[:, n_categorical:-n_labels].astype(np.float32)),
        labels=torch.from_numpy(labels.astype(np.float32)),
        vocab_sizes=vocab,
    )


def load_pmtl_multimnist(path: str | Path, *, image_size: int = 36) -> tuple[ImageTasks, ImageTasks]:
    """Read a ParetoMTL Multi-MNIST pickle ``(trainX, trainLabel, testX, testLabel)`` → (train, test).

    Images may be stored as ``(N, 36, 36)``, ``(N, 1, 36, 36)`` or ``(N, 1296)``; they are returned as
    ``x (N, 1, 36, 36)`` float32 with values as stored (PMTL applies no normalization), labels
    ``y (N, 2)`` int64. Only load pickles you trust.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"Multi-MNIST pickle `{p}` not found. "
            "Expected one pickle of (trainX, trainLabel, testX, testLabel) as in ParetoMTL."
        )
    with open(p, "rb") as f:
        try:
            obj = pickle.load(f)
        except UnicodeDecodeError:
            f.seek(0)
            obj = pickle.load(f, encoding="latin1")  # pickles written by Python 2
    if not isinstance(obj, (tuple, list)) or len(obj) != 4:
        raise ValueError(
            f"Multi-MNIST pickle `{p}` should hold a 4-tuple (trainX, trainLabel, testX, testLabel). "
            f"Found {type(obj).__name__}."
        )
    parts = []
    for which, x, y in (("train", obj[0], obj[1]), ("test", obj[2], obj[3])):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim < 2 or x[0].size != image_size**2:
            raise ValueError(
                f"Multi-MNIST pickle `{p}`: {which} images should be {image_size}x{image_size}. "
                f"Found shape {x.shape}."
            )
        if y.shape != (len(x), 2):
            raise ValueError(
                f"Multi-MNIST pickle `{p}`: {which} labels should have shape ({len(x)}, 2). "
                f"Found shape {y.shape}."
            )
        if y.min() < 0 or y.max() > 9:
            raise ValueError(
                f"Multi-MNIST pickle `{p}`: {which} labels should be digits 0..9. "
                f"Found range [{y.min()}, {y.max()}]."
            )
        x = x.reshape(len(x), 1, image_size, image_size).astype(np.float32)
        parts.append(ImageTasks(x=torch.from_numpy(x), y=torch.from_numpy(y.astype(np.int64))))
    return parts[0], parts[1]


#: Continuous columns of census-income (KDD) by index, per the UCI ``census-income.names`` order
#: (age, wage per hour, capital gains, capital losses, dividends, persons worked for employer, weeks worked).
CENSUS_NUMERIC_COLUMNS: tuple[int, ...] = (0, 5, 16, 17, 18, 30, 39)
#: MMoE's (Ma et al. 2018) first task pair: column index → values counted as positive.
CENSUS_TASKS: dict[str, tuple[int, tuple[str, ...]]] = {
    "income": (41, ("50000+.",)),
    "never_married": (7, ("Never married",)),
}
_CENSUS_WEIGHT_COLUMN = 24  # instance weight: not a feature


def load_census_income(
    path: str | Path,
    *,
    tasks: Mapping[str, tuple[int, Sequence[str]]] = CENSUS_TASKS,
    numeric_columns: Sequence[int] = CENSUS_NUMERIC_COLUMNS,
    drop_columns: Sequence[int] = (_CENSUS_WEIGHT_COLUMN,),
    vocabularies: Sequence[Sequence[str]] | None = None,
) -> tuple[RecsysData, list[list[str]]]:
    """Read ``census-income.data`` or ``.test`` (comma-separated, no header) as :class:`RecsysData`.

    Task columns become 0/1 labels (a value in the task's positive set) and are removed from the
    features, with ``drop_columns``; ``numeric_columns`` become ``dense`` (float32, raw values), every
    other column a categorical id. Returns the data and the per-column vocabularies (sorted values);
    pass the training file's vocabularies when reading the test file (unseen values get id 0 there,
    and id 0 is reserved for them: vocabulary ids start at 1). The default column indices follow the
    UCI column order; check them against your copy.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"Census-Income file `{p}` not found. "
            "Expected UCI's comma-separated `census-income.data` / `.test` without header."
        )
    with open(p, newline="") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"Census-Income file `{p}` holds no rows.")
    width = len(rows[0])
    bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
    if bad is not None:
        raise ValueError(f"Census-Income file `{p}`: row {bad} has {len(rows[bad])} columns, row 0 has {width}.")
    table = np.array(rows, dtype=object)
    task_cols = [c for c, _ in tasks.values()]
    if max(task_cols + list(numeric_columns) + list(drop_columns)) >= width:
        raise ValueError(
            f"Census-Income file `{p}` has {width} columns; task, numeric and drop column indices "
            "should be below that."
        )
    labels = np.stack([np.isin(table[:, c], list(pos)) for c, pos in tasks.values()], axis=1).astype(np.float32)
    skip = set(task_cols) | set(drop_columns)
    num_cols = [c for c in numeric_columns if c not in skip]
    cat_cols = [c for c in range(width) if c not in skip and c not in num_cols]
    try:
        dense = table[:, num_cols].astype(np.float64).astype(np.float32)
    except ValueError as err:
        raise ValueError(f"Census-Income file `{p}`: numeric columns {num_cols} should hold numbers: {err}") from err
    if vocabularies is None:
        vocabularies = [sorted(set(table[:, c])) for c in cat_cols]
    if len(vocabularies) != len(cat_cols):
        raise ValueError(f"Parameter `vocabularies` should have {len(cat_cols)} entries. Found {len(vocabularies)}.")
    cat = np.zeros((len(table), len(cat_cols)), dtype=np.int64)
    for j, (c, vocab) in enumerate(zip(cat_cols, vocabularies)):
        index = {v: i + 1 for i, v in enumerate(vocab)}
        cat[:, j] = [index.get(v, 0) for v in table[:, c]]
    data = RecsysData(
        categorical=torch.from_numpy(cat), dense=torch.from_numpy(dense), labels=torch.from_numpy(labels),
        vocab_sizes=tuple(len(v) + 1 for v in vocabularies),
    )
    return data, [list(v) for v in vocabularies]
