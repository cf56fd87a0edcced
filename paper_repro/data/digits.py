"""Multi-Digits: two scikit-learn 8x8 digits overlaid on a 10x10 canvas (conventions §7.3).

Source: ``sklearn.datasets.load_digits`` (1,797 images, values 0-16, bundled with scikit-learn: no
download). Recipe: split the source images 80/20 (stratified by digit, data seed); hold out 10 % of
the training images for validation (data seed, conventions §4) [decision: split before pairing, as for
Multi-MNIST]; within each split draw two uniform partners per source image, put the left digit at
[0:8, 0:8] and the right one at [2:10, 2:10] with the elementwise max on the overlap, and scale by 1/16.
Builds in well under a second: the default notebook and CI benchmark.
"""

from __future__ import annotations

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
    stratified_split,
)

__all__ = ["multidigits"]


def multidigits(
    *,
    seed: SeedLike = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    per_image: int = 2,
) -> Splits[ImageTasks]:
    """Build Multi-Digits.

    :param seed: the data seed (stratified split, validation split, partners).
    :param test_fraction: stratified test part of the 1,797 source images (0.2 per §7.3).
    :param val_fraction: part of the training source images held out for validation.
    :param per_image: composites (partner draws) per source image (2 per §7.3).
    :returns: :class:`Splits` of :class:`ImageTasks`: ``x (N, 1, 10, 10)`` float32 in [0, 1] and
        ``y (N, 2)`` int64 (left, right). Default sizes: 2,588 / 288 / 718 composites.
    """
    from sklearn.datasets import load_digits  # bundled data, no network

    check_fraction("test_fraction", test_fraction)
    check_positive("per_image", per_image, integer=True)
    rng = as_generator(seed)
    digits = load_digits()
    images = digits.images.astype(np.float32)  # (1797, 8, 8), values 0..16
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, test_fraction, rng)
    keep, held = split_fractions(len(train_idx), val_fraction, rng)
    groups = {"train": train_idx[keep], "val": train_idx[held], "test": test_idx}
    parts = {}
    for name, idx in groups.items():
        left, right = draw_partners(len(idx), per_image, rng)
        x = overlay_pairs(images[idx][left], images[idx][right], offset=2, canvas=10) / 16.0
        y = np.stack([labels[idx][left], labels[idx][right]], axis=1)
        parts[name] = ImageTasks(x=torch.from_numpy(x[:, None].astype(np.float32)), y=torch.from_numpy(y))
    meta = {
        "recipe": "conventions §7.3 (sklearn load_digits, 10x10 overlay)",
        "seed": seed if isinstance(seed, int) else "generator",
        "test_fraction": test_fraction,
        "val_fraction": val_fraction,
        "partners_per_image": per_image,
    }
    out = Splits(**parts, meta=meta)
    meta["sizes"] = out.sizes()
    return out
