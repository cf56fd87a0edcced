r"""Shared Pareto tools for the theory checks (numpy + cvxpy, float64).

- :func:`min_norm_certificate`: :math:`\min_{w\in\Delta_K}\|J^\top w\|^2` (Désidéri's MGDA problem).
  A value of ~0 certifies Pareto stationarity of the point whose task-gradient matrix is ``J``
  (some convex combination of the task gradients vanishes); a positive value gives a common descent
  direction :math:`-J^\top w`. Solved with cvxpy (Clarabel); for K = 2 the closed form
  :func:`min_norm_two_tasks` is the fast path, tested against the QP.
- :func:`quadratic_front` / :func:`least_squares_front`: the exact Pareto front of convex quadratic
  tasks :math:`L_j(\theta)=\tfrac12(\theta-c_j)^\top Q_j(\theta-c_j)+r_j` or least-squares tasks
  :math:`L_j(\theta)=\|A_j\theta-b_j\|^2`, traced by linear-scalarization sweeps (for convex tasks
  every Pareto optimum with a positive-definite scalarized Hessian is reached this way), solved with
  cvxpy or in closed form :math:`\theta^*(w)=(\sum_j w_jQ_j)^{-1}\sum_j w_jQ_jc_j`.
- :func:`non_dominated`, :func:`dominated_by_front`, :func:`distance_to_front`: dominance tools for
  minimized objectives.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ParetoFront",
    "distance_to_front",
    "dominated_by_front",
    "least_squares_front",
    "min_norm_certificate",
    "min_norm_two_tasks",
    "non_dominated",
    "quadratic_front",
    "quadratic_losses",
    "scalarization_weights",
]


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"Parameter `{name}` should be a non-empty 2-D array. Found shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Parameter `{name}` should be finite. Found non-finite entries.")
    return arr


def _solve(problem: object, solver: str) -> None:
    import cvxpy as cp

    problem.solve(solver=solver)  # type: ignore[attr-defined]
    status = problem.status  # type: ignore[attr-defined]
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise RuntimeError(f"cvxpy ({solver}) returned status {status!r}.")


def _sweep(problem: object, weights_param: object, theta: object, W: np.ndarray, solver: str) -> np.ndarray:
    """Solve the parametrised scalarization once per row of ``W``; the minimizers stacked as ``(n, d)``."""
    thetas = np.empty((W.shape[0], theta.shape[0]))  # type: ignore[attr-defined]
    for i, w in enumerate(W):
        weights_param.value = w  # type: ignore[attr-defined]
        _solve(problem, solver)
        thetas[i] = theta.value  # type: ignore[attr-defined]
    return thetas


# ------------------------------------------------------------------------------ min-norm certificate
def min_norm_two_tasks(jacobian: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Closed form of :math:`\min_{w\in\Delta_2}\|w_1g_1+w_2g_2\|^2` for a 2×P ``jacobian``.

    :math:`w_1=\mathrm{clip}\big((g_2-g_1)^\top g_2/\|g_1-g_2\|^2,0,1\big)`, :math:`w_1=\tfrac12` if
    :math:`g_1=g_2`.

    :returns: ``(value, weights)``.
    """
    J = _as_matrix(jacobian, "jacobian")
    if J.shape[0] != 2:
        raise ValueError(f"Parameter `jacobian` should have 2 rows (tasks). Found shape {J.shape}.")
    g1, g2 = J
    diff = g1 - g2
    denom = float(diff @ diff)
    w1 = 0.5 if denom == 0.0 else float(np.clip((g2 - g1) @ g2 / denom, 0.0, 1.0))
    w = np.array([w1, 1.0 - w1])
    d = J.T @ w
    return float(d @ d), w


def min_norm_certificate(
    jacobian: np.ndarray, *, method: str = "auto", solver: str = "CLARABEL"
) -> tuple[float, np.ndarray]:
    r"""Pareto-stationarity certificate :math:`\min_{w\in\Delta_K}\|J^\top w\|^2` and its minimizer.

    :param jacobian: K×P matrix, one task gradient per row (numpy or anything ``np.asarray`` takes).
    :param method: ``"auto"`` (closed form for K ≤ 2, cvxpy otherwise), ``"cvxpy"`` or
        ``"closed_form"`` (K = 2 only).
    :param solver: the cvxpy solver (default Clarabel).
    :returns: ``(value, weights)``; ``value`` is recomputed in float64 from the (clipped,
        renormalized) weights, so it is ≥ 0; ~0 means Pareto stationary.
    """
    J = _as_matrix(jacobian, "jacobian")
    K = J.shape[0]
    if method not in ("auto", "cvxpy", "closed_form"):
        raise ValueError(f"Parameter `method` should be 'auto', 'cvxpy' or 'closed_form'. Found `method = {method!r}`.")
    if K == 1:
        return float(J[0] @ J[0]), np.ones(1)
    if method == "closed_form" or (method == "auto" and K == 2):
        return min_norm_two_tasks(J)
    import cvxpy as cp

    scale = float(np.abs(J).max())
    if scale == 0.0:
        return 0.0, np.full(K, 1.0 / K)
    Js = J / scale  # weights are scale-invariant; solve on O(1) numbers
    w = cp.Variable(K, nonneg=True)
    if Js.shape[1] > K:  # small K×K Gramian instead of a P-dimensional residual
        G = Js @ Js.T
        G = 0.5 * (G + G.T)
        objective = cp.quad_form(w, cp.psd_wrap(G))
    else:
        objective = cp.sum_squares(Js.T @ w)
    problem = cp.Problem(cp.Minimize(objective), [cp.sum(w) == 1])
    _solve(problem, solver)
    weights = np.clip(np.asarray(w.value, dtype=np.float64), 0.0, None)
    weights = _polish(Js @ Js.T, weights / weights.sum())
    d = J.T @ weights
    return float(d @ d), weights


def _polish(G: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Refine an interior-point solution exactly (active-set step): for supports S = {i: w_i > t·max w}
    at a few thresholds t, solve the KKT system of min wᵀGw s.t. 1ᵀw = 1 on S; return the best
    feasible candidate (``w`` itself if none is better)."""
    best, best_val = w, float(w @ G @ w)
    for t in (1e-9, 1e-6, 1e-4, 1e-2):
        S = np.flatnonzero(w > t * w.max())
        k = S.size
        kkt = np.zeros((k + 1, k + 1))
        kkt[:k, :k] = G[np.ix_(S, S)]
        kkt[:k, k] = kkt[k, :k] = 1.0
        rhs = np.zeros(k + 1)
        rhs[k] = 1.0
        sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:k]
        if np.any(sol < 0) or not np.isclose(sol.sum(), 1.0):
            continue
        cand = np.zeros_like(w)
        cand[S] = sol / sol.sum()
        val = float(cand @ G @ cand)
        if val <= best_val:
            best, best_val = cand, val
    return best


# ----------------------------------------------------------------------------------------- fronts
def scalarization_weights(n_tasks: int, n_points: int) -> np.ndarray:
    """Weights on the simplex: for K = 2, ``n_points`` evenly spaced (both ends included); for K ≥ 3,
    the simplex lattice with ``n_points − 1`` divisions (Das–Dennis, C(n_points+K−2, K−1) vectors)."""
    if not isinstance(n_tasks, int) or n_tasks < 1:
        raise ValueError(f"Parameter `n_tasks` should be a positive integer. Found `n_tasks = {n_tasks!r}`.")
    if not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"Parameter `n_points` should be an integer ≥ 2. Found `n_points = {n_points!r}`.")
    if n_tasks == 1:
        return np.ones((1, 1))
    H = n_points - 1
    rows = [c for c in itertools.product(range(H + 1), repeat=n_tasks - 1) if sum(c) <= H]
    lattice = np.array([[*c, H - sum(c)] for c in rows], dtype=np.float64) / H
    return lattice


@dataclass(frozen=True)
class ParetoFront:
    """A traced front: ``weights`` (n×K) of the scalarizations, ``params`` (n×d) their minimizers,
    ``losses`` (n×K) the task losses there (the front points, minimized objectives)."""

    weights: np.ndarray
    params: np.ndarray
    losses: np.ndarray


def _check_quadratics(
    Qs: Sequence[np.ndarray], cs: Sequence[np.ndarray], offsets: Sequence[float] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Q = np.asarray(Qs, dtype=np.float64)
    c = np.asarray(cs, dtype=np.float64)
    if Q.ndim != 3 or Q.shape[1] != Q.shape[2] or Q.shape[0] == 0:
        raise ValueError(f"Parameter `Qs` should be K square d×d matrices (shape (K, d, d)). Found shape {Q.shape}.")
    if c.shape != Q.shape[:2]:
        raise ValueError(f"Parameter `cs` should have shape (K, d) = {Q.shape[:2]}. Found shape {c.shape}.")
    if not np.allclose(Q, np.swapaxes(Q, 1, 2), atol=1e-12 * max(1.0, np.abs(Q).max())):
        raise ValueError("Parameter `Qs` should hold symmetric matrices.")
    if np.linalg.eigvalsh(Q).min() < -1e-10 * max(1.0, np.abs(Q).max()):
        raise ValueError("Parameter `Qs` should hold positive semi-definite matrices (convex tasks).")
    r = np.zeros(Q.shape[0]) if offsets is None else np.asarray(offsets, dtype=np.float64)
    if r.shape != (Q.shape[0],):
        raise ValueError(f"Parameter `offsets` should have shape ({Q.shape[0]},). Found shape {r.shape}.")
    return Q, c, r


def quadratic_losses(
    thetas: np.ndarray, Qs: Sequence[np.ndarray], cs: Sequence[np.ndarray], offsets: Sequence[float] | None = None
) -> np.ndarray:
    r"""Task losses :math:`\tfrac12(\theta-c_j)^\top Q_j(\theta-c_j)+r_j` at each row of ``thetas`` (n×K)."""
    Q, c, r = _check_quadratics(Qs, cs, offsets)
    th = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
    diff = th[:, None, :] - c[None]  # n×K×d
    return 0.5 * np.einsum("nkd,kde,nke->nk", diff, Q, diff) + r


def _weights(n_tasks: int, n_points: int, weights: np.ndarray | None) -> np.ndarray:
    if weights is None:
        return scalarization_weights(n_tasks, n_points)
    W = _as_matrix(weights, "weights")
    if W.shape[1] != n_tasks or np.any(W < 0) or not np.allclose(W.sum(axis=1), 1.0):
        raise ValueError(f"Parameter `weights` should be n×{n_tasks} non-negative rows summing to 1. Found shape {W.shape}.")
    return W


def quadratic_front(
    Qs: Sequence[np.ndarray],
    cs: Sequence[np.ndarray],
    n_points: int = 21,
    *,
    offsets: Sequence[float] | None = None,
    weights: np.ndarray | None = None,
    method: str = "cvxpy",
    solver: str = "CLARABEL",
) -> ParetoFront:
    r"""Pareto front of convex quadratic tasks by linear scalarization.

    For each weight vector w, solves :math:`\min_\theta\sum_j w_jL_j(\theta)`.

    :param Qs: K positive semi-definite d×d matrices; :param cs: K centres (minimizers) of length d.
    :param n_points: sweep size (see :func:`scalarization_weights`); ignored if ``weights`` given.
    :param offsets: optional constants r_j added to the losses.
    :param weights: explicit n×K simplex weights.
    :param method: ``"cvxpy"`` or ``"closed_form"`` (``lstsq`` of the normal equations).
    :returns: :class:`ParetoFront`. With a singular Hessian at a weight vertex the minimizer is not
        unique and that end point may be only weakly Pareto optimal.
    """
    Q, c, r = _check_quadratics(Qs, cs, offsets)
    W = _weights(Q.shape[0], n_points, weights)
    if method == "closed_form":
        thetas = np.stack([_closed_form(np.einsum("k,kde->de", w, Q), np.einsum("k,kde,ke->d", w, Q, c)) for w in W])
    elif method == "cvxpy":
        import cvxpy as cp

        d = Q.shape[1]
        theta = cp.Variable(d)
        wp = cp.Parameter(Q.shape[0], nonneg=True)
        terms = [wp[j] * 0.5 * cp.quad_form(theta - c[j], cp.psd_wrap(Q[j])) for j in range(Q.shape[0])]
        problem = cp.Problem(cp.Minimize(cp.sum(terms)))
        thetas = _sweep(problem, wp, theta, W, solver)
    else:
        raise ValueError(f"Parameter `method` should be 'cvxpy' or 'closed_form'. Found `method = {method!r}`.")
    return ParetoFront(W, thetas, quadratic_losses(thetas, Q, c, r))


def _closed_form(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(H, g, rcond=None)[0]


def least_squares_front(
    As: Sequence[np.ndarray],
    bs: Sequence[np.ndarray],
    n_points: int = 21,
    *,
    weights: np.ndarray | None = None,
    method: str = "cvxpy",
    solver: str = "CLARABEL",
) -> ParetoFront:
    r"""Pareto front of least-squares tasks :math:`L_j(\theta)=\|A_j\theta-b_j\|^2` (A_j: m_j×d).

    Same sweep as :func:`quadratic_front`; ``"closed_form"`` solves
    :math:`(\sum_j w_jA_j^\top A_j)\theta=\sum_j w_jA_j^\top b_j`.
    """
    A = [_as_matrix(a, "As[j]") for a in As]
    b = [np.asarray(v, dtype=np.float64).reshape(-1) for v in bs]
    if not A or len(A) != len(b):
        raise ValueError(f"`As` and `bs` should be non-empty and of equal length. Found {len(A)} and {len(b)}.")
    d = A[0].shape[1]
    for j, (a, v) in enumerate(zip(A, b)):
        if a.shape[1] != d or a.shape[0] != v.shape[0]:
            raise ValueError(f"Task {j}: expected A_j of shape (m_j, {d}) and b_j of length m_j. Found {a.shape} and {v.shape}.")
    W = _weights(len(A), n_points, weights)
    if method == "closed_form":
        thetas = np.stack(
            [_closed_form(sum(w[j] * A[j].T @ A[j] for j in range(len(A))), sum(w[j] * A[j].T @ b[j] for j in range(len(A)))) for w in W]
        )
    elif method == "cvxpy":
        import cvxpy as cp

        theta = cp.Variable(d)
        wp = cp.Parameter(len(A), nonneg=True)
        problem = cp.Problem(cp.Minimize(cp.sum([wp[j] * cp.sum_squares(A[j] @ theta - b[j]) for j in range(len(A))])))
        thetas = _sweep(problem, wp, theta, W, solver)
    else:
        raise ValueError(f"Parameter `method` should be 'cvxpy' or 'closed_form'. Found `method = {method!r}`.")
    losses = np.stack([[float(np.sum((A[j] @ t - b[j]) ** 2)) for j in range(len(A))] for t in thetas])
    return ParetoFront(W, thetas, losses)


# -------------------------------------------------------------------------------------- dominance
def dominated_by_front(points: np.ndarray, front: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """For each point (n×K, minimized), whether some front point dominates it: no worse in every
    objective (``f ≤ p + tol``) and better in at least one (``f < p − tol``)."""
    P = _as_matrix(np.atleast_2d(points), "points")
    F = _as_matrix(np.atleast_2d(front), "front")
    if P.shape[1] != F.shape[1]:
        raise ValueError(f"`points` and `front` should have the same number of objectives. Found {P.shape[1]} and {F.shape[1]}.")
    if tol < 0:
        raise ValueError(f"Parameter `tol` should be non-negative. Found `tol = {tol}`.")
    out = np.zeros(P.shape[0], dtype=bool)
    for start in range(0, P.shape[0], 1024):  # chunks keep memory at 1024·n·K
        p = P[start : start + 1024, None, :]
        le = np.all(F[None] <= p + tol, axis=2)
        lt = np.any(F[None] < p - tol, axis=2)
        out[start : start + 1024] = np.any(le & lt, axis=1)
    return out


def non_dominated(points: np.ndarray, tol: float = 0.0) -> np.ndarray:
    """Mask of the points that no other point of the set dominates (minimized objectives)."""
    return ~dominated_by_front(points, points, tol)


def distance_to_front(points: np.ndarray, front: np.ndarray, kind: str = "euclidean") -> np.ndarray:
    """Distance from each point to the (sampled) front.

    :param kind: ``"euclidean"``: :math:`\\min_f\\|p-f\\|`; ``"plus"`` (IGD+-style):
        :math:`\\min_f\\|\\max(p-f,0)\\|`, how far the point lies behind the front (0 on or beyond it).
    """
    P = _as_matrix(np.atleast_2d(points), "points")
    F = _as_matrix(np.atleast_2d(front), "front")
    if P.shape[1] != F.shape[1]:
        raise ValueError(f"`points` and `front` should have the same number of objectives. Found {P.shape[1]} and {F.shape[1]}.")
    diff = P[:, None, :] - F[None]
    if kind == "plus":
        diff = np.maximum(diff, 0.0)
    elif kind != "euclidean":
        raise ValueError(f"Parameter `kind` should be 'euclidean' or 'plus'. Found `kind = {kind!r}`.")
    return np.sqrt((diff**2).sum(axis=2)).min(axis=1)
