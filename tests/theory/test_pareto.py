"""theory.pareto: fast paths against slow references (cvxpy), on seeded inputs, in float64."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from theory.pareto import (
    distance_to_front,
    dominated_by_front,
    least_squares_front,
    min_norm_certificate,
    min_norm_two_tasks,
    non_dominated,
    quadratic_front,
    quadratic_losses,
    scalarization_weights,
)


@pytest.mark.parametrize("seed", range(8))
def test_two_task_closed_form_matches_qp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    P = int(rng.integers(1, 30))
    J = rng.normal(size=(2, P)) * 10.0 ** rng.uniform(-2, 2)
    if seed % 3 == 0:
        J[1] = -0.7 * J[0]  # opposite: stationary, value 0
    v_cf, w_cf = min_norm_two_tasks(J)
    v_qp, w_qp = min_norm_certificate(J, method="cvxpy")
    scale = float((J**2).sum())
    assert v_cf == pytest.approx(v_qp, abs=1e-9 * scale)
    assert w_cf.sum() == pytest.approx(1.0) and np.all(w_cf >= 0)
    if seed % 3 == 0:
        assert v_cf < 1e-20 * scale and w_cf == pytest.approx([0.7 / 1.7, 1 / 1.7])


def test_certificate_properties() -> None:
    rng = np.random.default_rng(1)
    g = rng.normal(size=(2, 5))
    w_star = np.array([0.25, 0.25, 0.5])
    J = np.vstack([g, -(w_star[:2] @ g) / w_star[2]])
    v, w = min_norm_certificate(J)
    assert v < 1e-12 and w == pytest.approx(w_star, abs=1e-6)
    # scale invariance of the weights; value scales quadratically
    v2, w2 = min_norm_certificate(1e4 * J + 1e4 * 0.1)
    v1, w1 = min_norm_certificate(J + 0.1)
    assert w2 == pytest.approx(w1, abs=1e-6) and v2 == pytest.approx(1e8 * v1, rel=1e-6)
    # a common descent direction: positive, and never above any single task's squared norm
    J = np.ones((4, 3)) + 0.1 * rng.normal(size=(4, 3))
    v, w = min_norm_certificate(J)
    assert 0 < v <= min((J**2).sum(axis=1)) + 1e-12
    assert min_norm_certificate(np.array([[3.0, 4.0]]))[0] == pytest.approx(25.0)
    assert min_norm_certificate(np.zeros((3, 2)))[0] == 0.0


def test_certificate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        min_norm_certificate(np.ones(3))
    with pytest.raises(ValueError, match="finite"):
        min_norm_certificate(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="2 rows"):
        min_norm_certificate(np.ones((3, 2)), method="closed_form")
    with pytest.raises(ValueError, match="method"):
        min_norm_certificate(np.ones((3, 2)), method="magic")


def test_scalarization_weights() -> None:
    W = scalarization_weights(2, 5)
    assert W.shape == (5, 2) and W[:, 0] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    for K, n in [(3, 5), (4, 3)]:
        W = scalarization_weights(K, n)
        assert W.shape == (comb(n - 1 + K - 1, K - 1), K) and W.sum(axis=1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_points"):
        scalarization_weights(2, 1)


def _pd(rng: np.random.Generator, d: int) -> np.ndarray:
    M = rng.normal(size=(d, d))
    return M @ M.T / d + 0.2 * np.eye(d)


@pytest.mark.parametrize("K", [2, 3])
def test_quadratic_front_cvxpy_matches_closed_form(K: int) -> None:
    rng = np.random.default_rng(K)
    Qs, cs = [_pd(rng, 3) for _ in range(K)], rng.normal(size=(K, 3))
    a = quadratic_front(Qs, cs, n_points=6)
    b = quadratic_front(Qs, cs, n_points=6, method="closed_form")
    assert np.abs(a.losses - b.losses).max() < 1e-7
    assert np.abs(a.params - b.params).max() < 1e-5
    assert non_dominated(a.losses, tol=1e-9).all()
    # the end points are the single-task minimizers
    for j in range(K):
        i = int(np.flatnonzero(np.isclose(b.weights[:, j], 1.0))[0])
        assert b.params[i] == pytest.approx(cs[j]) and b.losses[i, j] == pytest.approx(0.0, abs=1e-12)
    # every front point is Pareto stationary
    for t in b.params[:5]:
        J = np.stack([Q @ (t - c) for Q, c in zip(Qs, cs)])
        assert min_norm_certificate(J)[0] < 1e-12


def test_two_isotropic_quadratics_have_the_known_front() -> None:
    # L1 = ½‖θ − e1‖², L2 = ½‖θ + e1‖²: front √(2 L1) + √(2 L2) = 2 on the segment.
    cs = np.array([[1.0, 0.0], [-1.0, 0.0]])
    f = quadratic_front([np.eye(2)] * 2, cs, n_points=11)
    assert np.sqrt(2 * f.losses).sum(axis=1) == pytest.approx(np.full(11, 2.0), abs=1e-6)
    np.testing.assert_allclose(quadratic_losses(np.zeros(2), [np.eye(2)] * 2, cs), [[0.5, 0.5]])


def test_least_squares_front_equals_quadratic_form() -> None:
    rng = np.random.default_rng(3)
    As = [rng.normal(size=(6, 3)) for _ in range(2)]
    bs = [rng.normal(size=6) for _ in range(2)]
    ls = least_squares_front(As, bs, n_points=7)
    ls_cf = least_squares_front(As, bs, n_points=7, method="closed_form")
    # ‖Aθ − b‖² = ½(θ − c)ᵀ(2AᵀA)(θ − c) + ‖Ac − b‖² with c the least-squares solution
    cs = [np.linalg.lstsq(A, b, rcond=None)[0] for A, b in zip(As, bs)]
    offsets = [float(np.sum((A @ c - b) ** 2)) for A, b, c in zip(As, bs, cs)]
    q = quadratic_front([2 * A.T @ A for A in As], cs, n_points=7, offsets=offsets, method="closed_form")
    assert ls.losses == pytest.approx(ls_cf.losses, abs=1e-7)
    assert ls_cf.losses == pytest.approx(q.losses, abs=1e-9)
    with pytest.raises(ValueError, match="Task 1"):
        least_squares_front([As[0], rng.normal(size=(6, 4))], bs)


def test_quadratic_front_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        quadratic_front([np.eye(2)], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="semi-definite"):
        quadratic_front([-np.eye(2)], np.zeros((1, 2)))
    with pytest.raises(ValueError, match="weights"):
        quadratic_front([np.eye(2)] * 2, np.zeros((2, 2)), weights=np.array([[0.5, 0.6]]))


def test_dominance_and_distance() -> None:
    front = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    pts = np.array([[0.6, 0.6], [0.5, 0.5], [0.2, 0.2], [0.0, 1.2], [0.4, 0.7]])
    assert dominated_by_front(pts, front).tolist() == [True, False, False, True, False]
    assert non_dominated(np.vstack([front, [[0.6, 0.6]]])).tolist() == [True, True, True, False]
    assert distance_to_front(pts, front) == pytest.approx([np.sqrt(0.02), 0.0, np.sqrt(0.18), 0.2, np.sqrt(0.05)])
    assert distance_to_front(pts, front, kind="plus") == pytest.approx([np.sqrt(0.02), 0.0, 0.0, 0.2, 0.2])
    with pytest.raises(ValueError, match="objectives"):
        dominated_by_front(pts, np.ones((2, 3)))
    with pytest.raises(ValueError, match="kind"):
        distance_to_front(pts, front, kind="manhattan")
