r"""Transfer rules: the matrix :math:`M^t\in\mathbb{R}^{K\times K}` (entries ≥ 0, unit row sums) that mixes the
population's parameter values, :math:`\theta_k \leftarrow \sum_j M_{kj}\theta_j` (``specs/mt2o.md`` §1.2).

- :class:`FixedSimilarity` [predecessor → reconstructed]. The MT2O paper (arXiv 2403.16162) confirms only
  "iterative transfer of model parameters among subproblems" exploiting their similarity; the rule is
  reconstructed from the authors' earlier multi-task gradient descent (Bai, Ong, He, Gupta, *Memetic
  Computing* 12(4), 2020), where task relatedness r = c⁺/(1+c⁺) and off-diagonal weight α·η0·r:

  .. math::
     c_{kj} = \cos(w^k, w^j)^+,\quad s_{kj} = \frac{c_{kj}}{1+c_{kj}}\ (s_{kk}=0),\quad
     M = I + \alpha\,\eta_c\,(S - \mathrm{diag}(S\mathbf 1)).

  Validity requires :math:`\alpha\eta_c\max_k\sum_j s_{kj}\le 1` (else ``ValueError``). Coupling LR
  :math:`\eta_c`: ``"frozen"`` = η0 (default, as the predecessor), ``"current"`` = η_t, ``"anneal"`` = frozen with α
  decayed linearly to 0 over the last ``anneal_fraction`` of training [decision]. Optional neighbourhood T:
  keep s_kj if j is among k's T most similar or k among j's (S stays symmetric) [decision].
  Applied at every optimiser step, to the parameter values *after* the gradient was taken at the un-mixed point.
- :class:`Elitist` [reconstructed; the rule Theorem C of ``theory/mt2o.py`` covers]: with the population's loss
  matrix L̂ (K × m), :math:`G_{kj} = s(\hat L_j; w^k)`, :math:`j^* = \arg\min_j G_{kj}`; if
  :math:`G_{kj^*} < G_{kk}` row k is :math:`(1-\beta)e_k + \beta e_{j^*}`, else :math:`e_k`. Default β = 1, once
  per epoch, on validation losses, between optimiser steps [decision].
- :class:`Identity`: M = I (K independent scalarised runs; with linear scalarisation this *is* LS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import torch
from torch import Tensor

from .scalarize import Scalarization

__all__ = [
    "Elitist",
    "FixedSimilarity",
    "Identity",
    "TransferRule",
    "apply_transfer",
    "check_transfer_matrix",
    "similarity_matrix",
]


def check_transfer_matrix(m: Tensor, atol: float = 1e-6) -> Tensor:
    """Return ``m`` if it is square with entries ≥ −atol and unit row sums (atol); ``ValueError`` otherwise."""
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"Transfer matrix should be square (K, K). Found shape {tuple(m.shape)}.")
    if not bool(torch.isfinite(m).all()) or bool((m < -atol).any()):
        raise ValueError(f"Transfer matrix should have finite entries ≥ 0. Found min {float(m.min()):.3g}.")
    err = float((m.sum(dim=1) - 1).abs().max())
    if err > atol:
        raise ValueError(f"Transfer matrix rows should sum to 1 (atol {atol}). Found max deviation {err:.3g}.")
    return m


def similarity_matrix(weights: Tensor, neighbours: int | None = None) -> Tensor:
    r"""S with :math:`s_{kj} = c^+_{kj}/(1+c^+_{kj})`, :math:`c_{kj}=\cos(w^k,w^j)`, zero diagonal, optionally
    restricted to a symmetric T-nearest neighbourhood (``neighbours = T``; ``None`` = dense, T = K − 1).

    ``circle`` K = 5 gives 0.4802 / 0.4142 / 0.2768 / 0 for 1–4 grid steps (``specs/mt2o.md`` §1.2).
    """
    if weights.ndim != 2 or weights.shape[0] < 1:
        raise ValueError(f"Parameter `weights` should be (K, m). Found shape {tuple(weights.shape)}.")
    k = weights.shape[0]
    unit = weights / weights.norm(dim=1, keepdim=True)
    c = (unit @ unit.T).clamp_min(0.0)
    s = c / (1 + c)
    s.fill_diagonal_(0.0)
    if neighbours is not None:
        if isinstance(neighbours, bool) or not isinstance(neighbours, int) or not 1 <= neighbours <= max(k - 1, 1):
            raise ValueError(f"Parameter `neighbours` should be an integer in [1, K − 1 = {k - 1}]. "
                             f"Found `neighbours = {neighbours!r}`.")
        ranked = s.clone()
        ranked.fill_diagonal_(-1.0)
        idx = ranked.argsort(dim=1, descending=True, stable=True)[:, :neighbours]
        keep = torch.zeros_like(s, dtype=torch.bool)
        keep.scatter_(1, idx, True)
        keep = keep | keep.T
        s = torch.where(keep, s, torch.zeros_like(s))
    return s


class TransferRule:
    """Protocol: ``timing`` (``"step"``: inside every optimiser step, after the backward; ``"epoch"``: between
    steps, after each epoch's evaluation), ``due(step, epoch)`` and ``matrix(...) -> M[K, K]``."""

    timing: Literal["step", "epoch"] = "step"
    #: which losses ``matrix`` needs: ``None`` (none), ``"batch"`` or ``"val"``.
    source: str | None = None

    def due(self, step: int, epoch: int) -> bool:
        return True

    def matrix(self, weights: Tensor, losses: Tensor | None = None, *, lr: float = 0.0, lr0: float | None = None,
               progress: float = 0.0, scalarization: Scalarization | None = None) -> Tensor:
        raise NotImplementedError

    @property
    def is_identity(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(TransferRule):
    """M = I: no transfer."""

    def due(self, step: int, epoch: int) -> bool:
        return False

    def matrix(self, weights: Tensor, losses: Tensor | None = None, *, lr: float = 0.0, lr0: float | None = None,
               progress: float = 0.0, scalarization: Scalarization | None = None) -> Tensor:
        return torch.eye(weights.shape[0], dtype=weights.dtype, device=weights.device)

    @property
    def is_identity(self) -> bool:
        return True


class FixedSimilarity(TransferRule):
    r"""``M = I + α·η_c·(S − diag(S𝟙))`` at every step (see the module docstring for the formula and sources).

    :param alpha: transfer strength α ≥ 0 (default 1, the predecessor's ``alpha_wt``).
    :param coupling: ``"frozen"`` (η_c = η0, default), ``"current"`` (η_c = η_t) or ``"anneal"``.
    :param neighbours: T for the symmetric T-nearest neighbourhood; ``None`` = dense.
    :param anneal_fraction: final share of training over which ``"anneal"`` decays α linearly to 0 (0.2).
    """

    timing = "step"

    def __init__(self, alpha: float = 1.0, coupling: Literal["frozen", "current", "anneal"] = "frozen",
                 neighbours: int | None = None, anneal_fraction: float = 0.2) -> None:
        if not (isinstance(alpha, (int, float)) and alpha >= 0):
            raise ValueError(f"Parameter `alpha` should be a non-negative number. Found `alpha = {alpha!r}`.")
        if coupling not in ("frozen", "current", "anneal"):
            raise ValueError(f"Parameter `coupling` should be 'frozen', 'current' or 'anneal'. "
                             f"Found `coupling = {coupling!r}`.")
        if not 0.0 < anneal_fraction <= 1.0:
            raise ValueError(f"Parameter `anneal_fraction` should be in (0, 1]. Found {anneal_fraction!r}.")
        self.alpha = float(alpha)
        self.coupling = coupling
        self.neighbours = neighbours
        self.anneal_fraction = float(anneal_fraction)
        self._cache: tuple[Tensor, Tensor] | None = None

    def due(self, step: int, epoch: int) -> bool:
        return self.alpha > 0

    def strength(self, lr: float, lr0: float | None, progress: float) -> float:
        """α·η_c for the current LR ``lr``, initial LR ``lr0`` and training progress in [0, 1]."""
        eta_c = lr if self.coupling == "current" else (lr if lr0 is None else lr0)
        a = self.alpha
        if self.coupling == "anneal":
            start = 1.0 - self.anneal_fraction
            if progress > start:
                a *= max(0.0, (1.0 - progress) / self.anneal_fraction)
        return a * eta_c

    def similarity(self, weights: Tensor) -> Tensor:
        if self._cache is None or self._cache[0].shape != weights.shape or not torch.equal(
                self._cache[0], weights.detach().cpu()):
            self._cache = (weights.detach().cpu().clone(), similarity_matrix(weights.detach().cpu().double(),
                                                                              self.neighbours))
        return self._cache[1].to(weights)

    def bound(self, weights: Tensor) -> float:
        """The largest valid α·η_c, 1/max_k Σ_j s_kj (``inf`` when S = 0)."""
        rs = float(self.similarity(weights).sum(dim=1).max())
        return float("inf") if rs == 0 else 1.0 / rs

    def matrix(self, weights: Tensor, losses: Tensor | None = None, *, lr: float = 0.0, lr0: float | None = None,
               progress: float = 0.0, scalarization: Scalarization | None = None) -> Tensor:
        s = self.similarity(weights)
        c = self.strength(lr, lr0, progress)
        rs = s.sum(dim=1)
        if c * float(rs.max()) > 1 + 1e-12:
            raise ValueError(f"Transfer strength α·η_c should be ≤ 1/max_k Σ_j s_kj = {self.bound(weights):.4f} "
                             f"(else M has negative entries). Found α·η_c = {c:.4g} (α = {self.alpha}, "
                             f"coupling {self.coupling!r}).")
        m = torch.eye(s.shape[0], dtype=s.dtype, device=s.device) + c * (s - torch.diag(rs))
        return check_transfer_matrix(m)

    def __repr__(self) -> str:
        return f"FixedSimilarity(alpha={self.alpha}, coupling={self.coupling!r}, neighbours={self.neighbours})"


class Elitist(TransferRule):
    """Copy (β = 1) or blend toward the population member that scores best on *my* subproblem, if strictly better.

    :param beta: blend β ∈ (0, 1] (1 = copy; averaging unaligned deep nets is unreliable, ``specs/mt2o.md`` §1.2).
    :param every: apply every ``every`` epochs (``timing="epoch"``) or steps (``source="batch"``).
    :param source: ``"val"`` (validation losses, between steps; Theorem C's setting) or ``"batch"`` (the current
        mini-batch losses, applied like the fixed rule after the gradient was taken).
    """

    def __init__(self, beta: float = 1.0, every: int = 1, source: Literal["val", "batch"] = "val") -> None:
        if not (isinstance(beta, (int, float)) and 0.0 < beta <= 1.0):
            raise ValueError(f"Parameter `beta` should be in (0, 1]. Found `beta = {beta!r}`.")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Parameter `every` should be a positive integer. Found `every = {every!r}`.")
        if source not in ("val", "batch"):
            raise ValueError(f"Parameter `source` should be 'val' or 'batch'. Found `source = {source!r}`.")
        self.beta = float(beta)
        self.every = every
        self.source = source
        self.timing = "epoch" if source == "val" else "step"  # type: ignore[assignment]

    def due(self, step: int, epoch: int) -> bool:
        return ((epoch if self.source == "val" else step) + 1) % self.every == 0

    def matrix(self, weights: Tensor, losses: Tensor | None = None, *, lr: float = 0.0, lr0: float | None = None,
               progress: float = 0.0, scalarization: Scalarization | None = None) -> Tensor:
        if losses is None or scalarization is None:
            raise ValueError("Elitist.matrix needs `losses` (K, m) and `scalarization`. Found None.")
        k = weights.shape[0]
        if losses.shape != weights.shape:
            raise ValueError(f"Parameter `losses` should be (K, m) = {tuple(weights.shape)}. "
                             f"Found {tuple(losses.shape)}.")
        lw = losses.detach().to(weights)
        # G[k, j] = s(L_j; w^k): scalarise every model's losses with every weight vector.
        g = scalarization(lw.unsqueeze(0).expand(k, k, -1).reshape(k * k, -1),
                          weights.unsqueeze(1).expand(k, k, -1).reshape(k * k, -1)).reshape(k, k)
        best = g.argmin(dim=1)
        own = g.diagonal()
        better = g.gather(1, best[:, None]).squeeze(1) < own
        m = torch.eye(k, dtype=weights.dtype, device=weights.device)
        rows = torch.nonzero(better).flatten()
        m[rows, rows] = 1.0 - self.beta
        m[rows, best[rows]] += self.beta
        self.last_scores = g
        return check_transfer_matrix(m)

    def __repr__(self) -> str:
        return f"Elitist(beta={self.beta}, every={self.every}, source={self.source!r})"


@torch.no_grad()
def apply_transfer(m: Tensor, stacked: Mapping[str, Tensor], names: Iterable[str] | Callable[[str], bool] | None = None
                   ) -> None:
    """In place: ``p ← einsum('kj,j...->k...', M, p_old)`` for every selected floating-point stacked tensor.

    Each new value is computed from a snapshot of the old tensor before it is written, so the mix uses the old
    population only. Integer tensors (e.g. BN ``num_batches_tracked``) are never touched.

    :param m: (K, K) transfer matrix.
    :param stacked: name -> tensor with leading dimension K (parameters and buffers of a :class:`Population`).
    :param names: names to mix (iterable), a name filter (callable), or ``None`` for all.
    """
    check_transfer_matrix(m)
    select: Callable[[str], bool]
    if names is None:
        select = lambda n: True  # noqa: E731
    elif callable(names):
        select = names
    else:
        chosen = set(names)
        select = chosen.__contains__
    for name, p in stacked.items():
        if not select(name) or not p.is_floating_point():
            continue
        if p.shape[0] != m.shape[0]:
            raise ValueError(f"Stacked tensor {name!r} should have leading dimension K = {m.shape[0]}. "
                             f"Found shape {tuple(p.shape)}.")
        new = torch.einsum("kj,j...->k...", m.to(p), p)
        p.copy_(new)
