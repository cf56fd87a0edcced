"""Pareto MTL, EPO and MGDA-UB directions against their defining problems solved with cvxpy (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.mt2o import (
    EPO,
    MGDAUB,
    MT2OTrainer,
    ParetoMTL,
    Population,
    epo_weights,
    make_preferences,
    min_norm_simplex,
    pmtl_weights,
    weights_to_rays,
)

from ._helpers import TinyMTL, batch, mse

cp = pytest.importorskip("cvxpy")


def _cvx_min_norm(g: np.ndarray) -> float:
    lam = cp.Variable(g.shape[0])
    prob = cp.Problem(cp.Minimize(cp.quad_form(lam, cp.psd_wrap(g))), [lam >= 0, cp.sum(lam) == 1])
    prob.solve(solver=cp.CLARABEL)
    return float(prob.value)


@pytest.mark.parametrize("seed", range(5))
def test_min_norm_simplex_matches_cvxpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    j = rng.normal(size=(4, 7)) * rng.uniform(0.1, 10, size=(4, 1))
    g = j @ j.T
    lam = min_norm_simplex(torch.as_tensor(g)[None], iters=3000)[0].numpy()
    assert lam.min() >= 0 and abs(lam.sum() - 1) < 1e-12
    assert lam @ g @ lam == pytest.approx(_cvx_min_norm(g), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_pmtl_direction_matches_cvxpy_qp(m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = 6
    jac = rng.normal(size=(m, p))
    losses = rng.uniform(0.2, 2.0, size=m)
    w = make_preferences("circle", 2, n=5) if m == 2 else make_preferences("das_dennis", 3, divisions=2)
    rays = weights_to_rays(w)
    k = int(rng.integers(0, rays.shape[0]))
    wt, _ = pmtl_weights(torch.as_tensor(jac @ jac.T), torch.as_tensor(losses), rays, k, iters=4000)
    d_ours = -(jac.T @ wt.numpy())
    # the defining QP (arXiv 1912.12854, eq. 14): min α + ½‖d‖², ∇L_i·d ≤ α, ∇G_j·d ≤ α (active j)
    u = rays.numpy()
    rows = [jac[i] for i in range(m)]
    for j in range(u.shape[0]):
        if j != k and (u[j] - u[k]) @ losses >= 0:
            rows.append((u[j] - u[k]) @ jac)
    a = np.stack(rows)
    d, al = cp.Variable(p), cp.Variable()
    cp.Problem(cp.Minimize(al + 0.5 * cp.sum_squares(d)), [a @ d <= al]).solve(solver=cp.CLARABEL)
    assert np.allclose(d_ours, d.value, atol=1e-5)


def test_pmtl_warmup_uses_only_violated_constraints() -> None:
    rays = weights_to_rays(make_preferences("circle", 2, n=5))
    g = torch.eye(2, dtype=torch.float64)
    # losses far along task 1: subproblem 4's ray (0,1)... pick k = 0 with a violated constraint
    losses = torch.tensor([0.1, 2.0], dtype=torch.float64)
    w, constrained = pmtl_weights(g, losses, rays, 0, warmup=True)
    u = rays.double()
    viol = [(u[j] - u[0]) @ losses > 0 for j in range(1, 5)]
    assert constrained == any(viol)


def _cvx_epo(c: np.ndarray, losses: np.ndarray, r: np.ndarray, eps: float) -> tuple[float, str]:
    m = len(losses)
    r = r / r.sum()
    lhat = r * losses / (r * losses).sum()
    mu = float(np.sum(lhat * np.log(m * lhat)))
    a = r * (np.log(m * lhat) - mu)
    ca = c @ a
    b = cp.Variable(m)
    cons = [b >= 0, cp.sum(b) == 1]
    if mu > eps:
        for i in range(m):
            if lhat[i] == lhat.max():
                cons.append(c[i] @ b >= 0)
            elif ca[i] <= 0:
                cons.append(c[i] @ b >= ca[i])
        prob = cp.Problem(cp.Maximize(ca @ b), cons)
        mode = "balance"
    else:
        cons += [c @ b >= 0, ca @ b >= min(ca.max(), 0)]
        prob = cp.Problem(cp.Maximize(cp.sum(c @ b)), cons)
        mode = "descent"
    prob.solve(solver=cp.CLARABEL)
    return float(prob.value), mode


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("seed", range(5))
def test_epo_lp_matches_cvxpy(m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    jac = rng.normal(size=(m, 5))
    c = jac @ jac.T
    r = rng.uniform(0.1, 1, size=m)
    losses = rng.uniform(0.2, 2, size=m) if seed != 0 else (1 / r) * 0.7  # seed 0: exactly balanced
    beta, mode = epo_weights(c, losses, r, 1e-4)
    val, cmode = _cvx_epo(c, losses, r, 1e-4)
    assert mode == cmode
    assert beta.min() >= -1e-9 and abs(beta.sum() - 1) < 1e-9
    rr = r / r.sum()
    lhat = rr * losses / (rr * losses).sum()
    a = rr * (np.log(m * lhat) - float(np.sum(lhat * np.log(m * lhat))))
    obj = (c @ a) @ beta if mode == "balance" else np.sum(c @ beta)
    assert obj == pytest.approx(val, abs=1e-6, rel=1e-6)


def test_epo_balances_a_toy() -> None:
    """Two quadratics, r = (0.3, 0.7): EPO drives r_i·L_i to equality (its defining property)."""
    x = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    r = np.array([0.3, 0.7])
    for _ in range(300):
        losses = torch.stack([((x - 1) ** 2).sum() + 0.1, ((x + 1) ** 2).sum() + 0.1])
        jac = torch.stack([torch.autograd.grad(losses[i], x, retain_graph=True)[0] for i in range(2)])
        beta, _ = epo_weights((jac @ jac.T).detach().numpy(), losses.detach().numpy(), r)
        with torch.no_grad():
            x -= 0.05 * (jac.T @ torch.as_tensor(beta))
    rl = r * losses.detach().numpy()
    lhat = rl / rl.sum()
    mu = float(np.sum(lhat * np.log(2 * lhat)))
    assert mu < 2e-4  # within EPO's balance tolerance ε = 1e-4 (one more step of slack)
    assert abs(rl[0] - rl[1]) / rl.sum() < 0.03
    assert abs(float((x[0] - x[1]).detach())) < 1e-6  # on the Pareto set {x1 = x2}


@pytest.mark.parametrize("direction", ["pmtl", "epo", "mgda"])
def test_directions_vmap_equals_loop(direction: str) -> None:
    w = make_preferences("circle", 2, n=3)
    states = []
    for vec in (True, False):
        d = {"pmtl": lambda: ParetoMTL(weights_to_rays(w), warmup_steps=1, iters=2000),
             "epo": lambda: EPO(), "mgda": lambda: MGDAUB(iters=2000)}[direction]()
        pop = Population(TinyMTL, 3, vectorize=vec, dtype=torch.float64)
        tr = MT2OTrainer(pop, w, loss_fn=mse, direction=d, opt_factory=lambda p: torch.optim.SGD(p, lr=0.1))
        for t in range(3):
            tr.train_step(*batch(seed=t))
        states.append(pop.state_dict())
    for n in states[0]:
        assert torch.allclose(states[0][n], states[1][n], atol=1e-8), n


def test_mgda_ub_weights_match_cvxpy_on_representation() -> None:
    w = make_preferences("circle", 2, n=2)
    pop = Population(lambda: TinyMTL(m=3), 2, dtype=torch.float64)
    d = MGDAUB(iters=4000)
    x, y = batch(m=3)
    tr = MT2OTrainer(pop, make_preferences("das_dennis", 3, divisions=1)[:2], loss_fn=mse, direction=d,
                     opt_factory=lambda p: torch.optim.SGD(p, lr=0.0))
    del w
    tr.train_step(x, y)
    mods = Population(lambda: TinyMTL(m=3), 2, dtype=torch.float64).unstack()
    for k, mod in enumerate(mods):
        z = mod.encode(x).detach().requires_grad_(True)
        losses = mse(mod.decode(z), y)
        gz = np.stack([torch.autograd.grad(losses[i], z, retain_graph=True)[0].reshape(-1).numpy() for i in range(3)])
        lam = d.last_weights[k].numpy()
        g = gz @ gz.T
        assert lam @ g @ lam == pytest.approx(_cvx_min_norm(g), rel=1e-5, abs=1e-10)


@pytest.mark.parametrize("step", [0, 5])
def test_pmtl_batched_weights_equal_per_model(step: int) -> None:
    rng = np.random.default_rng(7)
    w = make_preferences("circle", 2, n=5)
    jac = torch.as_tensor(rng.normal(size=(5, 2, 6)))
    losses = torch.as_tensor(rng.uniform(0.1, 2, size=(5, 2)))
    d = ParetoMTL(weights_to_rays(w), warmup_steps=3, iters=4000, normalize=False)
    batched = d.weights(jac @ jac.transpose(1, 2), losses, step)
    for k in range(5):
        wk, _ = pmtl_weights(jac[k] @ jac[k].T, losses[k], weights_to_rays(w), k, warmup=step < 3, iters=4000)
        assert torch.allclose(jac[k].T @ batched[k], jac[k].T @ wk, atol=1e-6)
