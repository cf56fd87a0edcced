"""The fast CSO theory checks (T1–T5) hold; T6 (K = 2, 3)/T7 run in ``python -m theory --paper CSO`` (a few minutes).

The K = 3 pieces of T6 (exact MGDA, CAGrad and PCGrad for any K, the 231-point cvxpy front) are tested here on
short runs and against independent solvers."""

from __future__ import annotations

import numpy as np
import pytest

cso = pytest.importorskip("theory.cso")


@pytest.mark.parametrize("name", ["t1_theorem1_first_order", "t2_finite_step_breakdown", "t3_equal_step_length",
                                  "t4_phase2_invariant", "t5_folded_filter_energy"])
def test_fast_checks_hold(name: str) -> None:
    out = getattr(cso, name)()
    assert out.holds, out.result


def test_t3_counts_match_spec() -> None:
    d = cso.t3_equal_step_length(n_cases=100).detail
    assert d["beats_same_eta"] == 100 and d["beats_equal_norm"] == 0


def test_convex_toy_short_run_is_near_the_front() -> None:
    res = cso.convex_toy(n_iters=3000)
    assert max(res["gap_rel"].values()) < 1e-2
    assert set(res["ends"]) == {"gd", "mgda", "pcgrad", "cagrad", "phase1", "phase2", "mixed"}


def _rand_g(rng: np.random.Generator, k: int, p: int = 12) -> np.ndarray:
    g = rng.standard_normal((k, p))
    g[1] -= 1.5 * g[0]                                              # make some pairs conflict
    return g


def test_min_norm_matches_the_cvxpy_certificate() -> None:
    from theory.pareto import min_norm_certificate

    rng = np.random.default_rng(0)
    for _ in range(20):
        g = _rand_g(rng, 3)
        d = cso._min_norm(g)
        val, w = min_norm_certificate(g, method="cvxpy")
        assert d @ d == pytest.approx(val, rel=1e-6, abs=1e-10)
        np.testing.assert_allclose(d, w @ g, atol=1e-5)
        np.testing.assert_allclose(cso._min_norm(g[:2]) * 2, cso._min_norm_k2(g[:2]), atol=1e-10)   # K = 2 path


def test_cagrad_exact_solver_matches_k2_path_and_cvxpy() -> None:
    import cvxpy as cp

    rng = np.random.default_rng(1)
    for _ in range(20):
        g = _rand_g(rng, 3)
        np.testing.assert_allclose(cso._cagrad(g[:2], 0.4), cso._cagrad_k2(g[:2], 0.4), rtol=1e-6, atol=1e-8)
        g0 = g.mean(0)
        phi = 0.4 * np.linalg.norm(g0)
        w = cp.Variable(3, nonneg=True)
        prob = cp.Problem(cp.Minimize(w @ (g @ g0) + phi * cp.norm(g.T @ w)), [cp.sum(w) == 1])
        prob.solve(solver="CLARABEL")
        wc = np.clip(w.value, 0, None) / np.clip(w.value, 0, None).sum()
        f = lambda v: v @ (g @ g0) + phi * np.linalg.norm(g.T @ v)  # noqa: E731
        wm = cso._cagrad_weights(g, 0.4)
        assert np.all(wm >= 0) and wm.sum() == pytest.approx(1.0)
        assert f(wm) <= f(wc) + 1e-9                                # exact: never worse than the interior point
        gw = g.T @ wc
        ref = g0 + phi / np.linalg.norm(gw) * gw
        np.testing.assert_allclose(cso._cagrad(g, 0.4), ref, atol=1e-4 * np.abs(ref).max())
        d = cso._cagrad(g, 0.4)                                   # CAGrad's guarantee: ⟨d, g₀⟩ ≥ (1 − c)‖g₀‖²
        assert d @ g0 >= (1 - 0.4) * g0 @ g0 - 1e-9


def test_pcgrad_any_k() -> None:
    rng = np.random.default_rng(2)
    g = _rand_g(rng, 2)
    np.testing.assert_allclose(cso._pcgrad(g, np.random.default_rng(0)), cso._pcgrad_k2(g), atol=1e-12)
    g3 = np.array([[1.0, 0.0], [-1.0, 1.0], [0.0, 1.0]])
    # g1 conflicts with g2 only; g2 conflicts with g1 only; g3 with none
    expected = np.array([0.5, 0.5]) + np.array([0.0, 1.0]) + g3[2]
    np.testing.assert_allclose(cso._pcgrad(g3, np.random.default_rng(0)), expected, atol=1e-12)


def test_convex_toy_k3_short_run() -> None:
    res = cso.convex_toy(n_iters=3000, k=3)
    assert res["k"] == 3 and len(res["front"]) == 231 and len(res["front"][0]) == 3
    assert res["front_check"] <= 1e-6                                # cvxpy front = closed form (interior weights)
    assert set(res["ends"]) == {"gd", "mgda", "pcgrad", "cagrad", "phase1", "phase2", "mixed"}
    assert max(res["gap_rel"].values()) < 1e-2
    opt = np.array(res["scalarised_optimum"])
    for m in ("gd", "cagrad"):                                       # both converge to the w = 1/3 optimum
        np.testing.assert_allclose(res["ends"][m], opt, rtol=1e-5)   # 3000 iterations: 1.6e-6 seen
    with pytest.raises(ValueError, match="`k`"):
        cso.convex_toy(n_iters=10, k=4)
