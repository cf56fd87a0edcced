"""Tests of methods.emtl: closed form vs autograd, properties P1–P5, golden values, modes, validation."""

from __future__ import annotations

import math

import pytest
import torch

from methods import GradientStats, JointStep, mtl_backward
from methods.emtl import (
    EMTL,
    EMTLR2,
    EMTLStep,
    InequityLogger,
    emtl_weights,
    exact_variance_grad,
    imtl_weights,
    inequity,
    r2_weights,
    regularizer_weights,
    relative_contributions,
    task_grad_norms,
)
from methods.strategies import ForwardResult

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=2e-4, atol=1e-5), torch.float64: dict(rtol=1e-9, atol=1e-11)}


class Toy(torch.nn.Module):
    """Shared tanh trunk, T linear heads; loss i is scaled by ``scales[i]``."""

    def __init__(self, t: int = 3, d: int = 5, h: int = 6, seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.trunk1 = torch.nn.Linear(d, h).to(dtype)
        self.trunk2 = torch.nn.Linear(h, h).to(dtype)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(h, 1).to(dtype) for _ in range(t)])
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.5)
        self.x = torch.randn(16, d, generator=g, dtype=dtype)
        self.y = torch.randn(16, t, generator=g, dtype=dtype)
        self.t = t

    def shared(self) -> list[torch.Tensor]:
        return [*self.trunk1.parameters(), *self.trunk2.parameters()]

    def head_params(self) -> list[list[torch.Tensor]]:
        return [list(h.parameters()) for h in self.heads]

    def encode(self) -> torch.Tensor:
        return torch.tanh(self.trunk2(torch.tanh(self.trunk1(self.x))))

    def losses(self, scales=None, z=None, reduction: str = "mean") -> torch.Tensor:
        z = self.encode() if z is None else z
        out = []
        for i, h in enumerate(self.heads):
            e = (h(z).squeeze(1) - self.y[:, i]) ** 2
            li = e.mean() if reduction == "mean" else e.sum()
            out.append(li * (1.0 if scales is None else scales[i]))
        return torch.stack(out)


def flat_grads(params):
    return torch.cat([p.grad.reshape(-1) for p in params])


def zero(model):
    for p in model.parameters():
        p.grad = None


# ---------------------------------------------------------------------------------------------
# golden values (hand calculation, spec §3.1)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_golden_cv_and_si(dtype):
    losses = torch.tensor([1.0, 4.0], dtype=dtype)
    norms = torch.tensor([1.0, 1.0], dtype=dtype)
    # r = (1, 4), rho = (0.4, 1.6), phi_cv = (-0.24, 0.96), w = 1 + 0.1 * phi / L
    w, info = emtl_weights(losses, norms, 0.1, "cv", "sum", eps=0.0)
    torch.testing.assert_close(w, torch.tensor([0.976, 1.024], dtype=dtype), **TOL[dtype])
    assert w.dtype == dtype
    assert info["rho"] == pytest.approx([0.4, 1.6])
    # log: phi = log rho - mean log rho = (log 0.5, log 2); base log: w = (1 + 0.1 phi)/L
    w, _ = emtl_weights(losses, norms, 0.1, "log", "log", eps=0.0)
    expect = torch.tensor([1 - 0.1 * math.log(2), (1 + 0.1 * math.log(2)) / 4], dtype=dtype)
    torch.testing.assert_close(w, expect, **TOL[dtype])
    # raw: w = 1 + (2 lam / T) (r - rbar)/n = 1 + 0.1 * (-1.5, 1.5)
    w, _ = emtl_weights(losses, norms, 0.1, "raw", "mean", eps=0.0)
    torch.testing.assert_close(w, torch.tensor([0.5 - 0.15, 0.5 + 0.15], dtype=dtype), **TOL[dtype])


def test_golden_inequity():
    r = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64)
    assert float(inequity(r, "var")) == pytest.approx(3.5)  # mean 3, deviations 4,1,0,9
    assert float(inequity(r, "cv2")) == pytest.approx(3.5 / 9)
    lr = torch.log(r)
    assert float(inequity(r, "logvar")) == pytest.approx(float(((lr - lr.mean()) ** 2).mean()))


# ---------------------------------------------------------------------------------------------
# closed form = autograd of the stop-gradient objective (independent route)
# ---------------------------------------------------------------------------------------------
def _objective(losses, norms, lam, variant, base):
    t = losses.numel()
    rt = losses / norms.detach()
    if variant == "raw":
        reg = ((rt - rt.mean()) ** 2).mean()
    elif variant == "cv":
        reg = ((rt - rt.mean()) ** 2).mean() / rt.detach().mean() ** 2
    else:
        lr = torch.log(losses) - torch.log(norms.detach())
        reg = ((lr - lr.mean()) ** 2).mean()
    b = {"sum": losses.sum(), "mean": losses.mean(), "log": torch.log(losses).sum()}[base]
    return b + lam * reg


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", ["raw", "cv", "log"])
@pytest.mark.parametrize("base", ["sum", "mean", "log"])
def test_closed_form_matches_autograd(dtype, variant, base):
    model = Toy(dtype=dtype)
    scales = [1.0, 50.0, 0.02]
    lam = 0.7
    shared = model.shared()
    losses = model.losses(scales)
    norms = task_grad_norms(losses, shared).to(dtype)
    expect = torch.autograd.grad(_objective(losses, norms, lam, variant, base), shared, retain_graph=True)
    expect = torch.cat([g.reshape(-1) for g in expect])
    emtl = EMTL(3, lam=lam, variant=variant, base=base, eps=0.0, w_min=None)
    zero(model)
    emtl.backward(losses, shared_params=shared, task_params=model.head_params())
    torch.testing.assert_close(flat_grads(shared), expect, **TOL[dtype])


# ---------------------------------------------------------------------------------------------
# P1 loss-scale invariance, P2 weight invariance
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [1e-3, 1e3])
@pytest.mark.parametrize("variant", ["raw", "cv", "log"])
def test_p1_scale_invariance(c, variant):
    model = Toy()
    shared = model.shared()
    ref = model.losses()
    scaled = model.losses([1.0, c, 1.0])
    n0, n1 = task_grad_norms(ref, shared), task_grad_norms(scaled, shared)
    r0, r1 = relative_contributions(ref, n0, 0.0), relative_contributions(scaled, n1, 0.0)
    torch.testing.assert_close(r0, r1, rtol=1e-9, atol=0)
    torch.testing.assert_close(inequity(r0, "cv2"), inequity(r1, "cv2"), rtol=1e-9, atol=1e-15)
    # the added update sum_i v_i g_i (v = regulariser weights) is unchanged
    j0 = task_grad_norms(ref, shared, return_jacobian=True)[1]
    j1 = task_grad_norms(scaled, shared, return_jacobian=True)[1]
    v0 = regularizer_weights(ref, n0, variant, eps=0.0)
    v1 = regularizer_weights(scaled, n1, variant, eps=0.0)
    if variant == "raw":  # raw depends on the absolute size of r, which is invariant: also unchanged
        pass
    torch.testing.assert_close(j1.T @ v1, j0.T @ v0, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("c", [1e-3, 1e3])
def test_p1_si_whole_update_invariant_and_ew_not(c):
    model = Toy()
    out = {}
    for name, comb in [("si", lambda: EMTL.si(3, lam=0.3, eps=0.0)), ("emtl", lambda: EMTL(3, eps=0.0))]:
        grads = []
        for scales in ([1.0, 1.0, 1.0], [c, 1.0, 1.0]):
            zero(model)
            comb().backward(model.losses(scales), shared_params=model.shared(), task_params=model.head_params())
            grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
        out[name] = grads
    torch.testing.assert_close(out["si"][0], out["si"][1], rtol=1e-9, atol=1e-12)
    assert not torch.allclose(out["emtl"][0], out["emtl"][1], rtol=1e-3)  # base sum changes like EW


def test_p2_weight_invariance():
    model = Toy()
    shared = model.shared()
    w = [0.3, 7.0, 1.0]
    a, b = model.losses(), model.losses(w)
    torch.testing.assert_close(relative_contributions(a, task_grad_norms(a, shared), 0.0),
                               relative_contributions(b, task_grad_norms(b, shared), 0.0), rtol=1e-10, atol=0)


# ---------------------------------------------------------------------------------------------
# P3 Polyak step, P4 relative progress, P5 reduction
# ---------------------------------------------------------------------------------------------
def test_p3_polyak_length_is_r():
    model = Toy()
    losses = model.losses([1.0, 20.0, 0.1])
    n, jac = task_grad_norms(losses, model.shared(), return_jacobian=True)
    r = relative_contributions(losses, n, 0.0)
    eta = losses.detach() / n**2
    lengths = torch.linalg.vector_norm(eta.unsqueeze(1) * jac, dim=1)
    torch.testing.assert_close(lengths, r, rtol=1e-12, atol=0)


def test_p4_relative_progress_identity():
    model = Toy()
    shared = model.shared()
    losses = model.losses([1.0, 5.0, 0.2])
    n, jac = task_grad_norms(losses, shared, return_jacobian=True)
    r = relative_contributions(losses, n, 0.0)
    d = torch.randn(jac.shape[1], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    errs = []
    for eta in (1e-3, 5e-4):
        with torch.no_grad():
            off = 0
            for p in shared:
                p -= eta * d[off:off + p.numel()].view_as(p)
                off += p.numel()
            new = model.losses([1.0, 5.0, 0.2])
            off = 0
            for p in shared:
                p += eta * d[off:off + p.numel()].view_as(p)
                off += p.numel()
        pred = -eta * ((jac / n.unsqueeze(1)) @ d) / r
        errs.append(float((((new - losses.detach()) / losses.detach()) - pred).abs().max()))
    assert errs[0] < 1e-3 and errs[1] < errs[0] / 3  # O(eta^2) remainder


def test_p5_reduction_invariance_shared_mode():
    model = Toy()
    shared = model.shared()
    a, b = model.losses(reduction="mean"), model.losses(reduction="sum")
    torch.testing.assert_close(relative_contributions(a, task_grad_norms(a, shared), 0.0),
                               relative_contributions(b, task_grad_norms(b, shared), 0.0), rtol=1e-10, atol=0)


# ---------------------------------------------------------------------------------------------
# structural properties
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_permutation_equivariance(dtype):
    g = torch.Generator().manual_seed(1)
    jac = torch.randn(4, 9, generator=g, dtype=dtype)
    losses = torch.rand(4, generator=g, dtype=dtype) * 3 + 0.1
    perm = torch.tensor([2, 0, 3, 1])
    for comb in (EMTL(4, lam=0.5), EMTL.si(4, lam=0.5), EMTL(4, base="imtl")):
        w = comb.weights(GradientStats(jac, losses))
        wp = comb.weights(GradientStats(jac[perm], losses[perm]))
        torch.testing.assert_close(wp, w[perm], **TOL[dtype])


def test_identical_tasks_reduce_to_base():
    g = torch.Generator().manual_seed(2)
    row = torch.randn(1, 7, generator=g, dtype=torch.float64)
    stats = GradientStats(row.repeat(3, 1), torch.full((3,), 0.8, dtype=torch.float64))
    torch.testing.assert_close(EMTL(3, lam=5.0).weights(stats), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(EMTL.si(3, lam=5.0).weights(stats), torch.full((3,), 1 / 0.8, dtype=torch.float64))


def test_lambda_zero_is_ew_and_regulariser_lowers_inequity():
    # lam = 0: w = 1; lam > 0 pushes the behind task (largest rho) up and the ahead one down
    losses = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    norms = torch.tensor([1.0, 0.5, 1.0], dtype=torch.float64)
    w0, _ = emtl_weights(losses, norms, 0.0)
    torch.testing.assert_close(w0, torch.ones(3, dtype=torch.float64))
    w, info = emtl_weights(losses, norms, 0.5)
    assert int(torch.argmax(w)) == int(torch.argmax(torch.tensor(info["rho"])))
    assert int(torch.argmin(w)) == int(torch.argmin(torch.tensor(info["rho"])))


def test_clamp_and_count():
    losses = torch.tensor([0.01, 5.0], dtype=torch.float64)
    norms = torch.tensor([1.0, 1.0], dtype=torch.float64)
    w, info = emtl_weights(losses, norms, 10.0)
    assert info["n_clamped"] == 1 and float(w.min()) == 0.0
    w, info = emtl_weights(losses, norms, 10.0, w_min=None)
    assert info["n_clamped"] == 0 and float(w.min()) < 0


def test_single_task_and_zero_norm():
    stats = GradientStats(torch.zeros(1, 4), torch.tensor([0.5]))
    assert EMTL(1, lam=3.0).weights(stats).tolist() == [1.0]
    stats = GradientStats(torch.zeros(2, 4, dtype=torch.float64), torch.tensor([0.5, 1.0], dtype=torch.float64))
    w = EMTL(2).weights(stats)
    assert bool(torch.isfinite(w).all())


# ---------------------------------------------------------------------------------------------
# modes: shared / rep / last; JointStep + EMTLStep
# ---------------------------------------------------------------------------------------------
def _manual_update(model, norms, emtl):
    losses = model.losses([1.0, 30.0, 1.0])
    w, _ = emtl_weights(losses.detach(), norms, emtl.lam, emtl.variant, emtl.base, emtl.w_min, eps=emtl.eps)
    zero(model)
    (w * losses).sum().backward()
    return flat_grads(model.shared())


@pytest.mark.parametrize("mode", ["rep", "last"])
def test_cheap_modes_match_manual(mode):
    model = Toy()
    emtl = EMTL(3, lam=0.4, grad_on=mode)
    last = list(model.trunk2.parameters())
    z = model.encode()
    losses = model.losses([1.0, 30.0, 1.0], z=z)
    target = [z] if mode == "rep" else last
    norms = task_grad_norms(losses, target)
    zero(model)
    info = emtl.backward(losses, shared_params=model.shared(), task_params=model.head_params(), features=z,
                         norm_params=last if mode == "last" else None)
    got = flat_grads(model.shared())
    torch.testing.assert_close(got, _manual_update(model, norms, emtl), rtol=1e-10, atol=1e-12)
    assert info["grad_norms"] == pytest.approx(norms.tolist())
    # last_blocks on a full Jacobian gives the same weights
    model2 = Toy()
    e2 = EMTL(3, lam=0.4, grad_on="last", last_blocks=2)
    e2.backward(model2.losses([1.0, 30.0, 1.0]), shared_params=model2.shared(), task_params=model2.head_params())
    if mode == "last":
        assert e2.last_info["weights"] == pytest.approx(info["weights"], rel=1e-9)


def test_mode_mismatch_raises():
    model = Toy()
    with pytest.raises(ValueError, match="representation"):
        mtl_backward(model.losses(), EMTL(3, grad_on="rep"), shared_params=model.shared())
    z = model.encode()
    with pytest.raises(ValueError, match="shared"):
        mtl_backward(model.losses(z=z), EMTL(3), shared_params=model.shared(), features=z)
    with pytest.raises(ValueError, match="norm_params"):
        EMTL(3, grad_on="last").backward(model.losses(), shared_params=model.shared())


@pytest.mark.parametrize("strategy", ["joint_rep", "emtl_last", "emtl_shared"])
def test_strategies_run(strategy):
    model = Toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def closure(tasks=None):
        z = model.encode()
        return ForwardResult(model.losses(z=z), z)

    if strategy == "joint_rep":
        emtl = EMTL(3, grad_on="rep")
        step = JointStep(emtl, use_features=True, head_grads=emtl.head_grads)
    elif strategy == "emtl_last":
        step = EMTLStep(EMTL(3, grad_on="last"), norm_params=list(model.trunk2.parameters()))
    else:
        step = EMTLStep(EMTL.si(3))
    before = model.losses().sum().item()
    for _ in range(5):
        info = step.step(closure, opt, shared_params=model.shared(), task_params=model.head_params())
    assert {"weights", "r", "rho", "grad_norms", "var_r", "cv2_r", "var_log_r", "n_clamped"} <= set(info)
    assert model.losses().sum().item() < before


def test_head_weighting():
    model = Toy()
    losses = model.losses([1.0, 10.0, 1.0])
    emtl = EMTL(3, lam=1.0, head_weighting="shared_only")
    emtl.backward(losses, shared_params=model.shared(), task_params=model.head_params())
    raw = torch.autograd.grad(model.losses([1.0, 10.0, 1.0]).sum(), list(model.heads.parameters()))
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in model.heads.parameters()]),
                               torch.cat([g.reshape(-1) for g in raw]))
    model2 = Toy()
    e2 = EMTL(3, lam=1.0)
    e2.backward(model2.losses([1.0, 10.0, 1.0]), shared_params=model2.shared(), task_params=model2.head_params())
    w = e2.last_info["weights"]
    g1 = torch.autograd.grad(model2.losses([1.0, 10.0, 1.0])[1], list(model2.heads[1].parameters()))
    torch.testing.assert_close(model2.heads[1].weight.grad, w[1] * g1[0])


# ---------------------------------------------------------------------------------------------
# state, repr, validation
# ---------------------------------------------------------------------------------------------
def test_ema_state_reset_and_roundtrip():
    g = torch.Generator().manual_seed(4)
    stats = [GradientStats(torch.randn(2, 5, generator=g, dtype=torch.float64),
                           torch.rand(2, generator=g, dtype=torch.float64) + 0.1) for _ in range(3)]
    a = EMTL(2, ema_beta=0.9)
    wa = [a.weights(s) for s in stats]
    b = EMTL(2, ema_beta=0.9)
    b.weights(stats[0])
    b.load_state_dict(a.state_dict())
    c = EMTL(2, ema_beta=0.9)
    for s in stats:
        c.weights(s)
    torch.testing.assert_close(b.weights(stats[0]), c.weights(stats[0]))
    a.reset()
    torch.testing.assert_close(a.weights(stats[0]), wa[0])
    assert a.last_info["r_smoothed"] == pytest.approx(a.last_info["r"])


def test_repr_and_str():
    assert repr(EMTL(3)) == "EMTL(n_tasks=3, lam=0.1, variant='cv', base='sum', grad_on='shared')"
    assert str(EMTL.si(2)) == "EMTL-SI" and str(EMTL(2)) == "EMTL"
    assert "ema_beta=0.9" in repr(EMTL(2, ema_beta=0.9))


@pytest.mark.parametrize("kwargs", [dict(lam=-1.0), dict(lam=float("nan")), dict(variant="foo"), dict(base="x"),
                                    dict(grad_on="z"), dict(eps=-1.0), dict(ema_beta=1.0), dict(w_min=float("inf")),
                                    dict(head_weighting="no"), dict(last_blocks=0)])
def test_constructor_validation(kwargs):
    with pytest.raises(ValueError, match="Parameter"):
        EMTL(2, **kwargs)


def test_input_validation():
    with pytest.raises(ValueError, match="n_tasks"):
        EMTL(0)
    with pytest.raises(ValueError, match="finite"):
        EMTL(2).weights(GradientStats(torch.ones(2, 3), torch.tensor([1.0, float("nan")])))
    with pytest.raises(ValueError, match="one entry per task"):
        EMTL(3).weights(GradientStats(torch.ones(2, 3), torch.tensor([1.0, 1.0])))
    with pytest.raises(ValueError, match="non-negative"):
        relative_contributions(torch.tensor([-1.0, 1.0]), torch.ones(2))
    with pytest.raises(ValueError, match="positive"):
        emtl_weights(torch.tensor([0.0, 1.0]), torch.ones(2), 0.1, "log", "log")
    with pytest.raises(ValueError, match="base_weights"):
        emtl_weights(torch.tensor([1.0, 1.0]), torch.ones(2), 0.1, "cv", "imtl")
    with pytest.raises(ValueError, match="eps = 0"):
        relative_contributions(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0]), 0.0)


# ---------------------------------------------------------------------------------------------
# R2, IMTL base, R3, logger
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [2, 3, 5, 10])
@pytest.mark.parametrize("lam", [0.0, 0.1, 1.0, 10.0, 1e3])
def test_r2_sherman_morrison_vs_solve(t, lam):
    r = torch.exp(torch.randn(t, generator=torch.Generator().manual_seed(t), dtype=torch.float64))
    a, b = r2_weights(r, lam, "sherman_morrison"), r2_weights(r, lam, "solve")
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert bool((a > 0).all()) and float(a.sum()) == pytest.approx(t)


def test_r2_limit():
    r = torch.tensor([0.5, 1.0, 4.0], dtype=torch.float64)
    w = r2_weights(r, 1e8)
    torch.testing.assert_close(w, 3 * (1 / r) / (1 / r).sum(), rtol=1e-4, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_imtl_equal_projections(dtype):
    jac = torch.randn(4, 11, generator=torch.Generator().manual_seed(5), dtype=dtype) * torch.tensor(
        [[1.0], [10.0], [0.1], [3.0]], dtype=dtype)
    alpha = imtl_weights(jac @ jac.T)
    d = jac.T @ alpha
    proj = (jac / jac.norm(dim=1, keepdim=True)) @ d
    torch.testing.assert_close(proj, proj.mean().expand(4), rtol=1e-3 if dtype == torch.float32 else 1e-9, atol=0)
    assert float(alpha.sum()) == pytest.approx(1.0, rel=1e-5)


def test_exact_variance_grad_vs_finite_differences():
    model = Toy(t=2, h=4)
    shared = model.shared()
    g = exact_variance_grad(model.losses([1.0, 10.0]), shared)

    def var_r():
        losses = model.losses([1.0, 10.0])
        r = relative_contributions(losses, task_grad_norms(losses, shared), 0.0)
        return float(inequity(r, "var"))

    h = 1e-6
    fd = []
    with torch.no_grad():
        pass
    for p in shared:
        flat = p.data.view(-1)
        for k in range(flat.numel()):
            old = float(flat[k])
            flat[k] = old + h
            up = var_r()
            flat[k] = old - h
            dn = var_r()
            flat[k] = old
            fd.append((up - dn) / (2 * h))
    torch.testing.assert_close(g, torch.tensor(fd, dtype=torch.float64), rtol=1e-5, atol=1e-8)


def test_inequity_logger_any_method():
    model = Toy()
    log = InequityLogger(lambda: model.losses([1.0, 100.0, 1.0]), model.shared(), every=2)
    for step in range(5):
        log(step, {"weights": [1.0, 1.0, 1.0]})
    assert [r["step"] for r in log.records] == [0, 2, 4]
    rec = log.records[0]
    assert len(rec["cos"]) == 3 and rec["cos"][0][0] == pytest.approx(1.0)
    assert rec["cv2_r"] >= 0 and all(p.grad is None for p in model.parameters())


def test_si_zero_loss_task_gets_zero_weight():
    stats = GradientStats(torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
                          torch.tensor([0.5, 0.0, 2.0], dtype=torch.float64))
    emtl = EMTL.si(3, lam=0.3)
    w = emtl.weights(stats)
    assert float(w[1]) == 0.0 and emtl.last_info["zero_loss_tasks"] == [1]
    sub = EMTL.si(2, lam=0.3).weights(GradientStats(stats.jacobian[[0, 2]], stats.losses[[0, 2]]))
    torch.testing.assert_close(w[[0, 2]], sub)


# ---------------------------------------------------------------------------------------------
# EMTLR2: the R2 ablation as a combiner
# ---------------------------------------------------------------------------------------------
def _stats(t: int = 3, seed: int = 0, scales=None) -> GradientStats:
    g = torch.Generator().manual_seed(seed)
    jac = torch.randn(t, 8, generator=g, dtype=torch.float64)
    losses = torch.rand(t, generator=g, dtype=torch.float64) * 2 + 0.1
    if scales is not None:
        c = torch.tensor(scales, dtype=torch.float64)
        jac, losses = jac * c[:, None], losses * c
    return GradientStats(jac, losses)


def test_r2_combiner_golden_two_tasks():
    # r = (10/5, 1/1) = (2, 1), rho = (4/3, 2/3); w = (1 + d, 1 - d) with d = -lam / (6 + 3 lam) (hand calculation)
    stats = GradientStats(torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.float64),
                          torch.tensor([10.0, 1.0], dtype=torch.float64))
    for lam in (0.0, 0.5, 1.0, 10.0):
        d = -lam / (6 + 3 * lam)
        comb = EMTLR2(2, lam=lam)
        torch.testing.assert_close(comb.weights(stats), torch.tensor([1 + d, 1 - d], dtype=torch.float64))
        assert comb.last_info["r"] == pytest.approx([2.0, 1.0]) and comb.last_info["n_clamped"] == 0
    # the spec's literal form (normalize=False) equalises w * r: lam on r equals lam * mean(r)^2 on rho
    raw = EMTLR2(2, lam=1.0, normalize=False).weights(stats)
    torch.testing.assert_close(raw, EMTLR2(2, lam=1.0 * 1.5**2).weights(stats))


def test_r2_combiner_matches_r2_weights_and_equalises():
    stats = _stats(4, seed=3)
    comb = EMTLR2(4, lam=2.0)
    w = comb.weights(stats)
    r = relative_contributions(stats.losses, stats.jacobian.norm(dim=1), 1e-8).double()
    torch.testing.assert_close(w, r2_weights(r / r.mean(), 2.0))
    assert float(w.sum()) == pytest.approx(4.0) and bool((w > 0).all())
    # the contributions w_i r_i are closer together than r
    assert comb.last_info["cv2_contributions"] < comb.last_info["cv2_r"]
    torch.testing.assert_close(torch.tensor(comb.last_info["contributions"], dtype=torch.float64), w * r)


def test_r2_combiner_loss_scale_invariant():
    base = EMTLR2(3, lam=1.0, eps=0.0).weights(_stats(3, seed=4))
    scaled = EMTLR2(3, lam=1.0, eps=0.0).weights(_stats(3, seed=4, scales=[1e-3, 1.0, 1e3]))
    torch.testing.assert_close(scaled, base, rtol=1e-9, atol=0)


def test_r2_combiner_modes_and_validation():
    with pytest.raises(ValueError, match="representation-mode"):
        EMTLR2(2).weights(GradientStats(torch.ones(2, 3), torch.ones(2), mode="features"))
    with pytest.raises(ValueError, match="grad_on='rep'"):
        EMTLR2(2, grad_on="rep").weights(GradientStats(torch.ones(2, 3), torch.ones(2)))
    for bad in ({"lam": -1.0}, {"grad_on": "last"}, {"normalize": 1}, {"head_weighting": "x"}, {"eps": float("nan")}):
        with pytest.raises(ValueError):
            EMTLR2(2, **bad)
    assert EMTLR2(2).head_grads == "weighted" and EMTLR2(2, head_weighting="shared_only").head_grads == "raw"
    assert str(EMTLR2(2)) == "EMTL-R2" and "lam=1" in repr(EMTLR2(2))


def test_r2_combiner_step_weights_heads():
    # through JointStep the shared update is J^T w and head i gets w_i * grad (weighted heads, as EMTL)
    model = Toy(t=2)
    comb = EMTLR2(2, lam=3.0)
    losses = model.losses([1.0, 20.0])
    info = mtl_backward(losses, comb, shared_params=model.shared(), task_params=model.head_params(),
                        head_grads=comb.head_grads)
    w = torch.tensor(info["weights"], dtype=torch.float64)
    grads = [torch.autograd.grad(model.losses([1.0, 20.0])[i], model.shared() + model.head_params()[i])
             for i in range(2)]
    n_sh = len(model.shared())
    expect_shared = sum(w[i] * torch.cat([g.reshape(-1) for g in grads[i][:n_sh]]) for i in range(2))
    torch.testing.assert_close(flat_grads(model.shared()), expect_shared)
    for i in range(2):
        torch.testing.assert_close(flat_grads(model.head_params()[i]),
                                   w[i] * torch.cat([g.reshape(-1) for g in grads[i][n_sh:]]))


def test_imtl_base_weights_are_alpha_plus_regulariser():
    # R1 + base imtl (the EMTL-IMTL ablation): w = alpha_IMTL + lam * v (clamped at 0)
    stats = _stats(3, seed=6, scales=[1.0, 10.0, 0.1])
    comb = EMTL(3, lam=0.1, base="imtl")
    w = comb.weights(stats)
    alpha = imtl_weights(stats.gramian)
    v = regularizer_weights(stats.losses, stats.jacobian.norm(dim=1), "cv")
    torch.testing.assert_close(w, (alpha + 0.1 * v).clamp_min(0.0))
    torch.testing.assert_close(torch.tensor(comb.last_info["beta"], dtype=torch.float64), alpha)


def test_rep_step_runs_each_head_backward_once_from_the_unstacked_losses():
    """EMTLStep in rep mode uses the closure's unstacked losses: one backward per head (a stacked vector would
    send every task's pass through every head); the gradients are the same either way."""
    from methods import ForwardResult
    from methods.emtl import EMTLStep

    def run(pass_list: bool) -> tuple[list[int], list[torch.Tensor]]:
        torch.manual_seed(0)
        trunk = torch.nn.Linear(4, 6).double()
        heads = [torch.nn.Linear(6, 1).double() for _ in range(3)]
        calls = [0, 0, 0]
        for i, h in enumerate(heads):
            h.register_full_backward_hook(lambda m, gi, go, i=i: calls.__setitem__(i, calls[i] + 1))
        x = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

        def closure(tasks=None):
            z = torch.tanh(trunk(x))
            ls = [(s * h(z) ** 2).mean() for s, h in zip((1.0, 10.0, 0.1), heads)]
            return ForwardResult(torch.stack(ls), z, ls if pass_list else None)

        params = [*trunk.parameters(), *(p for h in heads for p in h.parameters())]
        opt = torch.optim.SGD(params, lr=0.0)  # lr 0: the .grad after the step is the step's gradient
        EMTLStep(EMTL(3, lam=0.5, grad_on="rep")).step(closure, opt, shared_params=list(trunk.parameters()),
                                                         task_params=[list(h.parameters()) for h in heads])
        return calls, [p.grad.clone() for p in params]

    calls_list, grads_list = run(True)
    calls_stacked, grads_stacked = run(False)
    assert calls_list == [1, 1, 1] and calls_stacked == [3, 3, 3]
    for a, b in zip(grads_list, grads_stacked):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
