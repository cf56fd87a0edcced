"""Per-task training losses (each returns a scalar tensor, mean over the valid entries).

Valid-pixel conventions (MTAN / Nash-MTL NYUv2 code): a depth or normal pixel is valid when its target is not
all zero over the channel axis; segmentation pixels equal to ``ignore_index`` (default -1) are ignored. An
explicit boolean ``mask`` ``(N, H, W)`` overrides the default. With no valid entry the loss is 0 (graph kept).
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

__all__ = ["cross_entropy", "bce_with_logits", "depth_l1_loss", "normal_cosine_loss", "normal_l1_loss",
           "valid_mask", "dense_task_loss"]


def cross_entropy(logits: Tensor, target: Tensor, *, ignore_index: int = -1) -> Tensor:
    """Mean cross-entropy: logits ``(N, C)`` or ``(N, C, H, W)``, integer targets ``(N,)`` or ``(N, H, W)``."""
    if not (target != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target.long(), ignore_index=ignore_index)


def bce_with_logits(logits: Tensor, target: Tensor) -> Tensor:
    """Mean binary cross-entropy on logits ``(N,)``, targets in {0, 1} (or [0, 1]) of the same shape."""
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def valid_mask(target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Boolean ``(N, H, W)``: ``mask`` when given, else pixels whose target ``(N, C, H, W)`` is not all zero."""
    return mask.bool() if mask is not None else (target != 0).any(dim=1)


def _masked_mean(per_pixel: Tensor, mask: Tensor) -> Tensor:
    m = mask.to(per_pixel.dtype)
    return (per_pixel * m).sum() / m.sum().clamp_min(1.0)


def depth_l1_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """``mean_{valid p} |pred_p − target_p|``; pred and target ``(N, 1, H, W)``."""
    return _masked_mean((pred - target).abs().sum(dim=1), valid_mask(target, mask))


def normal_cosine_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """``mean_{valid p} (1 − ⟨n̂_p, n_p⟩)`` with ``n̂`` the L2-normalised prediction; ``(N, 3, H, W)`` inputs."""
    cos = (F.normalize(pred, dim=1) * target).sum(dim=1)
    return _masked_mean(1.0 - cos, valid_mask(target, mask))


def normal_l1_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """``mean_{valid p} ‖n̂_p − n_p‖₁`` between unit vectors (MTI-Net style, ``specs/cso.md`` §9)."""
    return _masked_mean((F.normalize(pred, dim=1) - target).abs().sum(dim=1), valid_mask(target, mask))


def dense_task_loss(task: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The default loss of a :class:`~paper_repro.models.segnet.SegNet` task name."""
    table: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
        "segmentation": cross_entropy, "depth": depth_l1_loss, "normals": normal_cosine_loss}
    if task not in table:
        raise ValueError(f"Parameter `task` should be one of {sorted(table)}. Found `task = {task!r}`.")
    return table[task]

