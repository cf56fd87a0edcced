"""A small SegNet-style encoder–decoder with dense task heads (scene proxy of ``conventions.md`` §9).

Trunk (shared, SegNet of Badrinarayanan et al., arXiv 1511.00561, scaled down): per encoder stage
``n_convs × ConvNormAct(3×3)`` then ``MaxPool2d(2, return_indices=True)``; per decoder stage (mirrored)
max-unpooling with the stored indices (written with deterministic ops: ``MaxUnpool2d`` has no
deterministic kernel, and the tests run with ``torch.use_deterministic_algorithms(True)``) then
``n_convs × ConvNormAct(3×3)``; output ``(N, channels[0], H, W)``
at full resolution (any H, W; odd sizes are handled by unpooling to the stored size).
Heads (task-specific): ``ConvNormAct(3×3, norm="none") → Conv 1×1``:
- ``"segmentation"``: logits ``(N, n_classes, H, W)``;
- ``"depth"``: ``(N, 1, H, W)``, plain (as MTAN's SegNet) or ``softplus`` for positive depth;
- ``"normals"``: ``(N, 3, H, W)``, L2-normalised over the channel axis.

``tasks`` picks a subset and its order (MT2O uses ``("segmentation", "depth")``). ``norm="batch"`` (default)
makes every trunk block convertible to per-task BN (:func:`~paper_repro.models.task_bn.convert_to_task_bn`, CSO);
``norm="group"`` gives MT2O's GroupNorm encoder–decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import ConvNormAct, EncoderHeadsModel, check_positive_int

__all__ = ["SegNet", "SegNetTrunk", "DENSE_TASKS", "max_unpool2x2"]

DENSE_TASKS = ("segmentation", "depth", "normals")


def _up2(x: Tensor) -> Tensor:
    """Nearest 2× upsampling by broadcasting (its backward is a plain sum)."""
    n, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


def max_unpool2x2(x: Tensor, indices: Tensor, size: Sequence[int]) -> Tensor:
    """Inverse of ``MaxPool2d(2, return_indices=True)``: ``(N, C, h, w) -> (N, C, *size)``, each value put back
    at its argmax position (flat index into ``size``), zeros elsewhere; equals ``F.max_unpool2d``."""
    h, w = int(size[0]), int(size[1])
    pad = (0, w - 2 * x.shape[-1], 0, h - 2 * x.shape[-2])
    values = F.pad(_up2(x), pad)
    where = F.pad(_up2(indices), pad, value=-1)
    positions = torch.arange(h * w, device=indices.device).view(h, w)
    return values.masked_fill(where != positions, 0.0)


class SegNetTrunk(nn.Module):
    """Shared encoder–decoder ``(N, in_channels, H, W) -> (N, channels[0], H, W)``."""

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (16, 32, 64), n_convs: int = 1,
                 norm: str = "batch") -> None:
        super().__init__()
        check_positive_int("n_convs", n_convs)
        if not channels:
            raise ValueError(f"Parameter `channels` should be non-empty. Found `channels = {channels}`.")

        def stage(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(*(ConvNormAct(c_in if i == 0 else c_out, c_out, 3, norm=norm)
                                   for i in range(n_convs)))

        ins = [in_channels, *channels[:-1]]
        self.down = nn.ModuleList(stage(a, b) for a, b in zip(ins, channels))
        outs = [*channels[:-1]][::-1] + [channels[0]]
        self.up = nn.ModuleList(stage(a, b) for a, b in zip(channels[::-1], outs))
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.out_channels = channels[0]

    def forward(self, x: Tensor, /) -> Tensor:
        memory = []
        for block in self.down:
            x = block(x)
            size = x.shape[-2:]
            x, idx = self.pool(x)
            memory.append((idx, size))
        for block, (idx, size) in zip(self.up, reversed(memory)):
            x = block(max_unpool2x2(x, idx, size))
        return x


class _DenseHead(nn.Module):
    def __init__(self, c_in: int, c_out: int, kind: str, depth_activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvNormAct(c_in, c_in, 3, norm="none"), nn.Conv2d(c_in, c_out, 1))
        self.kind = kind
        self.softplus = kind == "depth" and depth_activation == "softplus"

    def forward(self, z: Tensor, /) -> Tensor:
        out = self.body(z)
        if self.kind == "normals":
            return F.normalize(out, p=2.0, dim=1)
        return F.softplus(out) if self.softplus else out


class SegNet(EncoderHeadsModel):
    """SegNet-style trunk + dense heads; see the module docstring for shapes.

    :param tasks: ordered subset of ``("segmentation", "depth", "normals")``.
    :param n_classes: segmentation classes.
    :param in_channels, channels, n_convs, norm: trunk options.
    :param depth_activation: ``"none"`` (plain) or ``"softplus"``.
    """

    def __init__(self, tasks: Sequence[str] = DENSE_TASKS, *, n_classes: int = 7, in_channels: int = 3,
                 channels: Sequence[int] = (16, 32, 64), n_convs: int = 1, norm: str = "batch",
                 depth_activation: str = "none") -> None:
        tasks = tuple(tasks)
        if not tasks or len(set(tasks)) != len(tasks) or not set(tasks) <= set(DENSE_TASKS):
            raise ValueError(f"Parameter `tasks` should be distinct names from {DENSE_TASKS}. Found `tasks = {tasks}`.")
        if depth_activation not in ("none", "softplus"):
            raise ValueError(f"Parameter `depth_activation` should be 'none' or 'softplus'. "
                             f"Found `depth_activation = {depth_activation!r}`.")
        check_positive_int("n_classes", n_classes)
        trunk = SegNetTrunk(in_channels, channels, n_convs, norm)
        width = {"segmentation": n_classes, "depth": 1, "normals": 3}
        heads = [_DenseHead(trunk.out_channels, width[t], t, depth_activation) for t in tasks]
        super().__init__(trunk, heads)
        self.tasks = tasks
