"""Tests of the synthetic problems (conventions §8)."""

from __future__ import annotations

import math

import moocore
import numpy as np
import pytest
import torch

from paper_repro.data import (
    BENCHMARK_NAMES,
    LOWER,
    benchmark_problem,
    cagrad_toy,
    conflict_regression,
    multitarget_regression,
    vlmop1,
    vlmop1_front,
    vlmop2,
    vlmop2_front,
    vlmop_pareto_set,
)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cagrad_toy_values_and_dtype(dtype: torch.dtype) -> None:
    x = torch.tensor([[0.0, 0.0], [7.0, -8.3552], [-8.5, 7.5]], dtype=dtype)
    out = cagrad_toy(x, scale=0.1)
    assert out.dtype == dtype and out.shape == (3, 2)
    # at x2 = 0 both gates vanish
    assert torch.allclose(out[0], torch.zeros(2, dtype=dtype))
    # hand-computed point on the lower branch: c1 = 0, c2 = tanh(x2 / -2)·...
    x1, x2 = 7.0, -8.3552
    c2 = math.tanh(-x2 / 2)
    q1 = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    q2 = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    assert out[1, 0].item() == pytest.approx(0.1 * c2 * q1, rel=1e-5)
    assert out[1, 1].item() == pytest.approx(c2 * q2, rel=1e-5)


def test_cagrad_toy_clamp_has_zero_gradient() -> None:
    # choose x1 so that 0.5(-x1 - 7) - tanh(-x2) = 0 exactly: the log argument is clamped to LOWER
    x2 = torch.tensor(2.0, dtype=torch.float64)
    x1 = (-7 - 2 * torch.tanh(-x2)).clone().requires_grad_(True)
    x = torch.stack([x1, x2.requires_grad_(True)])
    l1 = cagrad_toy(x)[0]
    c1 = math.tanh(1.0)
    assert l1.item() == pytest.approx(c1 * (math.log(LOWER) + 6), rel=1e-9)
    (g,) = torch.autograd.grad(l1, x1)
    assert g.item() == 0.0


def test_vlmop_fronts() -> None:
    n = 7
    xs = vlmop_pareto_set(50, n)
    assert torch.allclose(vlmop1(xs), vlmop1_front(50))
    assert torch.allclose(vlmop2(xs), vlmop2_front(50))
    f1 = vlmop1_front(200)
    assert torch.allclose(f1.sqrt().sum(1), torch.ones(200, dtype=torch.float64))
    for front, fn in ((vlmop1_front(200), vlmop1), (vlmop2_front(200), vlmop2)):
        assert moocore.is_nondominated(front.numpy()).all()
        # random points are dominated by (or on) the front: none dominates a front point strictly
        pts = fn(torch.empty(2000, n, dtype=torch.float64).uniform_(-1, 1, generator=torch.Generator().manual_seed(0)))
        both = np.vstack([front.numpy(), pts.numpy()])
        assert moocore.is_nondominated(both)[: len(front)].all()
    # VLMOP2's front is concave: its midpoint lies above the chord between the ends
    f2 = vlmop2_front(101)
    assert f2[50].sum() > (f2[0] + f2[-1]).sum() / 2


@pytest.mark.parametrize("name", BENCHMARK_NAMES)
def test_benchmarks_match_pymoo(name: str) -> None:
    from pymoo.problems import get_problem

    prob = benchmark_problem(name)
    x = prob.sample(64, torch.Generator().manual_seed(0))
    kwargs = {} if name == "zdt5" else {"n_var": prob.n_var}
    if name.startswith("dtlz"):
        kwargs["n_obj"] = prob.n_obj
    ref = get_problem(name, **kwargs).evaluate(x.numpy())
    np.testing.assert_allclose(prob(x).numpy(), ref, rtol=0, atol=1e-10)
    assert prob(x.float()).dtype == torch.float32
    front = prob.pareto_front()
    assert front.shape[1] == prob.n_obj and torch.isfinite(front).all()


def test_benchmark_other_sizes_and_errors() -> None:
    from pymoo.problems import get_problem

    prob = benchmark_problem("dtlz2", n_var=8, n_obj=4)
    x = prob.sample(16, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(prob(x).numpy(), get_problem("dtlz2", n_var=8, n_obj=4).evaluate(x.numpy()), atol=1e-10)
    zdt4 = benchmark_problem("zdt4")
    assert zdt4.clamp(torch.full((1, 10), 9.0, dtype=torch.float64))[0, 0] == 1.0
    assert zdt4.clamp(torch.full((1, 10), 9.0, dtype=torch.float64))[0, 1] == 5.0
    # DTLZ2 front lies on the unit sphere; DTLZ5/6 fronts (computed here) too
    for name in ("dtlz2", "dtlz5", "dtlz6"):
        f = benchmark_problem(name).pareto_front()
        assert torch.allclose(f.norm(dim=1), torch.ones(len(f), dtype=torch.float64))
    with pytest.raises(ValueError, match="name"):
        benchmark_problem("zdt7")
    with pytest.raises(ValueError, match="last dimension"):
        benchmark_problem("zdt1")(torch.zeros(3, 5))


def test_conflict_regression() -> None:
    s = conflict_regression(4000, 500, d=10, n_tasks=3, rho=0.3, scales=(1.0, 10.0, 0.1), noise_std=(0.1, 0.2, 0.3), seed=0)
    assert s.train.x.shape == (3600, 10) and s.train.y.shape == (3600, 3) and s.train.x.dtype == torch.float32
    cos = np.array(s.meta["cosines"])
    np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-12)
    np.testing.assert_allclose(cos[~np.eye(3, dtype=bool)], 0.3, atol=1e-12)
    assert s.meta["bayes_risk"] == pytest.approx([0.01, 0.04, 0.09])
    # residual variance of the true linear map equals sigma^2
    w = torch.tensor(s.meta["weights"], dtype=torch.float64) * torch.tensor([[1.0], [10.0], [0.1]], dtype=torch.float64)
    resid = s.train.y.double() - s.train.x.double() @ w.T
    np.testing.assert_allclose(resid.var(0).numpy(), [0.01, 0.04, 0.09], rtol=0.1)
    neg = conflict_regression(500, 100, rho=-0.5, seed=0)
    assert np.array(neg.meta["cosines"])[0, 1] == pytest.approx(-0.5)
    binary = conflict_regression(500, 100, rho=0.8, binarize=True, seed=0)
    assert set(binary.train.y.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(s.test.y, conflict_regression(4000, 500, d=10, n_tasks=3, rho=0.3, scales=(1.0, 10.0, 0.1), noise_std=(0.1, 0.2, 0.3), seed=0).test.y)
    with pytest.raises(ValueError, match="`d`"):
        conflict_regression(10, 10, d=3, n_tasks=3)


def test_multitarget_regression() -> None:
    s = multitarget_regression(2000, 500, n_targets=7, seed=0)
    assert s.train.y.shape[1] == 7 and s.train.x.shape[1] == 21
    pool = torch.cat([s.train.y, s.val.y])
    assert torch.allclose(pool.mean(0), torch.zeros(7), atol=1e-5) and torch.allclose(pool.std(0), torch.ones(7), atol=1e-3)
