"""Multi-task recommendation backbones: Shared-Bottom, MMoE, PLE (``specs/nmt.md`` §4.2).

Shapes follow ``easezyc/Multitask-Recommendation-Library:models/*.py``, scaled down [decision of the spec].

Input ``x``: a dense tensor ``(N, n_dense)`` when there are no categorical fields (E1), else a pair
``(categorical: LongTensor[N, F], dense: Tensor[N, n_dense])`` (E2, AliExpress-like CSVs). Each categorical field
gets an embedding of dim ``embed_dim`` (16); the embedded input is ``concat(embeddings..., dense)`` of width
``F·embed_dim + n_dense``. Every model returns one logit vector ``(N,)`` per task (use BCE-with-logits).

MLP blocks are ``Linear → ReLU`` (no BatchNorm, dropout 0) by default; ``batch_norm``/``dropout`` give the
AliExpress-like option. The spec's "narrow" E1 variant is the same class with widths ÷ 4, e.g.
``SharedBottom(..., bottom=(32, 16), tower=(8,))``.

Representation mode (``encode``/``decode``):
- Shared-Bottom: ``encode`` = embedding + bottom ``(N, bottom[-1])``; ``decode`` = towers.
- MMoE: ``encode(x) = concat(expert_1(e), ..., expert_E(e), e)`` of width ``E·expert[-1] + d_in`` with ``e`` the
  embedded input (the gates, which are task parameters, read ``e``); ``decode`` splits it. Caveat: without
  categorical fields ``e`` is the raw input, so ∂L/∂z also holds a block ∂L/∂x that no shared parameter sees.
- PLE: no ``encode``/``decode``. Shared and task-specific paths interleave over the extraction levels (task
  experts of a non-final level feed the shared gate), so there is no single shared representation.

Parameter partition (task t's parameters are those only task t's output depends on):
- Shared-Bottom: embeddings + bottom shared; tower t task t.
- MMoE: embeddings + experts shared; gate t and tower t task t.
- PLE: embeddings, every shared expert and shared gate, the task-specific experts of non-final levels (they feed
  the shared gate) and the task gates of levels before the last two (they feed such experts) are shared; task
  t's gates of the last two levels, its final-level experts and its tower are task t's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .base import MultiTaskModel, check_positive_int, mlp

__all__ = ["FeatureEmbedding", "SharedBottom", "MMoE", "PLE", "RecInput"]

RecInput = Tensor | tuple[Tensor, Tensor]


class FeatureEmbedding(nn.Module):
    """``(categorical (N, F), dense (N, D))`` or dense ``(N, D)`` → ``(N, F·embed_dim + D)``."""

    def __init__(self, vocab_sizes: Sequence[int] = (), n_dense: int = 0, embed_dim: int = 16) -> None:
        super().__init__()
        for v in vocab_sizes:
            check_positive_int("vocab_sizes", v)
        if not vocab_sizes and n_dense < 1:
            raise ValueError(f"Parameter `n_dense` should be positive when there is no categorical field. "
                             f"Found `n_dense = {n_dense}`.")
        self.embeddings = nn.ModuleList(nn.Embedding(v, embed_dim) for v in vocab_sizes)
        self.n_dense = n_dense
        self.out_features = len(vocab_sizes) * embed_dim + n_dense

    def forward(self, x: RecInput, /) -> Tensor:
        if isinstance(x, Tensor):
            if self.embeddings:
                raise ValueError(f"Parameter `x` should be a pair (categorical, dense) for a model with "
                                 f"{len(self.embeddings)} categorical fields. "
                                 f"Found a tensor of shape {tuple(x.shape)}.")
            categorical, dense = None, x
        else:
            categorical, dense = x
        parts = [] if categorical is None else [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        if self.n_dense:
            parts.append(dense.to(parts[0].dtype) if parts else dense)
        return torch.cat(parts, dim=1)


def _towers(n_tasks: int, d: int, tower: Sequence[int], batch_norm: bool, dropout: float) -> nn.ModuleList:
    return nn.ModuleList(mlp(d, tower, out_features=1, batch_norm=batch_norm, dropout=dropout)
                         for _ in range(n_tasks))


def _mix(experts: Tensor, gate_logits: Tensor) -> Tensor:
    """Softmax-gated mixture: experts ``(N, E, D)``, gate logits ``(N, E)`` → ``(N, D)``."""
    return torch.einsum("ne,ned->nd", torch.softmax(gate_logits, dim=-1), experts)


class SharedBottom(MultiTaskModel):
    """Embedding → shared bottom MLP ``bottom`` (128, 64) → per-task tower ``tower`` (32) → 1 logit."""

    def __init__(self, n_tasks: int = 2, *, vocab_sizes: Sequence[int] = (), n_dense: int = 0,
                 embed_dim: int = 16, bottom: Sequence[int] = (128, 64), tower: Sequence[int] = (32,),
                 batch_norm: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_tasks = check_positive_int("n_tasks", n_tasks)
        self.embedding = FeatureEmbedding(vocab_sizes, n_dense, embed_dim)
        self.bottom = mlp(self.embedding.out_features, bottom, batch_norm=batch_norm, dropout=dropout)
        self.towers = _towers(n_tasks, bottom[-1], tower, batch_norm, dropout)

    def _shared_modules(self) -> list[nn.Module]:
        return [self.embedding, self.bottom]

    def _task_modules(self, task: int) -> list[nn.Module]:
        return [self.towers[task]]

    def encode(self, x: RecInput, /) -> Tensor:
        """Shared representation ``(N, bottom[-1])``."""
        return self.bottom(self.embedding(x))

    def decode(self, z: Tensor, /) -> list[Tensor]:
        """Per-task logits ``(N,)``."""
        return [t(z).squeeze(-1) for t in self.towers]

    def forward(self, x: RecInput, /) -> list[Tensor]:
        return self.decode(self.encode(x))


class MMoE(MultiTaskModel):
    """Multi-gate mixture of experts (Ma et al., KDD 2018): ``n_experts`` (4) expert MLPs ``expert`` (128, 64), a
    softmax gate per task (linear on the embedded input), towers ``tower`` (32) → 1 logit per task."""

    def __init__(self, n_tasks: int = 2, *, vocab_sizes: Sequence[int] = (), n_dense: int = 0,
                 embed_dim: int = 16, n_experts: int = 4, expert: Sequence[int] = (128, 64),
                 tower: Sequence[int] = (32,), batch_norm: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_tasks = check_positive_int("n_tasks", n_tasks)
        check_positive_int("n_experts", n_experts)
        self.embedding = FeatureEmbedding(vocab_sizes, n_dense, embed_dim)
        d_in = self.embedding.out_features
        self.experts = nn.ModuleList(mlp(d_in, expert, batch_norm=batch_norm, dropout=dropout)
                                     for _ in range(n_experts))
        self.gates = nn.ModuleList(nn.Linear(d_in, n_experts) for _ in range(n_tasks))
        self.towers = _towers(n_tasks, expert[-1], tower, batch_norm, dropout)
        self.expert_dim = expert[-1]

    def _shared_modules(self) -> list[nn.Module]:
        return [self.embedding, self.experts]

    def _task_modules(self, task: int) -> list[nn.Module]:
        return [self.gates[task], self.towers[task]]

    def encode(self, x: RecInput, /) -> Tensor:
        """``concat(expert outputs (N, E·D), embedded input (N, d_in))``."""
        e = self.embedding(x)
        return torch.cat([*(ex(e) for ex in self.experts), e], dim=1)

    def decode(self, z: Tensor, /) -> list[Tensor]:
        """Per-task logits ``(N,)`` from :meth:`encode`'s output."""
        n_e = len(self.experts)
        experts = z[:, : n_e * self.expert_dim].reshape(z.shape[0], n_e, self.expert_dim)
        e = z[:, n_e * self.expert_dim:]
        return [tower(_mix(experts, gate(e))).squeeze(-1) for gate, tower in zip(self.gates, self.towers)]

    def forward(self, x: RecInput, /) -> list[Tensor]:
        return self.decode(self.encode(x))


class _ExtractionLevel(nn.Module):
    """One PLE level: ``n_shared`` shared experts, ``n_specific`` experts per task, a gate per task and (non-final
    levels) a shared gate over all experts."""

    def __init__(self, d_in: int, n_tasks: int, n_shared: int, n_specific: int, expert: Sequence[int],
                 final: bool, batch_norm: bool, dropout: float) -> None:
        super().__init__()

        def experts(n: int) -> nn.ModuleList:
            return nn.ModuleList(mlp(d_in, expert, batch_norm=batch_norm, dropout=dropout) for _ in range(n))

        self.shared_experts = experts(n_shared)
        self.task_experts = nn.ModuleList(experts(n_specific) for _ in range(n_tasks))
        self.task_gates = nn.ModuleList(nn.Linear(d_in, n_specific + n_shared) for _ in range(n_tasks))
        self.shared_gate = None if final else nn.Linear(d_in, n_tasks * n_specific + n_shared)

    def forward(self, task_inputs: list[Tensor], shared_input: Tensor) -> tuple[list[Tensor], Tensor | None]:
        shared = [ex(shared_input) for ex in self.shared_experts]
        specific = [[ex(h) for ex in exs] for exs, h in zip(self.task_experts, task_inputs)]
        outs = [_mix(torch.stack(sp + shared, dim=1), gate(h))
                for sp, gate, h in zip(specific, self.task_gates, task_inputs)]
        if self.shared_gate is None:
            return outs, None
        every = torch.stack([e for sp in specific for e in sp] + shared, dim=1)
        return outs, _mix(every, self.shared_gate(shared_input))


class PLE(MultiTaskModel):
    """Progressive layered extraction (Tang et al., RecSys 2020): ``n_levels`` (2) extraction levels, each with
    ``n_shared`` (2) shared and ``n_specific`` (2) task-specific experts ``expert`` (64,), per-task gates, a shared
    gate on non-final levels; towers ``tower`` (32) → 1 logit per task. No representation mode (module doc)."""

    def __init__(self, n_tasks: int = 2, *, vocab_sizes: Sequence[int] = (), n_dense: int = 0,
                 embed_dim: int = 16, n_levels: int = 2, n_shared: int = 2, n_specific: int = 2,
                 expert: Sequence[int] = (64,), tower: Sequence[int] = (32,), batch_norm: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.n_tasks = check_positive_int("n_tasks", n_tasks)
        for name, v in (("n_levels", n_levels), ("n_shared", n_shared), ("n_specific", n_specific)):
            check_positive_int(name, v)
        self.embedding = FeatureEmbedding(vocab_sizes, n_dense, embed_dim)
        dims = [self.embedding.out_features] + [expert[-1]] * (n_levels - 1)
        self.levels = nn.ModuleList(
            _ExtractionLevel(d, n_tasks, n_shared, n_specific, expert, i == n_levels - 1, batch_norm, dropout)
            for i, d in enumerate(dims))
        self.towers = _towers(n_tasks, expert[-1], tower, batch_norm, dropout)

    def _shared_modules(self) -> list[nn.Module]:
        mods: list[nn.Module] = [self.embedding]
        last = len(self.levels) - 1
        for i, lvl in enumerate(self.levels):
            mods.append(lvl.shared_experts)
            if i < last:  # task experts feed this level's shared gate
                mods += [lvl.shared_gate, lvl.task_experts]
            if i < last - 1:  # task gates feed next level's task experts, which feed its shared gate
                mods.append(lvl.task_gates)
        return mods

    def _task_modules(self, task: int) -> list[nn.Module]:
        last = len(self.levels) - 1
        gates = [lvl.task_gates[task] for lvl in self.levels[max(last - 1, 0):]]
        return [*gates, self.levels[-1].task_experts[task], self.towers[task]]

    def forward(self, x: RecInput, /) -> list[Tensor]:
        e = self.embedding(x)
        task_h, shared_h = [e] * self.n_tasks, e
        for lvl in self.levels:
            task_h, shared_h = lvl(task_h, shared_h)
        return [tower(h).squeeze(-1) for tower, h in zip(self.towers, task_h)]
