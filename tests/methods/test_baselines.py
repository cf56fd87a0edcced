"""Property checks over every baseline (``_properties.py``), plus usage and bad-input behaviour."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("torchjd")

from _properties import (  # noqa: E402
    ALL_SPECS,
    FAMILIES,
    GRADIENT_SPECS,
    LOSS_SPECS,
    SCALES,
    check_identical_rows,
    check_loss_output,
    check_non_conflict,
    check_output,
    check_permutation_equivariance,
    check_reset,
    check_scale_invariance,
    check_state_dict_roundtrip,
    make_matrix,
    stats_of,
)

import methods.baselines as B  # noqa: E402
from methods import mtl_backward  # noqa: E402

GRAD_IDS = [s.name for s in GRADIENT_SPECS]
LOSS_IDS = [s.name for s in LOSS_SPECS]


# ---- gradient-level properties -----------------------------------------------------------------


@pytest.mark.parametrize("spec", GRADIENT_SPECS, ids=GRAD_IDS)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("k", [2, 3])
def test_output_finite_and_shaped(spec, family, k, dtype):
    check_output(spec, make_matrix(family, k, dtype=dtype, seed=k))


@pytest.mark.parametrize("spec", GRADIENT_SPECS, ids=GRAD_IDS)
@pytest.mark.parametrize("scale", SCALES)
def test_output_finite_at_extreme_scales(spec, scale, dtype):
    for family in ("normal", "zero_row"):
        check_output(spec, make_matrix(family, 3, dtype=dtype, seed=1, scale=scale))


@pytest.mark.parametrize("spec", [s for s in GRADIENT_SPECS if s.deterministic], ids=lambda s: s.name)
@pytest.mark.parametrize("family", ["normal", "strong"])
def test_permutation_equivariance(spec, family):
    check_permutation_equivariance(spec, make_matrix(family, 4, seed=3), [2, 0, 3, 1])


def test_pcgrad_two_tasks_is_deterministic_and_equivariant():
    spec = next(s for s in GRADIENT_SPECS if s.name == "PCGrad")
    check_permutation_equivariance(spec, make_matrix("normal", 2, seed=4), [1, 0])


@pytest.mark.parametrize("spec", [s for s in GRADIENT_SPECS if s.non_conflict], ids=lambda s: s.name)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [2, 3, 5])
def test_non_conflict(spec, seed, k):
    check_non_conflict(spec, make_matrix("normal", k, p=6, seed=seed))


@pytest.mark.parametrize("seed", range(5))
def test_pcgrad_non_conflict_two_tasks(seed):
    spec = next(s for s in GRADIENT_SPECS if s.name == "PCGrad")
    check_non_conflict(spec, make_matrix("normal", 2, seed=seed))


@pytest.mark.parametrize("spec", [s for s in GRADIENT_SPECS if s.scale_invariant_weights], ids=lambda s: s.name)
@pytest.mark.parametrize("c", [1e-2, 1e3])
def test_weights_invariant_to_uniform_scaling(spec, c):
    # Not at 1e-6: CAGrad and UPGrad (TorchJD) treat a Jacobian whose squared Frobenius norm is below
    # norm_eps=1e-4 as zero and fall back to the mean; that is tested for finiteness above.
    check_scale_invariance(spec, make_matrix("normal", 3, seed=5), c)


@pytest.mark.parametrize("seed", range(3))
def test_imtlg_direction_invariant_to_per_task_scaling(seed):
    jac = make_matrix("normal", 3, seed=seed)
    s = torch.tensor([1e-3, 1.0, 50.0], dtype=jac.dtype)
    d = B.IMTLG().aggregate(stats_of(jac))
    ds = B.IMTLG().aggregate(stats_of(jac * s[:, None]))
    cos = float(d @ ds / (d.norm() * ds.norm()))
    assert cos > 1 - 1e-9


@pytest.mark.parametrize("spec", GRADIENT_SPECS, ids=GRAD_IDS)
@pytest.mark.parametrize("k", [2, 4])
def test_identical_rows_reduce_to_equal_weighting(spec, k):
    check_identical_rows(spec, make_matrix("identical", k, seed=6))


@pytest.mark.parametrize("spec", [s for s in GRADIENT_SPECS if s.deterministic], ids=lambda s: s.name)
def test_reset_restores_fresh_behaviour(spec):
    jacs = [make_matrix("normal", 3, seed=s) for s in range(4)]
    check_reset(spec, jacs)


@pytest.mark.parametrize("spec", [s for s in GRADIENT_SPECS if s.deterministic], ids=lambda s: s.name)
def test_state_dict_roundtrip(spec):
    jacs = [make_matrix("normal", 3, seed=s) for s in range(4)]
    check_state_dict_roundtrip(spec, jacs)


@pytest.mark.parametrize("spec", GRADIENT_SPECS, ids=GRAD_IDS)
def test_zero_gradient_row_end_to_end(spec):
    """A task whose loss has a zero gradient on the shared params: finite weights, finite update."""
    torch.manual_seed(0)
    trunk = torch.nn.Linear(3, 4)
    x = torch.randn(8, 3)
    z = trunk(x)
    losses = torch.stack([(z[:, 0] ** 2).mean(), (z[:, 1] - 1).pow(2).mean(), (0.0 * z).sum() + 1.0])
    comb = spec.build(3)
    info = mtl_backward(losses, comb, shared_params=trunk.parameters())
    assert info["zero_grad_tasks"] == [2]
    assert all(torch.isfinite(p.grad).all() for p in trunk.parameters())
    assert all(v == v and abs(v) != float("inf") for v in info["weights"])
    json.dumps(info)


# ---- loss-level properties ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", LOSS_SPECS, ids=LOSS_IDS)
@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("scale", SCALES)
def test_loss_output(spec, k, scale, dtype):
    check_loss_output(spec, k, dtype, scale)


@pytest.mark.parametrize("spec", LOSS_SPECS, ids=LOSS_IDS)
def test_loss_reset_and_state_dict(spec):
    jacs = [make_matrix("normal", 3, seed=s) for s in range(4)]
    check_reset(spec, jacs)
    check_state_dict_roundtrip(spec, jacs)


@pytest.mark.parametrize("spec", LOSS_SPECS, ids=LOSS_IDS)
def test_loss_permutation_equivariance(spec):
    if spec.name == "LinearScalarization":
        pytest.skip("fixed per-task weights")
    losses = torch.tensor([0.7, 1.3, 2.1, 0.4], dtype=torch.float64)
    perm = [2, 0, 3, 1]
    a = losses.clone().requires_grad_(True)
    b = losses[perm].clone().requires_grad_(True)
    ga = torch.autograd.grad(spec.build(4)(a), a)[0]
    gb = torch.autograd.grad(spec.build(4)(b), b)[0]
    assert torch.allclose(gb, ga[perm], atol=1e-6)


# ---- every baseline in three lines from a user's loop ------------------------------------------


def _toy(k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    trunk = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh())
    heads = torch.nn.ModuleList([torch.nn.Linear(8, 1) for _ in range(k)])
    x, y = torch.randn(32, 4, generator=g), torch.randn(32, k, generator=g)

    def losses():
        z = trunk(x)
        return torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)]), z

    return trunk, heads, losses


@pytest.mark.parametrize("spec", ALL_SPECS, ids=[s.name for s in ALL_SPECS])
def test_three_lines_training_decreases_loss(spec):
    torch.manual_seed(0)
    trunk, heads, compute = _toy(2)
    comb = spec.build(2)
    opt = torch.optim.SGD([*trunk.parameters(), *heads.parameters(), *comb.parameters()], lr=0.05)
    start = float(compute()[0].sum().detach())
    for _ in range(15):
        opt.zero_grad()
        losses, _ = compute()
        info = mtl_backward(losses, comb, shared_params=trunk.parameters(), task_params=heads.parameters())
        opt.step()
        comb.after_step(lambda: compute()[0].detach())
        json.dumps(info)
    assert float(compute()[0].sum().detach()) < start
    assert repr(comb).startswith(spec.name) and len(repr(comb)) < 120


def test_uncertainty_weighting_learns_only_if_its_parameters_are_optimized():
    trunk, heads, compute = _toy(2)
    uw = B.UncertaintyWeighting(2)
    assert [p.shape for p in uw.parameters()] == [torch.Size([2])]
    opt = torch.optim.SGD([*trunk.parameters(), *uw.parameters()], lr=0.1)
    losses, _ = compute()
    mtl_backward(losses, uw, shared_params=trunk.parameters())
    opt.step()
    # ds_i = 0.5 (1 - exp(-s_i) L_i) at s = 0
    expected = -0.1 * 0.5 * (1 - losses.detach())
    assert torch.allclose(uw.log_var.detach(), expected.float(), atol=1e-6)
    forgotten = B.UncertaintyWeighting(2)
    opt2 = torch.optim.SGD(trunk.parameters(), lr=0.1)
    mtl_backward(compute()[0], forgotten, shared_params=trunk.parameters())
    opt2.step()
    assert torch.equal(forgotten.log_var.detach(), torch.zeros(2))


def test_mgda_ub_through_features_matches_hand_computation():
    """MGDA-UB: weights from dL_i/dz; shared grad = sum_i w_i dL_i/dtheta."""
    cp = pytest.importorskip("cvxpy")
    import numpy as np

    torch.manual_seed(1)
    trunk, heads, compute = _toy(3, seed=1)
    losses, z = compute()
    mgda = B.MGDA(epsilon=1e-8, max_iters=5000)
    mtl_backward(losses, mgda, shared_params=trunk.parameters(), features=z)
    got = torch.cat([p.grad.flatten() for p in trunk.parameters()])
    # hand: per-task gradients on z by a loop, min-norm weights by cvxpy, per-task param grads by a loop
    losses, z = compute()
    jz = torch.stack([torch.autograd.grad(losses[i], z, retain_graph=True)[0].flatten() for i in range(3)]).double()
    w = cp.Variable(3)
    cp.Problem(cp.Minimize(cp.sum_squares(jz.numpy().T @ w)), [w >= 0, cp.sum(w) == 1]).solve(solver=cp.CLARABEL)
    gp = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(losses[i], list(trunk.parameters()), retain_graph=True)])
                      for i in range(3)])
    expected = gp.T @ torch.as_tensor(np.asarray(w.value), dtype=gp.dtype)
    assert torch.allclose(got, expected, atol=1e-4)
    assert torch.allclose(torch.tensor(mgda.last_info["weights"]), torch.as_tensor(w.value, dtype=torch.float32), atol=1e-4)


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ALL_SPECS, ids=[s.name for s in ALL_SPECS])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_losses_raise(spec, bad):
    trunk, heads, compute = _toy(2)
    losses, _ = compute()
    losses = losses * torch.tensor([1.0, bad])
    with pytest.raises(ValueError, match="finite"):
        mtl_backward(losses, spec.build(2), shared_params=trunk.parameters())


@pytest.mark.parametrize("spec", ALL_SPECS, ids=[s.name for s in ALL_SPECS])
def test_single_task_is_plain_gradient_descent(spec):
    trunk, heads, compute = _toy(1)
    comb = spec.build(1)
    losses, _ = compute()
    mtl_backward(losses, comb, shared_params=trunk.parameters())
    got = [p.grad.clone() for p in trunk.parameters()]
    expected = torch.autograd.grad(compute()[0][0], list(trunk.parameters()))
    if spec.name == "UncertaintyWeighting":  # 0.5 exp(-s) L + 0.5 s at s = 0: half the gradient
        expected = [0.5 * e for e in expected]
    # FAMO with K = 1: c z log L with c = L / z, whose gradient is that of L
    for g, e in zip(got, expected):
        assert torch.allclose(g, e, atol=1e-5), spec


@pytest.mark.parametrize("factory", [lambda: B.NashMTL(3), lambda: B.UncertaintyWeighting(3), lambda: B.FAMO(3),
                                     lambda: B.LinearScalarization([1, 2, 3]), lambda: B.MGDA(n_tasks=3)],
                         ids=["NashMTL", "UW", "FAMO", "LS", "MGDA"])
def test_wrong_number_of_tasks_raises(factory):
    trunk, heads, compute = _toy(2)
    with pytest.raises(ValueError, match="per task|n_tasks"):
        mtl_backward(compute()[0], factory(), shared_params=trunk.parameters())


def test_wrong_number_of_tasks_raises_in_weights():
    with pytest.raises(ValueError, match="n_tasks=3"):
        B.NashMTL(3).weights(stats_of(make_matrix("normal", 2)))


def test_loss_not_depending_on_shared_params_raises_in_strict_mode():
    trunk, heads, compute = _toy(2)
    losses, _ = compute()
    other = torch.nn.Parameter(torch.ones(()))
    losses = torch.stack([losses[0], other * 2])
    with pytest.raises(ValueError, match="task 1 does not depend on the shared"):
        mtl_backward(losses, B.MGDA(), shared_params=trunk.parameters(), strict=True)


def test_loss_not_depending_on_shared_params_is_reported_as_zero_row():
    trunk, heads, compute = _toy(2)
    losses, _ = compute()
    other = torch.nn.Parameter(torch.ones(()))
    info = mtl_backward(torch.stack([losses[0], other * 2]), B.MGDA(), shared_params=trunk.parameters())
    assert info["zero_grad_tasks"] == [1]


def test_empty_parameter_list_raises():
    trunk, heads, compute = _toy(2)
    with pytest.raises(ValueError, match="shared_params"):
        mtl_backward(compute()[0], B.UPGrad(), shared_params=[])


@pytest.mark.parametrize("kwargs", [dict(c=-1.0), dict(rescale=3)])
def test_cagrad_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Parameter"):
        B.CAGrad(**kwargs)


@pytest.mark.parametrize("ctor", [lambda: B.NashMTL(0), lambda: B.UncertaintyWeighting(0), lambda: B.FAMO(-1),
                                  lambda: B.SmoothTchebycheff(mu=0.0), lambda: B.DWA(history="batch"),
                                  lambda: B.Tchebycheff([1.0, -1.0]), lambda: B.Tchebycheff([1.0], [0.0, 0.0]),
                                  lambda: B.GradNorm(alpha=-1), lambda: B.MGDA(fallback="zero"),
                                  lambda: B.LinearScalarization([1.0, float("nan")])])
def test_constructor_validation(ctor):
    with pytest.raises(ValueError, match="Parameter"):
        ctor()


# ---- solver failures ---------------------------------------------------------------------------


def test_mgda_solver_failure_falls_back_to_previous_then_equal(monkeypatch):
    mgda = B.MGDA()
    jac = make_matrix("normal", 3)
    w0 = mgda.weights(stats_of(jac))
    assert mgda.last_info["fallback"] is None

    def boom(*args, **kwargs):
        raise RuntimeError("forced failure")

    monkeypatch.setattr(mgda.inner, "forward", boom)
    w1 = mgda.weights(stats_of(jac))
    assert torch.equal(w1, w0)
    assert mgda.last_info["fallback"] == {"reason": "RuntimeError: forced failure", "used": "previous"}
    fresh = B.MGDA(fallback="equal")
    monkeypatch.setattr(fresh.inner, "forward", boom)
    assert torch.allclose(fresh.weights(stats_of(jac)), torch.full((3,), 1 / 3, dtype=jac.dtype))
    assert fresh.last_info["fallback"]["used"] == "equal"


def test_non_finite_weights_fall_back(monkeypatch):
    up = B.UPGrad()
    monkeypatch.setattr(up.inner, "forward", lambda g: torch.full((g.shape[0],), float("nan"), dtype=g.dtype))
    w = up.weights(stats_of(make_matrix("normal", 2)))
    assert torch.allclose(w, torch.full((2,), 0.5, dtype=w.dtype))
    assert "non-finite" in up.last_info["fallback"]["reason"]


def test_nashmtl_solver_failure_is_recorded(monkeypatch):
    import cvxpy

    def fail(self, *args, **kwargs):
        raise cvxpy.error.SolverError("forced ECOS failure")

    nash = B.NashMTL(2, max_norm=0.0)
    monkeypatch.setattr(cvxpy.Problem, "solve", fail)
    w = nash.weights(stats_of(make_matrix("normal", 2)))
    assert torch.allclose(w, torch.ones(2, dtype=w.dtype))  # TorchJD keeps the initial alpha (ones)
    fb = nash.last_info["fallback"]
    assert "forced ECOS failure" in fb["reason"] and fb["used"] == "previous-alpha (TorchJD)"


def test_nashmtl_unexpected_error_uses_adapter_fallback(monkeypatch):
    import cvxpy

    nash = B.NashMTL(2, max_norm=0.0)
    jac = make_matrix("normal", 2)
    w0 = nash.weights(stats_of(jac))
    monkeypatch.setattr(cvxpy.Problem, "solve", lambda self, *a, **k: (_ for _ in ()).throw(ArithmeticError("boom")))
    w1 = nash.weights(stats_of(jac))
    assert torch.equal(w1, w0)
    assert nash.last_info["fallback"]["used"] == "previous"


def test_nashmtl_update_weights_every_reuses_weights():
    nash = B.NashMTL(2, max_norm=0.0, update_weights_every=3)
    w = [nash.weights(stats_of(make_matrix("normal", 2, seed=s))) for s in range(4)]
    assert torch.equal(w[0], w[1]) and torch.equal(w[0], w[2]) and not torch.equal(w[0], w[3])


def test_dwa_epoch_history_and_step_history():
    ep = B.DWA(history="epoch")
    st = B.DWA(history="step")
    seq = [torch.tensor([1.0, 1.0]), torch.tensor([0.5, 0.9]), torch.tensor([0.4, 0.8])]
    for losses in seq[:2]:
        ep(losses), st(losses)
        ep.after_step(lambda: losses), st.after_step(lambda: losses)
    ep(seq[2]), st(seq[2])
    assert ep.last_info["weights"] == [1.0, 1.0]  # no epoch ended yet
    r = torch.tensor([0.5, 0.9]) / 2.0
    expected = 2 * torch.softmax(r, 0)
    assert torch.allclose(torch.tensor(st.last_info["weights"]), expected)
    ep.end_epoch()  # epoch 1: mean of the three batches
    ep(seq[0])
    ep.end_epoch()  # epoch 2: [1, 1]
    ep(seq[1])
    avg1 = torch.stack(seq).mean(0)
    expected = 2 * torch.softmax((torch.ones(2) / avg1) / 2.0, 0)
    assert torch.allclose(torch.tensor(ep.last_info["weights"]), expected)
