"""Tiny multi-task models and losses for the MT2O tests (CPU, seconds)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TinyMTL(nn.Module):
    """Linear trunk (3 → 4, tanh) + m linear heads; optional BatchNorm1d in the trunk; encode/decode defined."""

    def __init__(self, m: int = 2, bn: bool = False) -> None:
        super().__init__()
        self.n_tasks = m
        self.trunk = nn.Sequential(nn.Linear(3, 4), *( [nn.BatchNorm1d(4)] if bn else []), nn.Tanh())
        self.heads = nn.ModuleList(nn.Linear(4, 1) for _ in range(m))

    def encode(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def decode(self, z: Tensor) -> list[Tensor]:
        return [h(z).squeeze(-1) for h in self.heads]

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self) -> list[list[nn.Parameter]]:
        return [list(h.parameters()) for h in self.heads]


def mse(outputs: list[Tensor], target: Tensor) -> Tensor:
    """Per-task MSE of one model: ``(m,)``."""
    return torch.stack([((o - target[:, i]) ** 2).mean() for i, o in enumerate(outputs)])


def batch(m: int = 2, n: int = 16, seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=dtype)
    y = torch.randn(n, m, generator=g, dtype=dtype)
    return x, y
