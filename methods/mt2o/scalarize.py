r"""Scalarisations of a population's loss matrix: ``(L[K, m], W[K, m]) -> g[K]``.

Row k of ``W`` is subproblem k's weight vector on the simplex (a larger ``w_i`` favours task i,
``specs/conventions.md`` §6). Each callable is differentiable in ``L`` so that
``backward(g.sum())`` gives every model the gradient of its own subproblem
(model k's parameters appear only in row k of ``L``).

- :class:`Linear`: :math:`g_k = \sum_i w_{ki} L_{ki}`.
- :class:`Tchebycheff`: :math:`g_k = \max_i w_{ki}(L_{ki} - z_i)` (sub-gradient of the arg-max term).
- :class:`SmoothTchebycheff` (Lin et al., arXiv 2402.19078, eq. 8):
  :math:`g_k = \mu \log \sum_i \exp(w_{ki}(L_{ki} - z_i)/\mu)`, defaults μ = 0.05, z = 0
  (``specs/mt2o.md`` §1.1 [decision]).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["Linear", "Scalarization", "SmoothTchebycheff", "Tchebycheff", "make_scalarization"]


def _check_lw(losses: Tensor, weights: Tensor) -> None:
    if losses.ndim != 2 or weights.shape != losses.shape:
        raise ValueError(f"Parameters `losses` and `weights` should both be (K, m). Found shapes "
                         f"{tuple(losses.shape)} and {tuple(weights.shape)}.")


class Scalarization:
    """Base: ``__call__(losses[K, m], weights[K, m]) -> g[K]``."""

    name = "base"

    def __call__(self, losses: Tensor, weights: Tensor, /) -> Tensor:
        _check_lw(losses, weights)
        return self.forward(losses, weights.to(losses))

    def forward(self, losses: Tensor, weights: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Scalarization):
    r""":math:`g_k = \sum_i w_{ki} L_{ki}`: smooth; blind to concave parts of a front."""

    name = "linear"

    def forward(self, losses: Tensor, weights: Tensor) -> Tensor:
        return (weights * losses).sum(dim=1)


def _ideal(ideal: float | Sequence[float]) -> Tensor:
    z = torch.as_tensor(ideal, dtype=torch.float64)
    if z.ndim > 1 or not bool(torch.isfinite(z).all()):
        raise ValueError(f"Parameter `ideal` should be a finite scalar or vector. Found `ideal = {ideal!r}`.")
    return z


class Tchebycheff(Scalarization):
    r""":math:`g_k = \max_i w_{ki}(L_{ki} - z_i)` with ideal point ``z`` (default 0)."""

    name = "tcheby"

    def __init__(self, ideal: float | Sequence[float] = 0.0) -> None:
        self.ideal = _ideal(ideal)

    def forward(self, losses: Tensor, weights: Tensor) -> Tensor:
        return (weights * (losses - self.ideal.to(losses))).amax(dim=1)

    def __repr__(self) -> str:
        return f"Tchebycheff(ideal={self.ideal.tolist()})"


class SmoothTchebycheff(Scalarization):
    r""":math:`g_k = \mu\log\sum_i\exp(w_{ki}(L_{ki}-z_i)/\mu)`; its gradient is
    :math:`\sum_i \mathrm{softmax}_i(w_k\odot(L_k-z)/\mu)\,w_{ki}\nabla L_{ki}` (arXiv 2402.19078)."""

    name = "stch"

    def __init__(self, mu: float = 0.05, ideal: float | Sequence[float] = 0.0) -> None:
        if not (isinstance(mu, (int, float)) and mu > 0):
            raise ValueError(f"Parameter `mu` should be positive. Found `mu = {mu!r}`.")
        self.mu = float(mu)
        self.ideal = _ideal(ideal)

    def forward(self, losses: Tensor, weights: Tensor) -> Tensor:
        return self.mu * torch.logsumexp(weights * (losses - self.ideal.to(losses)) / self.mu, dim=1)

    def __repr__(self) -> str:
        return f"SmoothTchebycheff(mu={self.mu}, ideal={self.ideal.tolist()})"


def make_scalarization(name: str, **kwargs: float) -> Scalarization:
    """``"linear"``, ``"tcheby"`` or ``"stch"`` (for configs; the library takes objects)."""
    table = {"linear": Linear, "tcheby": Tchebycheff, "stch": SmoothTchebycheff}
    if name not in table:
        raise ValueError(f"Parameter `name` should be one of {sorted(table)}. Found `name = {name!r}`.")
    return table[name](**kwargs)  # type: ignore[arg-type]
