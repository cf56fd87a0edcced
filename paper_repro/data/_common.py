"""Shared helpers of :mod:`paper_repro.data`: argument checks, random generators, splits, containers.

Every builder in this package takes its randomness from an explicit ``seed`` (an ``int`` or a
``numpy.random.Generator``); nothing here touches a global random state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch.utils.data import TensorDataset

SeedLike = int | np.random.Generator

__all__ = [
    "SeedLike",
    "as_generator",
    "check_positive",
    "check_nonnegative",
    "check_fraction",
    "check_choice",
    "split_fractions",
    "stratified_split",
    "draw_partners",
    "overlay_pairs",
    "TensorRecord",
    "Splits",
    "ImageTasks",
    "SceneData",
    "RecsysData",
    "RegressionData",
]


# ----------------------------------------------------------------------------------------------
# Argument checks (message pattern of specs/style.md §1)
# ----------------------------------------------------------------------------------------------


def check_positive(name: str, value: float, *, integer: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is positive (and an integer when ``integer``)."""
    if integer and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
        raise ValueError(f"Parameter `{name}` should be a positive integer. Found `{name} = {value!r}`.")
    if not value > 0:
        raise ValueError(f"Parameter `{name}` should be positive. Found `{name} = {value!r}`.")


def check_nonnegative(name: str, value: float, *, integer: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is non-negative (and an integer when ``integer``)."""
    if integer and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
        raise ValueError(
            f"Parameter `{name}` should be a non-negative integer. Found `{name} = {value!r}`."
        )
    if not value >= 0:
        raise ValueError(f"Parameter `{name}` should be non-negative. Found `{name} = {value!r}`.")


def check_fraction(name: str, value: float, *, low: float = 0.0, high: float = 1.0) -> None:
    """Raise ``ValueError`` unless ``low <= value < high``."""
    if not low <= value < high:
        raise ValueError(f"Parameter `{name}` should be in [{low}, {high}). Found `{name} = {value!r}`.")


def check_choice(name: str, value: Any, options: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``options``."""
    options = tuple(options)
    if value not in options:
        raise ValueError(f"Parameter `{name}` should be one of {options}. Found `{name} = {value!r}`.")


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Return a fresh ``numpy.random.Generator`` for an ``int`` seed, or the given generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(
            f"Parameter `seed` should be a non-negative int or a numpy Generator. Found `seed = {seed!r}`."
        )
    return np.random.default_rng(int(seed))


# ----------------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------------


def split_fractions(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` at random into (rest, held-out) with ``round(fraction * n)`` held out.

    Both index arrays are sorted, so the order of the source is kept inside each part. This is the
    validation rule of conventions §4 (10 % of training, drawn once with the data seed).
    """
    check_fraction("fraction", fraction)
    n_out = int(round(fraction * n))
    perm = rng.permutation(n)
    return np.sort(perm[n_out:]), np.sort(perm[:n_out])


def stratified_split(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified version of :func:`split_fractions`: each class holds out ``round(fraction * n_c)``."""
    check_fraction("fraction", fraction)
    keep, out = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = rng.permutation(idx)
        n_out = int(round(fraction * len(idx)))
        out.append(perm[:n_out])
        keep.append(perm[n_out:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(out))


# ----------------------------------------------------------------------------------------------
# Overlaid-digit composites (Multi-MNIST, Multi-Digits; conventions §7.2, §7.3)
# ----------------------------------------------------------------------------------------------


def draw_partners(m: int, per_image: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pair every image ``i < m`` with ``per_image`` uniform partners ``j`` (``j = i`` allowed).

    Returns ``(left, right)`` index arrays of length ``m * per_image``, copy-major: the first ``m``
    entries are the first partner draw for images ``0..m-1``, and so on.
    """
    left = np.tile(np.arange(m), per_image)
    right = rng.integers(0, m, size=m * per_image)
    return left, right


def overlay_pairs(left: np.ndarray, right: np.ndarray, offset: int, canvas: int) -> np.ndarray:
    """Overlay image stacks: ``left`` at the top-left corner, ``right`` shifted by ``offset`` on both axes.

    ``left`` and ``right`` are ``(N, s, s)`` arrays; the result is ``(N, canvas, canvas)`` of the same
    dtype, zero elsewhere, with the elementwise maximum on the overlap (MGDA recipe, conventions §7.2
    steps 2-3: s = 28, offset 6, canvas 36; §7.3: s = 8, offset 2, canvas 10).
    """
    n, s, _ = left.shape
    if right.shape != left.shape or offset + s > canvas:
        raise ValueError(
            f"Cannot overlay images of shapes {left.shape} and {right.shape} with offset {offset} "
            f"on a {canvas}x{canvas} canvas."
        )
    out = np.zeros((n, canvas, canvas), dtype=left.dtype)
    out[:, :s, :s] = left
    out[:, offset : offset + s, offset : offset + s] = right
    out[:, offset:s, offset:s] = np.maximum(left[:, offset:, offset:], right[:, : s - offset, : s - offset])
    return out


# ----------------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorRecord:
    """Base of the data containers: every field that is a tensor has the sample axis first.

    Subclasses are frozen dataclasses whose tensor fields share their first dimension; non-tensor
    fields (e.g. vocabulary sizes) are carried along unchanged by :meth:`subset`.
    """

    def _tensor_fields(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if isinstance(getattr(self, f.name), torch.Tensor)]

    def __post_init__(self) -> None:
        sizes = {name: getattr(self, name).shape[0] for name in self._tensor_fields()}
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"All tensors of a {type(self).__name__} should share their first dimension. Found {sizes}."
            )

    def __len__(self) -> int:
        names = self._tensor_fields()
        return int(getattr(self, names[0]).shape[0]) if names else 0

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The tensor fields, in declaration order."""
        return tuple(getattr(self, name) for name in self._tensor_fields())

    def dataset(self) -> TensorDataset:
        """A ``TensorDataset`` over :meth:`tensors` (for a ``DataLoader``)."""
        return TensorDataset(*self.tensors())

    def subset(self, index: Sequence[int] | np.ndarray | torch.Tensor | slice) -> TensorRecord:
        """The same record restricted to the samples ``index`` (tensors are indexed, the rest copied)."""
        if not isinstance(index, slice):
            index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        values = {
            f.name: (getattr(self, f.name)[index] if f.name in self._tensor_fields() else getattr(self, f.name))
            for f in dataclasses.fields(self)
        }
        return type(self)(**values)


R = TypeVar("R", bound=TensorRecord)


@dataclass(frozen=True)
class Splits(Generic[R]):
    """Train / validation / test parts of one data set, plus JSON-able metadata about its construction."""

    train: R
    val: R
    test: R
    meta: dict[str, Any] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        """Number of samples per split."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


@dataclass(frozen=True)
class ImageTasks(TensorRecord):
    """Images with one class label per task: ``x (N, C, H, W)`` (float32, or uint8 when not normalized)
    and ``y (N, T)`` int64 (for the overlaid-digit sets, T = 2: left digit, right digit)."""

    x: torch.Tensor
    y: torch.Tensor


@dataclass(frozen=True)
class SceneData(TensorRecord):
    """Dense scene-understanding samples in the MTAN NYUv2 tensor layout.

    ``image (N, 3, H, W)`` float32; ``seg (N, H, W)`` int64 class ids (``-1`` = ignore);
    ``depth (N, 1, H, W)`` float32, positive, ``0`` = invalid; ``normal (N, 3, H, W)`` float32 unit
    vectors in camera coordinates, ``0`` where depth is invalid.
    """

    image: torch.Tensor
    seg: torch.Tensor
    depth: torch.Tensor
    normal: torch.Tensor


@dataclass(frozen=True)
class RecsysData(TensorRecord):
    """Recommendation samples: ``categorical (N, F)`` int64 ids (id ``< vocab_sizes[f]``),
    ``dense (N, D)`` float32 and ``labels (N, T)`` float32 (0/1, or real values in regression mode)."""

    categorical: torch.Tensor
    dense: torch.Tensor
    labels: torch.Tensor
    vocab_sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class RegressionData(TensorRecord):
    """Multi-target samples: inputs ``x (N, d)`` and targets ``y (N, T)`` (float32 unless asked otherwise)."""

    x: torch.Tensor
    y: torch.Tensor
