"""Golden values on J = [[-4, 1, 1], [6, 1, 1]] from independent routes, and differential tests vs TorchJD.

Independent routes: cvxpy solves of each method's defining problem (MGDA, UPGrad, CAGrad, Nash-MTL),
hand computation (PCGrad, IMTL-G's closed form from its paper, Tchebycheff, GradNorm's step), and an
SVD route for Aligned-MTL. Nothing here is copied from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("torchjd")
cp = pytest.importorskip("cvxpy")

import methods.baselines as B  # noqa: E402
from methods import GradientStats, mtl_backward  # noqa: E402

J = np.array([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
LOSSES = np.array([1.0, 2.0])


def _stats(jac=J, losses=LOSSES):
    return GradientStats(torch.tensor(jac, dtype=torch.float64), torch.tensor(losses, dtype=torch.float64))


def _solve(objective, constraints, var):
    cp.Problem(cp.Minimize(objective), constraints).solve(solver=cp.CLARABEL)
    return np.asarray(var.value)


def ref_mgda(jac):
    w = cp.Variable(jac.shape[0])
    return _solve(cp.sum_squares(jac.T @ w), [w >= 0, cp.sum(w) == 1], w)


def ref_upgrad(jac):
    k = jac.shape[0]
    g = jac @ jac.T
    total = np.zeros(k)
    for i in range(k):  # project (1/K) g_i onto the dual cone: min v^T G v s.t. v >= e_i / K
        v = cp.Variable(k)
        total += _solve(cp.quad_form(v, cp.psd_wrap(g)), [v >= np.eye(k)[i] / k], v)
    return total


def ref_cagrad(jac, c=0.4, rescale=1.0):
    k = jac.shape[0]
    g0 = jac.mean(axis=0)
    sqrt_phi = c * np.linalg.norm(g0)
    w = cp.Variable(k)
    w_opt = _solve((jac @ g0) @ w + sqrt_phi * cp.norm(jac.T @ w, 2), [w >= 0, cp.sum(w) == 1], w)
    gw = jac.T @ w_opt
    return (np.ones(k) / k + sqrt_phi / np.linalg.norm(gw) * w_opt) / rescale


def ref_nash(jac, max_norm=1.0):
    """Nash bargaining: G a = 1/a, a > 0  <=>  argmin 0.5 a^T G a - sum log a (convex)."""
    k = jac.shape[0]
    a = cp.Variable(k)
    alpha = _solve(0.5 * cp.quad_form(a, cp.psd_wrap(jac @ jac.T)) - cp.sum(cp.log(a)), [], a)
    norm = np.linalg.norm(jac.T @ alpha)
    return alpha / norm * max_norm if (max_norm > 0 and norm > max_norm) else alpha


def ref_pcgrad_two(jac):
    g1, g2 = jac
    dot = g1 @ g2
    # g1' = g1 - dot/|g2|^2 g2 ; g2' = g2 - dot/|g1|^2 g1 ; sum = (1 - dot/|g1|^2) g1 + (1 - dot/|g2|^2) g2
    return np.array([1 - min(dot, 0) / (g1 @ g1), 1 - min(dot, 0) / (g2 @ g2)])


def ref_imtlg_update(jac):
    """IMTL-G's closed form (its paper, eq. 6): alpha_{2:} = g_1 U^T (D U^T)^{-1}, alpha_1 = 1 - sum."""
    u = jac / np.linalg.norm(jac, axis=1, keepdims=True)
    d_mat = jac[0] - jac[1:]
    u_mat = u[0] - u[1:]
    rest = jac[0] @ u_mat.T @ np.linalg.inv(d_mat @ u_mat.T)
    alpha = np.concatenate([[1 - rest.sum()], rest])
    return jac.T @ alpha


def ref_aligned_update(jac, pref=None):
    """d = sigma_min W U^T p, from the SVD J = U S W^T (Aligned-MTL, eq. 10)."""
    k = jac.shape[0]
    p = np.ones(k) / k if pref is None else pref
    u, s, wt = np.linalg.svd(jac, full_matrices=False)
    return s.min() * wt.T @ (u.T @ p)


def test_hand_values_sanity():
    # the TorchJD documentation's values for this J, reproduced by our references
    assert np.allclose(J.T @ ref_mgda(J), [0, 1, 1], atol=1e-6)
    assert np.allclose(J.T @ ref_upgrad(J), [0.2929, 1.9004, 1.9004], atol=1e-3)
    assert np.allclose(J.T @ ref_pcgrad_two(J), [0.5848, 3.8012, 3.8012], atol=1e-4)


@pytest.mark.parametrize(
    "name, comb, ref, atol",
    [
        ("MGDA", lambda: B.MGDA(), ref_mgda, 1e-6),
        ("UPGrad", lambda: B.UPGrad(), ref_upgrad, 2e-3),  # TorchJD regularizes G by reg_eps=1e-4
        ("CAGrad", lambda: B.CAGrad(c=0.4), lambda j: ref_cagrad(j, 0.4, 1 + 0.4**2), 1e-4),
        ("CAGrad-rescale0", lambda: B.CAGrad(c=0.4, rescale=0), lambda j: ref_cagrad(j, rescale=1.0), 1e-4),
        ("CAGrad-rescale2", lambda: B.CAGrad(c=0.5, rescale=2), lambda j: ref_cagrad(j, 0.5, 1.5), 1e-4),
        ("NashMTL", lambda: B.NashMTL(2), ref_nash, 5e-3),
        ("NashMTL-noclip", lambda: B.NashMTL(2, max_norm=0.0), lambda j: ref_nash(j, 0.0), 5e-3),
        ("PCGrad", lambda: B.PCGrad(), ref_pcgrad_two, 1e-9),
    ],
)
def test_golden_weights(name, comb, ref, atol):
    w = comb().weights(_stats()).numpy()
    assert np.allclose(w, ref(J), atol=atol), (name, w, ref(J))


@pytest.mark.parametrize("name, comb, ref", [("IMTLG", lambda: B.IMTLG(), ref_imtlg_update),
                                             ("AlignedMTL", lambda: B.AlignedMTL(), ref_aligned_update)])
@pytest.mark.parametrize("seed", [None, 0, 1])
def test_golden_updates(name, comb, ref, seed):
    jac = J if seed is None else np.random.default_rng(seed).normal(size=(3, 5))
    d = comb().aggregate(_stats(jac, np.ones(jac.shape[0]))).numpy()
    assert np.allclose(d, ref(jac), atol=1e-6), (name, d, ref(jac))


@pytest.mark.parametrize("seed", range(3))
def test_mgda_and_upgrad_vs_cvxpy_random(seed):
    jac = np.random.default_rng(seed).normal(size=(4, 6))
    w = B.MGDA(epsilon=1e-9, max_iters=10000).weights(_stats(jac, np.ones(4))).numpy()
    # Frank-Wolfe converges sublinearly: the min norm agrees to ~1e-3 relative
    assert np.linalg.norm(jac.T @ w) == pytest.approx(np.linalg.norm(jac.T @ ref_mgda(jac)), rel=1e-3)
    assert np.allclose(B.UPGrad().weights(_stats(jac, np.ones(4))).numpy(), ref_upgrad(jac), atol=5e-3)


def test_gradnorm_hand_computed_steps():
    jac = np.array([[3.0, 0.0], [0.0, 1.0]])  # norms 3 and 1
    gn = B.GradNorm(alpha=1.5, lr=0.1)
    w0 = gn.weights(_stats(jac, [2.0, 1.0])).numpy()
    assert np.allclose(w0, [1.0, 1.0])  # the first step uses the initial weights
    # step 0: L/L0 = [1, 1] -> r = [1, 1]; G = [3, 1], Gbar = 2, target = [2, 2]
    # dLgrad/dw = sign(G - target) * n = [+3, -1]; w = [1 - 0.3, 1 + 0.1] = [0.7, 1.1]; renorm to sum 2
    w1_expected = np.array([0.7, 1.1]) * 2 / 1.8
    assert np.allclose(gn.last_info["next_weights"], w1_expected)
    # step 1 with losses [1, 1]: L~ = [0.5, 1], r = [2/3, 4/3]
    w1 = gn.weights(_stats(jac, [1.0, 1.0])).numpy()
    assert np.allclose(w1, w1_expected)
    g = w1_expected * np.array([3.0, 1.0])
    target = g.mean() * np.array([2 / 3, 4 / 3]) ** 1.5
    w2 = w1_expected - 0.1 * np.sign(g - target) * np.array([3.0, 1.0])
    w2 = w2 * 2 / w2.sum()
    assert np.allclose(gn.last_info["next_weights"], w2)
    assert gn.last_info["gradnorm_loss"] == pytest.approx(np.abs(g - target).sum())


def test_tchebycheff_vs_hand():
    losses = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64, requires_grad=True)
    tch = B.Tchebycheff(weights=[0.5, 0.2, 0.3], ideal=[0.1, 0.0, -0.5])
    val = tch(losses)
    terms = [0.5 * 0.4, 0.2 * 2.0, 0.3 * 1.5]  # 0.2, 0.4, 0.45 -> max at task 2
    assert float(val.detach()) == pytest.approx(max(terms))
    (grad,) = torch.autograd.grad(val, losses)
    assert grad.tolist() == pytest.approx([0.0, 0.0, 0.3])
    assert tch.last_info["argmax"] == 2


def test_smooth_tchebycheff_bounds_tchebycheff():
    losses = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    t = float(B.Tchebycheff()(losses))
    for mu in (0.01, 0.1, 1.0):
        s = float(B.SmoothTchebycheff(mu=mu)(losses))
        assert t <= s <= t + mu * np.log(3) + 1e-12


def test_loss_level_hand_values():
    losses = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    assert float(B.EqualWeighting()(losses)) == pytest.approx(7 / 3)
    assert float(B.LinearScalarization([1.0, 0.5, 0.25])(losses)) == pytest.approx(3.0)
    uw = B.UncertaintyWeighting(3)
    with torch.no_grad():
        uw.log_var.copy_(torch.tensor([0.0, np.log(2.0), -1.0]))
    expected = sum(0.5 * np.exp(-s) * l + 0.5 * s for s, l in zip([0.0, np.log(2.0), -1.0], [1.0, 2.0, 4.0]))
    assert float(uw(losses).detach()) == pytest.approx(expected, rel=1e-6)
    famo = B.FAMO(3)
    # z = 1/3: c = 1 / sum(z / L); value = c * sum z log L
    z = np.ones(3) / 3
    c = 1 / np.sum(z / np.array([1.0, 2.0, 4.0]))
    assert float(famo(losses)) == pytest.approx(c * np.sum(z * np.log([1.0, 2.0, 4.0])), rel=1e-6)


# ---- differential: our adapter vs TorchJD's own aggregators and its autojac ---------------------


def _torchjd_pairs():
    from torchjd import aggregation as A

    return [
        ("MGDA", lambda k: B.MGDA(), lambda k: A.MGDA(), 1.0),
        ("PCGrad", lambda k: B.PCGrad(), lambda k: A.PCGrad(), 1.0),
        ("CAGrad", lambda k: B.CAGrad(c=0.4, rescale=0), lambda k: A.CAGrad(c=0.4), 1.0),
        ("IMTLG", lambda k: B.IMTLG(), lambda k: A.IMTLG(), 1.0),
        ("NashMTL", lambda k: B.NashMTL(k), lambda k: A.NashMTL(n_tasks=k), 1.0),
        ("AlignedMTL", lambda k: B.AlignedMTL(), lambda k: A.AlignedMTL(), 1.0),
        ("UPGrad", lambda k: B.UPGrad(), lambda k: A.UPGrad(), 1.0),
    ]


@pytest.mark.parametrize("idx", range(7), ids=[p[0] for p in _torchjd_pairs()])
def test_same_update_as_torchjd_autojac(idx):
    from torchjd.autojac import jac_to_grad
    from torchjd.autojac import mtl_backward as tjd_mtl_backward

    name, ours, theirs, _ = _torchjd_pairs()[idx]
    k = 2 if name == "PCGrad" else 3  # PCGrad with K > 2 draws a random order

    def build(seed):
        torch.manual_seed(seed)
        trunk = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 4)).double()
        heads = [torch.nn.Linear(4, 1).double() for _ in range(k)]
        x = torch.randn(16, 5, dtype=torch.float64)
        z = trunk(x)
        losses = [(h(z).squeeze(1) - i).pow(2).mean() for i, h in enumerate(heads)]
        return trunk, heads, z, losses

    trunk, heads, z, losses = build(0)
    mtl_backward(torch.stack(losses), ours(k), shared_params=trunk.parameters(),
                 task_params=[h.parameters() for h in heads])
    mine = [p.grad.clone() for p in [*trunk.parameters(), *(q for h in heads for q in h.parameters())]]
    trunk, heads, z, losses = build(0)
    shared = list(trunk.parameters())
    tjd_mtl_backward(losses, features=z, shared_params=shared, tasks_params=[list(h.parameters()) for h in heads])
    jac_to_grad(shared, theirs(k))
    ref = [p.grad.clone() for p in [*trunk.parameters(), *(q for h in heads for q in h.parameters())]]
    for a, b in zip(mine, ref):
        assert torch.allclose(a, b, atol=1e-7, rtol=1e-6), name
