r"""Phase 2 of CSO: priority-preserving projection per channel group (arXiv 2406.02996, Alg. 1 lines 5–15).

For a layer with per-task gradients :math:`G \in \mathbb{R}^{K \times C \times D}` (row t: task t's gradient on
the layer, output channel p on axis 1) and owners :math:`\nu`, channel group :math:`CG_i = \{p: \nu(p)=i\}`.
With :math:`a = G_{i}[CG_i]` (flattened, the reference, never modified) and :math:`b = G_{j}[CG_i]`, j ≠ i:

.. math:: b \leftarrow b - \frac{\min(0,\ a\cdot b)}{\|a\|^2}\, a \qquad (\text{only when } a \cdot b < 0)

and the update is the plain sum over tasks. Groups are disjoint, so the result does not depend on the order of
the tasks (I2), and :math:`\langle a, u_i\rangle = \|a\|^2 + \sum_{j\ne i}\max(0, a\cdot b_j) \ge \|a\|^2` (I1).
A reference with :math:`\|a\|^2 \le` ``tiny`` (1e-30; 1e-20 in float32, ``specs/cso.md`` §10 #15) is skipped.

``unit="channel"`` makes every channel its own group (a flag, §3 #9); ``degenerate="sum"`` returns the plain sum
when one task owns the whole layer ([official-code] behaviour and our default), ``"project"`` projects onto the
owner over the whole layer (Alg. 1 read literally). Fully vectorised: no Python loop over tasks or groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ._strength import is_degenerate

__all__ = ["ProjStats", "project_by_owner"]

Degenerate = Literal["sum", "project"]
Unit = Literal["group", "channel"]


@dataclass
class ProjStats:
    """Counts of one projection: ``conflicts[i]`` = number of tasks j ≠ i with ``a·b < 0`` on group i (for
    ``unit="channel"``, summed over i's channels); ``projections`` = total projections applied;
    ``degenerate`` = one owner for the whole layer; ``group_sizes[i]`` = |CG_i|."""

    conflicts: list[int]
    projections: int
    degenerate: bool
    group_sizes: list[int]


def _tiny(dtype: torch.dtype) -> float:
    return 1e-30 if dtype == torch.float64 else 1e-20


def project_by_owner(grads: Tensor, owner: Tensor, *, degenerate: Degenerate = "sum",
                     unit: Unit = "group") -> tuple[Tensor, ProjStats]:
    """Combine per-task layer gradients ``grads`` ``(K, C, D)`` given channel owners ``owner`` ``(C,)``.

    :returns: the combined gradient ``(C, D)`` and :class:`ProjStats`.
    """
    if grads.dim() != 3:
        raise ValueError(f"Parameter `grads` should have shape (K, C, D). Found `grads.shape = {tuple(grads.shape)}`.")
    k, c, _ = grads.shape
    if owner.shape != (c,) or owner.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"Parameter `owner` should be an integer tensor of shape ({c},). "
                         f"Found shape {tuple(owner.shape)}, dtype {owner.dtype}.")
    if degenerate not in ("sum", "project"):
        raise ValueError(f"Parameter `degenerate` should be 'sum' or 'project'. Found `degenerate = {degenerate!r}`.")
    if unit not in ("group", "channel"):
        raise ValueError(f"Parameter `unit` should be 'group' or 'channel'. Found `unit = {unit!r}`.")
    owner = owner.to(device=grads.device, dtype=torch.int64)
    if c and (int(owner.min()) < 0 or int(owner.max()) >= k):
        raise ValueError(f"Parameter `owner` should hold task indices in [0, {k}). Found range "
                         f"[{int(owner.min())}, {int(owner.max())}].")
    sizes = torch.bincount(owner, minlength=k).tolist()
    total = grads.sum(dim=0)
    degen = k > 1 and c > 0 and is_degenerate(owner)
    if k == 1 or c == 0 or (degen and degenerate == "sum"):
        return total, ProjStats([0] * k, 0, degen, sizes)
    ref = grads.gather(0, owner.view(1, c, 1).expand(1, c, grads.shape[2]))[0]      # (C, D): G_{ν(p)}[p]
    dots_c = torch.einsum("kcd,cd->kc", grads, ref)                                  # (K, C): b_j[p]·a[p]
    norms_c = ref.pow(2).sum(dim=1)                                                  # (C,)
    if unit == "group":
        dots = torch.zeros(k, k, dtype=grads.dtype, device=grads.device).index_add_(1, owner, dots_c)  # (j, i)
        norms = torch.zeros(k, dtype=grads.dtype, device=grads.device).index_add_(0, owner, norms_c)
        ok = norms > _tiny(grads.dtype)
        coef = torch.where((dots < 0) & ok.view(1, k), dots / torch.where(ok, norms, 1.0).view(1, k),
                           torch.zeros_like(dots))                                   # (j, i)
        per_channel = coef.sum(dim=0)[owner]                                         # Σ_j coef[j, ν(p)]
        conflicts = ((dots < 0) & ok.view(1, k)).sum(dim=0)
    else:
        ok = norms_c > _tiny(grads.dtype)
        neg = (dots_c < 0) & ok.view(1, c)
        coef_c = torch.where(neg, dots_c / torch.where(ok, norms_c, 1.0).view(1, c), torch.zeros_like(dots_c))
        per_channel = coef_c.sum(dim=0)
        conflicts = torch.zeros(k, dtype=torch.int64, device=grads.device).index_add_(0, owner, neg.sum(dim=0))
    combined = total - per_channel.unsqueeze(1) * ref
    counts = [int(v) for v in conflicts.tolist()]
    return combined, ProjStats(counts, sum(counts), degen, sizes)
