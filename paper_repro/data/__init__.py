"""Offline data for the reproductions: image, scene, recommendation and synthetic sets, plus loaders
for the real formats users bring (conventions §7-§9). Nothing here downloads.

Every builder is deterministic given its ``seed`` (an ``int`` or a ``numpy.random.Generator``) and
returns :class:`Splits` (``train`` / ``val`` / ``test`` records plus JSON-able ``meta``)::

    from paper_repro.data import multidigits
    splits = multidigits(seed=0)
    x, y = splits.train.tensors()          # x (N, 1, 10, 10) float32, y (N, 2) int64
    loader = torch.utils.data.DataLoader(splits.train.dataset(), batch_size=256, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))

:data:`DATASETS` names every builder with a one-line description and small ("smoke") arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._common import ImageTasks, RecsysData, RegressionData, SceneData, Splits, TensorRecord
from .digits import multidigits
from .mnist import MNIST_FILES, load_mnist, mnist_dir, read_idx
from .multimnist import multimnist, multimnist36, normalize_mnist, resize_indices
from .real_formats import NYUv2MTAN, load_aliexpress_csv, load_census_income, load_nyuv2_mtan, load_pmtl_multimnist
from .recsys import CASCADE_VOCABS, click_purchase, mmoe_synthetic
from .scenes import SCENE_CLASSES, Intrinsics, backproject, intrinsics, normals_from_depth, render_scenes, scenes
from .toys import (
    BENCHMARK_NAMES,
    LOWER,
    BenchmarkProblem,
    benchmark_problem,
    cagrad_toy,
    conflict_regression,
    multitarget_regression,
    vlmop1,
    vlmop1_front,
    vlmop2,
    vlmop2_front,
    vlmop_pareto_set,
)


@dataclass(frozen=True)
class DatasetEntry:
    """One builder of :data:`DATASETS`: the callable, a one-line description, small arguments for CI."""

    builder: Callable[..., Splits[Any]]
    description: str
    smoke_kwargs: dict[str, Any] = field(default_factory=dict)


#: name → builder, description and smoke-size arguments (for the overview notebook and the tests).
DATASETS: dict[str, DatasetEntry] = {
    "multimnist": DatasetEntry(
        multimnist,
        "Multi-MNIST, MGDA recipe: two digits overlaid, 28x28, left/right labels (conv. §7.2)",
        {"n_train": 2000, "n_test": 500},
    ),
    "multimnist36": DatasetEntry(
        multimnist36,
        "Multi-MNIST 36x36, two partners per image (PMTL/PHN/COSMOS style, conv. §7.2)",
        {"n_train": 2000, "n_test": 500},
    ),
    "multidigits": DatasetEntry(
        multidigits,
        "Multi-Digits: scikit-learn 8x8 digits overlaid on 10x10 (conv. §7.3), the CI benchmark",
        {},
    ),
    "scenes": DatasetEntry(
        scenes,
        "Procedural indoor scenes with segmentation, depth, normals (NYUv2 stand-in, conv. §9)",
        {"n_train": 64, "n_val": 16, "n_test": 16},
    ),
    "mmoe_synthetic": DatasetEntry(
        mmoe_synthetic,
        "MMoE synthetic two-task data with correlation knob p (nmt.md §4.1 E1)",
        {"n_train": 4000, "n_test": 4000},
    ),
    "click_purchase": DatasetEntry(
        click_purchase,
        "Click → purchase cascade, CTR/CTCVR labels (nmt.md §4.1 E2)",
        {"n_train": 20000, "n_test": 10000},
    ),
    "conflict_regression": DatasetEntry(
        conflict_regression,
        "Linear multi-task regression with conflict ρ, scales a_t, noise σ_t (conv. §8.5)",
        {"n_train": 1000, "n_test": 200},
    ),
    "multitarget_regression": DatasetEntry(
        multitarget_regression,
        "Standardized 3-target regression for MT2O E4 (mt2o.md §4)",
        {"n_train": 1000, "n_test": 200},
    ),
}

__all__ = [
    "DATASETS", "DatasetEntry", "Splits", "TensorRecord", "ImageTasks", "SceneData", "RecsysData", "RegressionData",
    "read_idx", "load_mnist", "mnist_dir", "MNIST_FILES",
    "multimnist", "multimnist36", "resize_indices", "normalize_mnist", "multidigits",
    "SCENE_CLASSES", "Intrinsics", "intrinsics", "render_scenes", "scenes", "backproject", "normals_from_depth",
    "mmoe_synthetic", "click_purchase", "CASCADE_VOCABS",
    "LOWER", "cagrad_toy", "vlmop1", "vlmop2", "vlmop1_front", "vlmop2_front", "vlmop_pareto_set",
    "BenchmarkProblem", "benchmark_problem", "BENCHMARK_NAMES", "conflict_regression", "multitarget_regression",
    "NYUv2MTAN", "load_nyuv2_mtan", "load_aliexpress_csv", "load_pmtl_multimnist", "load_census_income",
]
