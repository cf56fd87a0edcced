"""Shared property checks for every combiner, and the seeded inputs they run on.

A method module's test file imports the registries and the ``check_*`` functions and parametrizes
over its own combiners; ``tests/methods/test_baselines.py`` runs them over all baselines. The inputs
follow TorchJD's matrix samplers (``SimplexLab/TorchJD:tests/unit/aggregation/_matrix_samplers.py``):
seeded normal matrices, matrices with a zero row, non-conflicting ("strong") matrices, identical
rows, and extreme scales 1e-6 .. 1e6.

Each combiner entry records which properties it claims (e.g. non-conflict for MGDA and UPGrad), so a
new method joins the library's checks by adding one :class:`Spec`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from methods import Combiner, GradientCombiner, GradientStats, LossCombiner

__all__ = [
    "Spec", "GRADIENT_SPECS", "LOSS_SPECS", "ALL_SPECS", "FAMILIES", "SCALES",
    "make_matrix", "make_losses", "stats_of", "update_of",
    "check_output", "check_permutation_equivariance", "check_non_conflict", "check_scale_invariance",
    "check_identical_rows", "check_reset", "check_state_dict_roundtrip", "check_loss_output",
]


@dataclass(frozen=True)
class Spec:
    """How to build a combiner for K tasks and which properties it claims."""

    name: str
    build: Callable[[int], Combiner]
    deterministic: bool = True  # same input, same output (fresh instance); PCGrad with K > 2 is random
    non_conflict: bool = False  # <g_i, d> >= 0 for every task i
    scale_invariant_weights: bool = False  # w(cJ) == w(J) for c > 0
    equal_weights_on_identical_rows: bool = False  # identical rows -> all weights equal
    stateful: bool = False
    tol: float = 1e-5  # relative tolerance of this method's solver
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return self.name


def _b():
    import methods.baselines as b

    return b


GRADIENT_SPECS: list[Spec] = [
    Spec("MGDA", lambda k: _b().MGDA(epsilon=1e-6, max_iters=2000), non_conflict=True, scale_invariant_weights=True, tol=1e-3),
    Spec("PCGrad", lambda k: _b().PCGrad(), deterministic=False, scale_invariant_weights=True,
         equal_weights_on_identical_rows=True),
    Spec("CAGrad", lambda k: _b().CAGrad(), scale_invariant_weights=True, equal_weights_on_identical_rows=True, tol=1e-3),
    Spec("IMTLG", lambda k: _b().IMTLG(), scale_invariant_weights=False, equal_weights_on_identical_rows=True, tol=1e-4),
    Spec("NashMTL", lambda k: _b().NashMTL(k, max_norm=0.0), stateful=True, tol=2e-2),
    Spec("AlignedMTL", lambda k: _b().AlignedMTL(), scale_invariant_weights=True, equal_weights_on_identical_rows=True, tol=1e-4),
    Spec("UPGrad", lambda k: _b().UPGrad(), non_conflict=True, scale_invariant_weights=True,
         equal_weights_on_identical_rows=True, tol=1e-3),
    Spec("GradNorm", lambda k: _b().GradNorm(), scale_invariant_weights=True, equal_weights_on_identical_rows=True,
         stateful=True),
]

LOSS_SPECS: list[Spec] = [
    Spec("EqualWeighting", lambda k: _b().EqualWeighting()),
    Spec("LinearScalarization", lambda k: _b().LinearScalarization([1.0 + i for i in range(k)])),
    Spec("Tchebycheff", lambda k: _b().Tchebycheff()),
    Spec("SmoothTchebycheff", lambda k: _b().SmoothTchebycheff(mu=0.5)),
    Spec("UncertaintyWeighting", lambda k: _b().UncertaintyWeighting(k), stateful=True),
    Spec("DWA", lambda k: _b().DWA(history="step"), stateful=True),
    Spec("FAMO", lambda k: _b().FAMO(k), stateful=True),
]

ALL_SPECS = GRADIENT_SPECS + LOSS_SPECS

FAMILIES = ["normal", "zero_row", "strong", "identical"]
SCALES = [1e-6, 1.0, 1e6]


def make_matrix(family: str, k: int, p: int = 7, *, dtype: torch.dtype = torch.float64, seed: int = 0,
                scale: float = 1.0) -> Tensor:
    """A seeded ``(k, p)`` Jacobian of the given family, times ``scale``."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(k, p, generator=g, dtype=torch.float64)
    if family == "normal":
        m = a
    elif family == "zero_row":
        m = a.clone()
        m[k // 2] = 0.0
    elif family == "strong":  # every pair of rows has a positive inner product: a common direction
        m = a * 0.3 + torch.randn(1, p, generator=g, dtype=torch.float64) * 3.0
    elif family == "identical":
        m = a[:1].expand(k, p).clone()
    else:
        raise ValueError(family)
    return (m * scale).to(dtype)


def make_losses(k: int, *, dtype: torch.dtype = torch.float64, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(1000 + seed)
    return (torch.rand(k, generator=g, dtype=torch.float64) + 0.5).to(dtype)


def stats_of(jac: Tensor, losses: Tensor | None = None) -> GradientStats:
    if losses is None:
        losses = make_losses(jac.shape[0], dtype=jac.dtype)
    return GradientStats(jac, losses.to(jac.dtype))


def update_of(comb: GradientCombiner, stats: GradientStats) -> tuple[Tensor, Tensor]:
    w = comb.weights(stats)
    return w, stats.jacobian.T @ w.to(stats.jacobian.dtype)


def _close(a: Tensor, b: Tensor, tol: float) -> bool:
    a, b = a.double(), b.double()
    return bool(torch.allclose(a, b, rtol=tol, atol=tol * max(1.0, float(b.abs().max()))))


# ---- gradient-level checks -------------------------------------------------------------------


def check_output(spec: Spec, jac: Tensor) -> None:
    """Weights are finite with shape (K,) and the dtype of J; the update is finite."""
    comb = spec.build(jac.shape[0])
    w, d = update_of(comb, stats_of(jac))
    assert w.shape == (jac.shape[0],), (spec, w.shape)
    assert w.dtype == jac.dtype, (spec, w.dtype)
    assert bool(torch.isfinite(w).all()), (spec, w)
    assert bool(torch.isfinite(d).all()), (spec, d)
    assert isinstance(comb.last_info, dict) and "weights" in comb.last_info


def check_permutation_equivariance(spec: Spec, jac: Tensor, perm: list[int]) -> None:
    """w(PJ) = P w(J) for a fresh instance each time."""
    losses = make_losses(jac.shape[0], dtype=jac.dtype)
    w = spec.build(jac.shape[0]).weights(stats_of(jac, losses))
    wp = spec.build(jac.shape[0]).weights(stats_of(jac[perm], losses[perm]))
    assert _close(wp, w[perm], max(spec.tol, 1e-6)), (spec, wp, w[perm])


def check_non_conflict(spec: Spec, jac: Tensor) -> None:
    """<g_i, d> >= 0 for every task (up to the solver's tolerance)."""
    _, d = update_of(spec.build(jac.shape[0]), stats_of(jac))
    inner = (jac.double() @ d.double())
    scale = float(jac.double().norm(dim=1).max() * d.double().norm()) + 1e-300
    assert bool((inner >= -spec.tol * scale).all()), (spec, inner)


def check_scale_invariance(spec: Spec, jac: Tensor, c: float) -> None:
    """w(cJ) = w(J): the update scales linearly with a uniform rescaling of the gradients."""
    losses = make_losses(jac.shape[0], dtype=jac.dtype)
    w = spec.build(jac.shape[0]).weights(stats_of(jac, losses))
    wc = spec.build(jac.shape[0]).weights(stats_of(jac * c, losses))
    assert _close(wc, w, spec.tol), (spec, c, wc, w)


def check_identical_rows(spec: Spec, jac: Tensor) -> None:
    """All task gradients equal g: the update is a non-negative multiple of g (equal weights where claimed)."""
    w, d = update_of(spec.build(jac.shape[0]), stats_of(jac))
    g = jac[0].double()
    cos = float(d.double() @ g / (d.double().norm() * g.norm() + 1e-300))
    assert cos > 1 - 1e-4 or float(d.norm()) == 0.0, (spec, cos)
    if spec.equal_weights_on_identical_rows:
        assert _close(w, torch.full_like(w, float(w.mean())), max(spec.tol, 1e-6)), (spec, w)


def _run(comb: Combiner, jacs: list[Tensor]) -> list[Tensor]:
    out = []
    for j in jacs:
        if isinstance(comb, GradientCombiner):
            out.append(comb.weights(stats_of(j)).clone())
        else:
            losses = make_losses(j.shape[0], dtype=j.dtype).requires_grad_(True)
            val = comb(losses)
            out.append(torch.autograd.grad(val, losses)[0])
            comb.after_step(lambda: losses.detach() * 0.9)
    return out


def check_reset(spec: Spec, jacs: list[Tensor]) -> None:
    """After some steps, reset() gives the behaviour of a fresh instance."""
    comb = spec.build(jacs[0].shape[0])
    _run(comb, jacs)
    comb.reset()
    again = _run(comb, jacs)
    fresh = _run(spec.build(jacs[0].shape[0]), jacs)
    for a, b in zip(again, fresh):
        assert _close(a, b, max(spec.tol, 1e-6)), (spec, a, b)


def check_state_dict_roundtrip(spec: Spec, jacs: list[Tensor]) -> None:
    """A fresh instance loading the state_dict continues exactly as the original."""
    comb = spec.build(jacs[0].shape[0])
    half = len(jacs) // 2
    _run(comb, jacs[:half])
    state = copy.deepcopy(comb.state_dict())
    other = spec.build(jacs[0].shape[0])
    other.load_state_dict(state)
    a = _run(comb, jacs[half:])
    b = _run(other, jacs[half:])
    for x, y in zip(a, b):
        assert _close(x, y, max(spec.tol, 1e-6)), (spec, x, y)


# ---- loss-level checks -------------------------------------------------------------------------


def check_loss_output(spec: Spec, k: int, dtype: torch.dtype, scale: float = 1.0) -> None:
    """A finite scalar whose gradient w.r.t. the losses is finite; JSON-able weights in last_info."""
    comb = spec.build(k)
    assert isinstance(comb, LossCombiner)
    losses = (make_losses(k, dtype=dtype) * scale).requires_grad_(True)
    val = comb(losses)
    assert val.dim() == 0 and bool(torch.isfinite(val)), (spec, val)
    (grad,) = torch.autograd.grad(val, losses)
    assert bool(torch.isfinite(grad).all()), (spec, grad)
    assert len(comb.last_info["weights"]) == k
