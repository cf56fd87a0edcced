"""Shared theory checks: the Pareto tools every paper's checks rely on (paper ``"core"``).

Each check builds its inputs from a fixed seed, in float64, and compares two independent routes
(cvxpy against a closed form) or tests a property with a known answer.
"""

from __future__ import annotations

import numpy as np

from theory.pareto import (
    dominated_by_front,
    least_squares_front,
    min_norm_certificate,
    non_dominated,
    quadratic_front,
)
from theory.registry import CheckOutcome, check

_SEED = 20240601


def _random_pd(rng: np.random.Generator, d: int, floor: float = 0.3) -> np.ndarray:
    M = rng.normal(size=(d, d))
    return M @ M.T / d + floor * np.eye(d)


def _quadratic_problem(K: int = 3, d: int = 4) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(_SEED)
    return [_random_pd(rng, d) for _ in range(K)], rng.normal(size=(K, d))


@check(paper="core", claim="Pareto stationarity: min_{w∈Δ} ‖Jᵀw‖² = 0 iff 0 ∈ conv{∇L_j}")
def min_norm_zero_at_stationary_point() -> CheckOutcome:
    """At a point where w* = (0.2, 0.3, 0.5) combines the gradients to 0, the certificate is ~0 and
    its weights reproduce w*; for gradients sharing a descent direction it is clearly positive."""
    rng = np.random.default_rng(_SEED)
    g1, g2 = rng.normal(size=(2, 6))
    w_star = np.array([0.2, 0.3, 0.5])
    J0 = np.stack([g1, g2, -(w_star[0] * g1 + w_star[1] * g2) / w_star[2]])
    v0, w0 = min_norm_certificate(J0, method="cvxpy")
    u = rng.normal(size=6)
    J1 = u + 0.3 * rng.normal(size=(3, 6))  # every gradient close to u: a common descent direction
    v1, _ = min_norm_certificate(J1, method="cvxpy")
    holds = v0 < 1e-9 and np.allclose(w0, w_star, atol=1e-4) and v1 > 0.1 * float(u @ u)
    return CheckOutcome(
        holds,
        f"stationary: {v0:.1e} (w {np.round(w0, 4).tolist()}); non-stationary: {v1:.3g}",
        {"stationary_value": v0, "stationary_weights": w0.tolist(), "non_stationary_value": v1},
    )


@check(paper="core", claim="Two-task min-norm closed form equals the QP (MGDA, K = 2)")
def min_norm_two_task_closed_form() -> CheckOutcome:
    """Closed form vs cvxpy on 30 seeded 2×P Jacobians (P from 1 to 50, scales 1e-3 to 1e3)."""
    rng = np.random.default_rng(_SEED)
    gaps = []
    for i in range(30):
        P = int(rng.integers(1, 51))
        J = rng.normal(size=(2, P)) * 10.0 ** rng.uniform(-3, 3)
        if i % 5 == 0:
            J[1] = J[0] * rng.uniform(-2, 2)  # collinear, incl. opposite directions
        vc, _ = min_norm_certificate(J, method="closed_form")
        vq, _ = min_norm_certificate(J, method="cvxpy")
        gaps.append(abs(vc - vq) / max(1.0, float((J**2).sum())))
    worst = max(gaps)
    # The closed form is exact, so it must never be worse than the solver by more than the tolerance.
    return CheckOutcome(worst < 1e-7, f"max relative gap {worst:.1e} over 30 Jacobians", {"gaps": gaps})


@check(paper="core", claim="Linear scalarization of convex quadratics traces their exact Pareto front")
def quadratic_front_matches_closed_form() -> CheckOutcome:
    """cvxpy sweep vs the closed form θ*(w) = (Σ w_j Q_j)⁻¹ Σ w_j Q_j c_j (K = 3, d = 4, 28 weights);
    the traced points are mutually non-dominated and Pareto stationary (certificate ~0)."""
    Qs, cs = _quadratic_problem()
    f_cvx = quadratic_front(Qs, cs, n_points=7)
    f_cf = quadratic_front(Qs, cs, n_points=7, method="closed_form")
    gap = float(np.abs(f_cvx.losses - f_cf.losses).max())
    nd = bool(non_dominated(f_cvx.losses, tol=1e-9).all())
    certs = [min_norm_certificate(np.stack([Q @ (t - c) for Q, c in zip(Qs, cs)]))[0] for t in f_cf.params]
    holds = gap < 1e-6 and nd and max(certs) < 1e-8
    return CheckOutcome(
        holds,
        f"max loss gap {gap:.1e}; non-dominated: {nd}; max certificate {max(certs):.1e}",
        {"loss_gap": gap, "non_dominated": nd, "max_certificate": max(certs), "n_points": len(certs)},
    )


@check(paper="core", claim="Least-squares tasks: scalarized normal equations give the Pareto front")
def least_squares_front_matches_closed_form() -> CheckOutcome:
    """cvxpy sweep vs normal equations for 2 least-squares tasks (d = 3); a point off the front is
    dominated by it."""
    rng = np.random.default_rng(_SEED + 1)
    As = [rng.normal(size=(8, 3)) for _ in range(2)]
    bs = [rng.normal(size=8) for _ in range(2)]
    f_cvx = least_squares_front(As, bs, n_points=11)
    f_cf = least_squares_front(As, bs, n_points=11, method="closed_form")
    gap = float(np.abs(f_cvx.losses - f_cf.losses).max())
    off = f_cf.params[5] + 1.0  # move away from the Pareto set
    off_losses = np.array([[float(np.sum((A @ off - b) ** 2)) for A, b in zip(As, bs)]])
    dominated = bool(dominated_by_front(off_losses, f_cf.losses)[0])
    return CheckOutcome(gap < 1e-6 and dominated, f"max loss gap {gap:.1e}; off-front point dominated: {dominated}",
                        {"loss_gap": gap, "off_front_dominated": dominated})
