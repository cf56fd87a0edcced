"""Unit tests of NMT's PriorityLagrangian (spec specs/nmt.md §2.2, §2.5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.nmt import NMTConfig, PriorityLagrangian
from methods.strategies import ForwardResult, JointStep

DTYPES = [torch.float32, torch.float64]


def _rand_losses(gen: torch.Generator, k: int, dtype: torch.dtype, n: int = 5):
    """K losses of a small linear model, so each has a distinct gradient."""
    w = torch.randn(n, generator=gen, dtype=dtype).requires_grad_(True)
    a = torch.randn(k, n, generator=gen, dtype=dtype)
    b = torch.randn(k, generator=gen, dtype=dtype)
    losses = ((a @ w - b) ** 2) + torch.rand(k, generator=gen, dtype=dtype)
    return w, losses


@pytest.mark.parametrize("dtype", DTYPES)
def test_lambda_nonnegative_after_every_update(dtype):
    gen = torch.Generator().manual_seed(0)
    mult = PriorityLagrangian(3, thresholds=[0.1, 0.2, 0.3], eta_lambda=2.0, dtype=dtype)
    for _ in range(200):
        v = torch.randn(3, generator=gen, dtype=dtype)
        lam = mult.update(v)
        assert bool((lam >= 0).all())
        assert lam.dtype == dtype
    # an always-satisfied constraint projects to exactly 0
    mult.reset()
    for _ in range(10):
        mult.update(torch.tensor([-1.0, -1.0, -1.0]))
    assert mult.lambdas.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_on_simplex(dtype):
    gen = torch.Generator().manual_seed(1)
    mult = PriorityLagrangian(4, thresholds=[1.0] * 4, dtype=dtype)
    for _ in range(20):
        mult.set_lambdas(torch.rand(4, generator=gen, dtype=dtype) * 50)
        w = mult.weights()
        assert w.shape == (5,)
        assert bool((w >= 0).all())
        torch.testing.assert_close(w.sum(), torch.ones((), dtype=dtype))
        lam = mult.lambdas
        torch.testing.assert_close(w[-1], 1 / (1 + lam.sum()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rescale", [True, False])
def test_gradient_is_weighted_sum_of_task_gradients(dtype, rescale):
    gen = torch.Generator().manual_seed(2)
    k = 3
    mult = PriorityLagrangian(k - 1, thresholds=[0.3, 0.7], rescale=rescale, dtype=dtype)
    mult.set_lambdas([2.5, 0.75])
    w, losses = _rand_losses(gen, k, dtype)
    j = mult(losses)
    (grad_j,) = torch.autograd.grad(j, w, retain_graph=True)
    per_task = [torch.autograd.grad(losses[i], w, retain_graph=True)[0] for i in range(k)]
    # hand computation of the weights, independent of mult.weights()
    lam1, lam2 = 2.5, 0.75
    hand = [lam1, lam2, 1.0]
    if rescale:
        hand = [h / (1 + lam1 + lam2) for h in hand]
    expected = sum(h * g for h, g in zip(hand, per_task))
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(grad_j, expected, atol=tol, rtol=tol)
    torch.testing.assert_close(mult.weights().to(dtype), torch.tensor(hand, dtype=dtype), atol=tol, rtol=tol)
    # and the value: (l_k + sum lam (l_i - eps_i)) / (1 + sum lam)
    lv = losses.detach()
    val = lv[2] + lam1 * (lv[0] - 0.3) + lam2 * (lv[1] - 0.7)
    if rescale:
        val = val / (1 + lam1 + lam2)
    torch.testing.assert_close(j.detach(), val, atol=tol, rtol=tol)


def test_rescaled_gradient_norm_bounded_by_max_task_norm():
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):
        mult = PriorityLagrangian(2, thresholds=[0.0, 0.0], dtype=torch.float64)
        mult.set_lambdas(torch.rand(2, generator=gen, dtype=torch.float64) * 100)
        w, losses = _rand_losses(gen, 3, torch.float64)
        (g,) = torch.autograd.grad(mult(losses), w, retain_graph=True)
        norms = [torch.autograd.grad(losses[i], w, retain_graph=True)[0].norm() for i in range(3)]
        assert float(g.norm()) <= float(max(norms)) * (1 + 1e-12)


def test_relative_equals_absolute_with_scaled_step():
    gen = torch.Generator().manual_seed(4)
    eps = torch.tensor([0.05, 2.0], dtype=torch.float64)
    eta = 0.3
    rel = PriorityLagrangian(2, thresholds=eps, eta_lambda=eta, violation="relative", dtype=torch.float64)
    # per-constraint step eta/|eps_i|: two one-constraint absolute objects
    abs0 = PriorityLagrangian(1, thresholds=eps[:1], eta_lambda=eta / 0.05, dtype=torch.float64)
    abs1 = PriorityLagrangian(1, thresholds=eps[1:], eta_lambda=eta / 2.0, dtype=torch.float64)
    for _ in range(100):
        v = torch.randn(2, generator=gen, dtype=torch.float64) * 0.1 + 0.02
        r = rel.update(v)
        a0, a1 = abs0.update(v[:1]), abs1.update(v[1:])
        torch.testing.assert_close(r, torch.cat([a0, a1]), atol=1e-12, rtol=1e-12)
    # J and weights do not depend on the violation scale
    w, losses = _rand_losses(gen, 3, torch.float64)
    abs_both = PriorityLagrangian(2, thresholds=eps, dtype=torch.float64)
    abs_both.set_lambdas(rel.lambdas)
    torch.testing.assert_close(rel(losses), abs_both(losses))


@pytest.mark.parametrize("dtype", DTYPES)
def test_damping_vanishes_when_feasible_and_acts_when_violated(dtype):
    gen = torch.Generator().manual_seed(5)
    w, losses = _rand_losses(gen, 2, dtype)
    lv = losses.detach()
    c = 4.0
    for eps, feasible in ((float(lv[0]) + 1.0, True), (float(lv[0]) - 0.5, False)):
        plain = PriorityLagrangian(1, thresholds=[eps], dtype=dtype)
        damped = PriorityLagrangian(1, thresholds=[eps], damping=c, dtype=dtype)
        for m in (plain, damped):
            m.set_lambdas([1.5])
        jp, jd = plain(losses), damped(losses)
        if feasible:
            torch.testing.assert_close(jp, jd)
        else:
            viol = float(lv[0]) - eps
            expected = jp.detach() + 0.5 * c * viol**2 / 2.5
            torch.testing.assert_close(jd.detach(), expected.to(dtype))


def test_lambda_max_cap():
    mult = PriorityLagrangian(2, thresholds=[1.0, 1.0], eta_lambda=1.0, lambda_max=3.0, dtype=torch.float64)
    for _ in range(10):
        lam = mult.update(torch.tensor([1.0, 0.25]))
    assert lam.tolist() == [3.0, 2.5]
    mult.update(torch.tensor([1.0, 1.0]))
    assert mult.lambdas.tolist() == [3.0, 3.0]


def test_ema_matches_hand_computation():
    beta = 0.9
    mult = PriorityLagrangian(1, thresholds=[1.0], eta_lambda=0.5, violation_ema=beta, dtype=torch.float64)
    vs = [0.4, -0.2, 0.1, 0.3, -0.5]
    ema, lam = None, 0.0
    for v in vs:
        ema = v if ema is None else beta * ema + (1 - beta) * v
        lam = max(0.0, lam + 0.5 * ema)
        got = float(mult.update(torch.tensor([v], dtype=torch.float64))[0])
        assert got == pytest.approx(lam, abs=1e-14)


def test_adam_ascent_matches_hand_computation():
    b1, b2, eps_a, eta = 0.9, 0.999, 1e-8, 0.1
    mult = PriorityLagrangian(1, thresholds=[1.0], eta_lambda=eta, ascent="adam", dtype=torch.float64)
    m = s = lam = 0.0
    for t, v in enumerate([0.3, 0.1, -0.05, 0.2, -0.4, -0.4, -0.4], start=1):
        m = b1 * m + (1 - b1) * v
        s = b2 * s + (1 - b2) * v * v
        lam = max(0.0, lam + eta * (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps_a))
        assert float(mult.update(torch.tensor([v], dtype=torch.float64))[0]) == pytest.approx(lam, abs=1e-13)


def test_tied_step_uses_theta_lr():
    mult = PriorityLagrangian(1, thresholds=[1.0], eta_lambda="tied", theta_lr=1e-3, dtype=torch.float64)
    assert float(mult.update(torch.tensor([0.5]))[0]) == pytest.approx(5e-4, abs=1e-15)
    with pytest.raises(ValueError, match="theta_lr"):
        PriorityLagrangian(1, eta_lambda="tied")


def _run(mult: PriorityLagrangian, vs: torch.Tensor) -> list[list[float]]:
    return [mult.update(v).tolist() for v in vs]


@pytest.mark.parametrize("kwargs", [{}, {"ascent": "adam", "violation_ema": 0.8}, {"violation": "relative"}])
def test_reset_restores_fresh_behaviour(kwargs):
    gen = torch.Generator().manual_seed(6)
    vs = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    fresh = PriorityLagrangian(2, thresholds=[0.5, 0.2], dtype=torch.float64, **kwargs)
    used = PriorityLagrangian(2, thresholds=[0.5, 0.2], dtype=torch.float64, **kwargs)
    _run(used, torch.randn(17, 2, generator=gen, dtype=torch.float64))
    used.reset()
    assert used.lambdas.tolist() == [0.0, 0.0] and used.history == [] and used.n_updates == 0
    assert _run(used, vs) == _run(fresh, vs)


@pytest.mark.parametrize("kwargs", [{}, {"ascent": "adam", "violation_ema": 0.8, "lambda_max": 5.0}])
def test_state_dict_round_trip(kwargs):
    gen = torch.Generator().manual_seed(7)
    a = PriorityLagrangian(2, thresholds=[0.5, 0.2], dtype=torch.float64, **kwargs)
    _run(a, torch.randn(13, 2, generator=gen, dtype=torch.float64))
    b = PriorityLagrangian(2, dtype=torch.float64, **kwargs)
    b.load_state_dict(a.state_dict())
    assert b.history == a.history and b.n_updates == a.n_updates
    torch.testing.assert_close(b.thresholds, a.thresholds)
    vs = torch.randn(20, 2, generator=gen, dtype=torch.float64)
    assert _run(a, vs) == _run(b, vs)


def test_lambda_never_holds_a_graph():
    gen = torch.Generator().manual_seed(8)
    mult = PriorityLagrangian(1, thresholds=[0.1], dtype=torch.float64)
    w, losses = _rand_losses(gen, 2, torch.float64)
    j = mult(losses)
    j.backward()
    mult.update()
    assert not mult.lambdas_.requires_grad and mult.lambdas_.grad_fn is None
    assert w.grad is not None


def test_jointstep_runs_the_update_in_after_step():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2).double()
    x = torch.randn(16, 3, dtype=torch.float64)
    y = torch.randn(16, 2, dtype=torch.float64)
    mult = PriorityLagrangian(1, thresholds=[0.0], eta_lambda=0.5, dtype=torch.float64)  # eps = 0: always violated
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def closure(tasks=None):
        return ForwardResult(((net(x) - y) ** 2).mean(0))

    step = JointStep(mult)
    loss0 = float(closure().losses[0].detach())
    info = step.step(closure, opt, shared_params=list(net.parameters()))
    assert mult.n_updates == 1
    assert float(mult.lambdas[0]) == pytest.approx(0.5 * loss0, rel=1e-12)
    assert info["weights"] == [0.0, 1.0]


def test_alternating_uses_recompute():
    mult = PriorityLagrangian(1, thresholds=[1.0], eta_lambda=1.0, update_order="alternating", dtype=torch.float64)
    mult.combine(torch.tensor([5.0, 0.0], dtype=torch.float64))  # stored violation would be 4
    mult.after_step(lambda: torch.tensor([1.25, 0.0], dtype=torch.float64))
    assert mult.lambdas.tolist() == [0.25]


def test_t3_stage_matches_numpy_gda_to_1e10():
    """Spec §2.5: torch object + torch.optim.SGD = numpy re-scaled descent–ascent (float64, 1000 steps)."""
    eta, eps1 = 0.05, 1.05
    e = np.eye(3)
    # numpy reference: stage 2 of T-3 (objective L_2, constraint L_1 <= 1.05), warm start at e_1
    th, lam = e[0].copy(), 0.0
    ref_th, ref_lam = [], []
    for _ in range(1000):
        l1 = float(((th - e[0]) ** 2).sum() + 1)
        g = (2 * (th - e[1]) + lam * 2 * (th - e[0])) / (1 + lam)
        th = th - eta * g
        lam = max(0.0, lam + eta * (l1 - eps1))
        ref_th.append(th.copy())
        ref_lam.append(lam)
    theta = torch.tensor(e[0], dtype=torch.float64, requires_grad=True)
    et = torch.eye(3, dtype=torch.float64)
    mult = PriorityLagrangian(1, thresholds=[eps1], eta_lambda=eta, dtype=torch.float64)
    opt = torch.optim.SGD([theta], lr=eta)
    for t in range(1000):
        losses = torch.stack([((theta - et[j]) ** 2).sum() + 1 for j in range(2)])
        opt.zero_grad()
        mult(losses).backward()
        opt.step()
        mult.after_step(lambda: losses.detach())
        assert np.max(np.abs(theta.detach().numpy() - ref_th[t])) <= 1e-10
        assert abs(float(mult.lambdas[0]) - ref_lam[t]) <= 1e-10
    # priority respected: L_1 ends near its threshold (equal weights would give 1.5), L_2 decreased from
    # its stage-1 value 3 towards the constrained optimum 2.417544 (spec T-3)
    l1 = float(((theta.detach() - et[0]) ** 2).sum() + 1)
    l2 = float(((theta.detach() - et[1]) ** 2).sum() + 1)
    assert l1 - eps1 < 0.05
    assert 2.2 < l2 < 2.6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"eta_lambda": -1.0}, "eta_lambda"),
        ({"violation": "ratio"}, "violation"),
        ({"ascent": "rmsprop"}, "ascent"),
        ({"damping": -0.1}, "damping"),
        ({"violation_ema": 1.0}, "violation_ema"),
        ({"lambda_max": 0.0}, "lambda_max"),
        ({"thresholds": [1.0, 2.0]}, "thresholds"),
        ({"thresholds": [float("nan")]}, "thresholds"),
        ({"update_order": "random"}, "update_order"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PriorityLagrangian(1, **kwargs)


def test_validation_misc():
    with pytest.raises(ValueError, match="n_constraints"):
        PriorityLagrangian(0)
    mult = PriorityLagrangian(1)
    with pytest.raises(ValueError, match="thresholds"):
        mult(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="one entry per task"):
        PriorityLagrangian(1, thresholds=[0.1])(torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="No violation"):
        PriorityLagrangian(1, thresholds=[0.1]).update()
    with pytest.raises(ValueError, match="finite"):
        PriorityLagrangian(1, thresholds=[0.1]).update(torch.tensor([float("inf")]))
    with pytest.raises(ValueError, match="Unknown NMTConfig"):
        NMTConfig.from_dict({"rho": 0.0, "bogus": 1})
    with pytest.raises(ValueError, match="rho_1r"):
        NMTConfig(rho_1r=0.0)
    with pytest.raises(ValueError, match="eta_lambda"):
        NMTConfig(eta_lambda=0.0)


def test_repr_and_config_round_trip():
    assert repr(PriorityLagrangian(2)) == "PriorityLagrangian(n_constraints=2, eta_lambda=1.0)"
    assert repr(PriorityLagrangian(1, violation="relative", rescale=False)) == (
        "PriorityLagrangian(n_constraints=1, eta_lambda=1.0, rescale=False, violation='relative')"
    )
    assert str(PriorityLagrangian(1)) == "PriorityLagrangian"
    cfg = NMTConfig(violation="relative", rho=0.01)
    assert NMTConfig.from_dict(cfg.to_dict()) == cfg
