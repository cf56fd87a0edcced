"""MT2O method tests (specs/mt2o.md §1.8): preferences, transfer matrices, the stacked step, rules."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from methods.mt2o import (
    Elitist,
    FixedSimilarity,
    Identity,
    Linear,
    MGDAUB,
    MT2OTrainer,
    Population,
    SmoothTchebycheff,
    Tchebycheff,
    apply_transfer,
    check_transfer_matrix,
    circle,
    das_dennis,
    dirichlet,
    make_preferences,
    shrink,
    similarity_matrix,
    time_to_fraction,
    weights_to_rays,
)

from ._helpers import TinyMTL, batch, mse

DTYPES = [torch.float32, torch.float64]


# ----------------------------------------------------------------------------- preferences
def test_circle_weights_match_spec() -> None:
    w = make_preferences("circle", 2, n=5)
    exp = torch.tensor([[1, 0], [.7071, .2929], [.5, .5], [.2929, .7071], [0, 1]], dtype=torch.float64)
    assert torch.allclose(w, exp, atol=1e-4)
    wt = make_preferences("circle_trimmed", 2, n=5)
    assert torch.allclose(wt[:3], torch.tensor([[.9088, .0912], [.6784, .3216], [.5, .5]], dtype=torch.float64),
                          atol=1e-4)


def test_other_generators() -> None:
    assert das_dennis(3, 4).shape == (15, 3) and torch.allclose(das_dennis(3, 4).sum(1), torch.ones(15, dtype=torch.float64))
    assert das_dennis(7, 1).shape == (7, 7)
    s = shrink(das_dennis(7, 1), 0.35)
    assert torch.allclose(s[0], torch.tensor([0.7] + [0.05] * 6, dtype=torch.float64))
    d1 = dirichlet(4, 3, generator=torch.Generator().manual_seed(1))
    d2 = dirichlet(4, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(d1, d2) and torch.allclose(d1.sum(1), torch.ones(4, dtype=torch.float64))
    u = weights_to_rays(make_preferences("circle", 2, n=5))
    assert torch.allclose(u, circle(5).flip(0), atol=1e-12)  # reversed pairing (spec §1.1)
    with pytest.raises(ValueError, match="n_obj"):
        make_preferences("circle", 3)
    with pytest.raises(ValueError, match="generator"):
        make_preferences("nope", 2)


# ----------------------------------------------------------------------------- transfer matrices
def test_similarity_numbers_match_spec() -> None:
    s = similarity_matrix(make_preferences("circle", 2, n=5))
    assert torch.allclose(s[0, 1:], torch.tensor([.4802, .4142, .2768, 0.0], dtype=torch.float64), atol=1e-4)
    assert torch.allclose(s.sum(1)[:3], torch.tensor([1.1712, 1.6514, 1.7889], dtype=torch.float64), atol=1e-4)
    assert abs(FixedSimilarity().bound(make_preferences("circle", 2, n=5)) - 0.5590) < 1e-4
    st = similarity_matrix(make_preferences("circle_trimmed", 2, n=5))
    assert torch.allclose(st[0, 1:], torch.tensor([.4850, .4364, .3406, .1657], dtype=torch.float64), atol=1e-4)
    assert abs(FixedSimilarity().bound(make_preferences("circle_trimmed", 2, n=5)) - 0.5427) < 1e-4
    assert abs(FixedSimilarity().bound(make_preferences("circle", 2, n=10)) - 0.2411) < 1e-4


def test_neighbourhood_symmetric() -> None:
    s = similarity_matrix(make_preferences("circle", 2, n=5), neighbours=2)
    assert torch.equal(s, s.T)
    assert s[0, 3] == 0 and s[0, 1] > 0


def test_fixed_matrix_valid_and_bound_raises() -> None:
    w = make_preferences("circle", 2, n=5)
    m = FixedSimilarity(alpha=1.0).matrix(w, lr=0.5, lr0=0.5)
    assert bool((m >= 0).all()) and torch.allclose(m.sum(1), torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="α·η_c"):
        FixedSimilarity(alpha=1.0).matrix(w, lr=0.6, lr0=0.6)
    with pytest.raises(ValueError, match="alpha"):
        FixedSimilarity(alpha=-1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        check_transfer_matrix(torch.full((2, 2), 0.6))
    # frozen vs current vs anneal
    fr = FixedSimilarity(alpha=2.0, coupling="frozen")
    assert fr.strength(lr=0.01, lr0=0.1, progress=0.5) == pytest.approx(0.2)
    assert FixedSimilarity(alpha=2.0, coupling="current").strength(0.01, 0.1, 0.5) == pytest.approx(0.02)
    an = FixedSimilarity(alpha=2.0, coupling="anneal")
    assert an.strength(0.01, 0.1, 0.5) == pytest.approx(0.2) and an.strength(0.01, 0.1, 0.9) == pytest.approx(0.1)


def test_apply_transfer_identity_and_integer_buffers() -> None:
    pop = Population(lambda: TinyMTL(bn=True), 3, vectorize=True, dtype=torch.float64)
    with torch.no_grad():
        pop.buffers["trunk.1.running_mean"].copy_(torch.randn(3, 4, dtype=torch.float64))
        pop.buffers["trunk.1.num_batches_tracked"].copy_(torch.tensor([1, 2, 3]))
    before = pop.state_dict()
    pop.mix(torch.eye(3, dtype=torch.float64))
    assert all(torch.equal(before[n], t) for n, t in pop.state_dict().items())
    m = torch.tensor([[.5, .5, 0], [0, 1, 0], [.2, .3, .5]], dtype=torch.float64)
    pop.mix(m)
    after = pop.state_dict()
    assert torch.allclose(after["trunk.1.running_mean"], m @ before["trunk.1.running_mean"], atol=1e-12)
    assert torch.equal(after["trunk.1.num_batches_tracked"], torch.tensor([1, 2, 3]))
    assert torch.allclose(after["heads.0.weight"], torch.einsum("kj,jab->kab", m, before["heads.0.weight"]))


def test_trunk_only_transfer_keeps_heads() -> None:
    pop = Population(TinyMTL, 3, dtype=torch.float64)
    before = pop.state_dict()
    w = make_preferences("circle", 2, n=3)
    tr = MT2OTrainer(pop, w, loss_fn=mse, opt_factory=lambda p: torch.optim.SGD(p, lr=0.1),
                     rule=FixedSimilarity(alpha=1.0), transfer_params="trunk")
    pop.mix(tr.rule.matrix(w, lr=0.1, lr0=0.1), tr.names)
    after = pop.state_dict()
    assert torch.equal(before["heads.0.weight"], after["heads.0.weight"])
    assert not torch.equal(before["trunk.0.weight"], after["trunk.0.weight"])


# ----------------------------------------------------------------------------- the stacked step
def _separate_ls_runs(w: torch.Tensor, seeds: list[int], steps: int, opt: str, dtype: torch.dtype
                      ) -> list[dict[str, torch.Tensor]]:
    out = []
    for k, s in enumerate(seeds):
        with torch.random.fork_rng():
            torch.manual_seed(s)
            model = TinyMTL().to(dtype)
        o = (torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if opt == "sgd"
             else torch.optim.Adam(model.parameters(), lr=0.01))
        for t in range(steps):
            x, y = batch(seed=t, dtype=dtype)
            o.zero_grad()
            (w[k].to(dtype) * mse(model(x), y)).sum().backward()
            o.step()
        out.append({n: p.detach().clone() for n, p in model.named_parameters()})
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("vectorize", [True, False])
def test_alpha_zero_equals_independent_ls(dtype: torch.dtype, opt: str, vectorize: bool) -> None:
    """Stacked/looped population with α = 0 (and Identity) == K separate LS runs."""
    w = make_preferences("circle", 2, n=4).to(dtype)
    seeds = [11, 12, 13, 14]
    ref = _separate_ls_runs(w, seeds, 5, opt, dtype)
    for rule in (Identity(), FixedSimilarity(alpha=0.0)):
        pop = Population(TinyMTL, 4, seeds, vectorize=vectorize, dtype=dtype)
        mk = ((lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)) if opt == "sgd"
              else (lambda p: torch.optim.Adam(p, lr=0.01)))
        tr = MT2OTrainer(pop, w, loss_fn=mse, opt_factory=mk, rule=rule)
        for t in range(5):
            tr.train_step(*batch(seed=t, dtype=dtype))
        got = pop.unstack()
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        for k in range(4):
            for n, p in got[k].named_parameters():
                assert torch.allclose(p, ref[k][n], atol=tol, rtol=0), (k, n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fixed_step_equals_hand_computed_momentum(dtype: torch.dtype) -> None:
    """θ⁺ = Σ_j M_kj θ_j − η·buf, buf = μ·buf + ∇g_k(θ_k) (gradient at the un-mixed point); state never mixed."""
    w = make_preferences("circle", 2, n=3).to(dtype)
    pop = Population(TinyMTL, 3, dtype=dtype)
    rule = FixedSimilarity(alpha=1.0)
    lr, mom = 0.3, 0.9
    tr = MT2OTrainer(pop, w, loss_fn=mse, rule=rule, opt_factory=lambda p: torch.optim.SGD(p, lr=lr, momentum=mom))
    m = rule.matrix(w, lr=lr, lr0=lr)
    theta = {n: t.detach().clone() for n, t in pop.params.items()}
    buf = {n: torch.zeros_like(t) for n, t in theta.items()}
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for t in range(3):
        x, y = batch(seed=t, dtype=dtype)
        # hand: gradient at θ_k (un-mixed), per model via a fresh module
        grads = {n: torch.zeros_like(v) for n, v in theta.items()}
        for k in range(3):
            mod = TinyMTL().to(dtype)
            mod.load_state_dict({n: v[k] for n, v in theta.items()})
            (w[k] * mse(mod(x), y)).sum().backward()
            for n, p in mod.named_parameters():
                grads[n][k] = p.grad
        for n in theta:
            buf[n] = mom * buf[n] + grads[n]
            theta[n] = torch.einsum("kj,j...->k...", m, theta[n]) - lr * buf[n]
        tr.train_step(x, y)
        for n in theta:
            assert torch.allclose(pop.params[n].detach(), theta[n], atol=tol, rtol=0), (t, n)


def test_fixed_step_adam_analogue() -> None:
    dtype = torch.float64
    w = make_preferences("circle", 2, n=3).to(dtype)
    pop = Population(TinyMTL, 3, dtype=dtype)
    rule = FixedSimilarity(alpha=1.0)
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    tr = MT2OTrainer(pop, w, loss_fn=mse, rule=rule, opt_factory=lambda p: torch.optim.Adam(p, lr=lr))
    m = rule.matrix(w, lr=lr, lr0=lr)
    theta = {n: t.detach().clone() for n, t in pop.params.items()}
    m1 = {n: torch.zeros_like(t) for n, t in theta.items()}
    m2 = {n: torch.zeros_like(t) for n, t in theta.items()}
    for t in range(1, 4):
        x, y = batch(seed=t, dtype=dtype)
        grads = {n: torch.zeros_like(v) for n, v in theta.items()}
        for k in range(3):
            mod = TinyMTL().to(dtype)
            mod.load_state_dict({n: v[k] for n, v in theta.items()})
            (w[k] * mse(mod(x), y)).sum().backward()
            for n, p in mod.named_parameters():
                grads[n][k] = p.grad
        for n in theta:
            m1[n] = b1 * m1[n] + (1 - b1) * grads[n]
            m2[n] = b2 * m2[n] + (1 - b2) * grads[n] ** 2
            upd = (m1[n] / (1 - b1 ** t)) / ((m2[n] / (1 - b2 ** t)).sqrt() + eps)
            theta[n] = torch.einsum("kj,j...->k...", m, theta[n]) - lr * upd
        tr.train_step(x, y)
        for n in theta:
            assert torch.allclose(pop.params[n].detach(), theta[n], atol=1e-12, rtol=0), (t, n)


def test_identity_matrix_rule_equals_no_transfer() -> None:
    class EyeRule(FixedSimilarity):
        def matrix(self, weights, losses=None, **kw):  # type: ignore[override]
            return torch.eye(weights.shape[0], dtype=weights.dtype)

    w = make_preferences("circle", 2, n=3)
    pops = []
    for rule in (EyeRule(alpha=1.0), Identity()):
        pop = Population(TinyMTL, 3, dtype=torch.float64)
        tr = MT2OTrainer(pop, w, loss_fn=mse, rule=rule, opt_factory=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5))
        for t in range(4):
            tr.train_step(*batch(seed=t))
        pops.append(pop.state_dict())
    assert all(torch.equal(pops[0][n], pops[1][n]) for n in pops[0])


@pytest.mark.parametrize("scal", [Linear(), Tchebycheff(), SmoothTchebycheff(0.05)])
def test_vmap_equals_loop_with_transfer(scal: object) -> None:
    w = make_preferences("circle", 2, n=5)
    states = []
    for vec in (True, False):
        pop = Population(TinyMTL, 5, vectorize=vec, dtype=torch.float64)
        tr = MT2OTrainer(pop, w, loss_fn=mse, scalarization=scal, rule=FixedSimilarity(alpha=1.0),  # type: ignore[arg-type]
                         opt_factory=lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9))
        for t in range(4):
            tr.train_step(*batch(seed=t))
        states.append(pop.state_dict())
    for n in states[0]:
        assert torch.allclose(states[0][n], states[1][n], atol=1e-10), n


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("direction", ["scalarized", "mgda_ub"])
def test_compute_loop_equals_the_module_path(bn: bool, direction: str) -> None:
    """``compute="loop"`` (stacked parameters, K calls on their slices) trains exactly like K modules, BatchNorm
    statistics in train mode included (vmap cannot run those), and like the vmap path where vmap can run."""
    w = make_preferences("circle", 2, n=4)
    paths = [dict(vectorize=True, compute="loop"), dict(vectorize=False)] + ([] if bn else [dict(vectorize=True)])
    states = []
    for kw in paths:
        pop = Population(lambda: TinyMTL(bn=bn), 4, dtype=torch.float64, **kw)  # type: ignore[arg-type]
        d = MGDAUB() if direction == "mgda_ub" else None
        tr = MT2OTrainer(pop, w, loss_fn=mse, rule=FixedSimilarity(alpha=1.0), **({"direction": d} if d else {}),
                         opt_factory=lambda p: torch.optim.Adam(p, lr=0.05))
        for t in range(3):
            tr.train_step(*batch(seed=t))
        pop.eval()
        states.append((pop.state_dict(), torch.stack(pop(batch(seed=9)[0]))))
    for st, out in states[1:]:
        assert torch.allclose(out, states[0][1], atol=1e-12)
        for n in st:
            assert torch.allclose(st[n].double(), states[0][0][n].double(), atol=1e-12), n
    if bn:
        assert not torch.equal(states[0][0]["trunk.1.running_mean"], torch.zeros(4, 4, dtype=torch.float64))
        assert torch.equal(states[0][0]["trunk.1.num_batches_tracked"], torch.full((4,), 3))


def test_compute_must_be_known() -> None:
    with pytest.raises(ValueError, match="Parameter `compute`"):
        Population(TinyMTL, 2, compute="grouped")


def test_stch_gradient_formula() -> None:
    g = torch.Generator().manual_seed(0)
    losses = torch.rand(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(4, 3, generator=g, dtype=torch.float64)
    w = w / w.sum(1, keepdim=True)
    s = SmoothTchebycheff(mu=0.1, ideal=0.0)
    s(losses, w).sum().backward()
    expected = torch.softmax(w * losses.detach() / 0.1, dim=1) * w
    assert torch.allclose(losses.grad, expected, atol=1e-14)
    t = Tchebycheff()(losses.detach(), w)
    assert torch.allclose(t, (w * losses.detach()).amax(1))


# ----------------------------------------------------------------------------- elitist rule
def test_elitist_copies_only_strictly_better_and_never_worsens() -> None:
    w = make_preferences("circle", 2, n=5)
    g = torch.Generator().manual_seed(3)
    for _ in range(50):
        losses = torch.rand(5, 2, generator=g, dtype=torch.float64)
        for scal in (Linear(), SmoothTchebycheff()):
            m = Elitist(beta=1.0).matrix(w, losses, scalarization=scal)
            mixed = m @ losses  # a copy moves the loss vector with the model
            own = scal(losses, w)
            new = scal(mixed, w)
            assert bool((new <= own + 1e-15).all())
            gm = scal(losses.unsqueeze(0).expand(5, 5, 2).reshape(25, 2),
                      w.unsqueeze(1).expand(5, 5, 2).reshape(25, 2)).reshape(5, 5)
            for k in range(5):
                if torch.equal(m[k], torch.eye(5, dtype=torch.float64)[k]):
                    assert gm[k].min() >= gm[k, k]
                else:
                    assert gm[k].min() < gm[k, k]
    # ties are not copied
    tie = torch.ones(5, 2, dtype=torch.float64)
    assert torch.equal(Elitist().matrix(w, tie, scalarization=Linear()), torch.eye(5, dtype=torch.float64))


def test_elitist_epoch_rule_in_fit() -> None:
    w = make_preferences("circle", 2, n=3)
    pop = Population(TinyMTL, 3, dtype=torch.float64)
    x, y = batch(n=32)
    tr = MT2OTrainer(pop, w, loss_fn=mse, rule=Elitist(), opt_factory=lambda p: torch.optim.SGD(p, lr=0.05))
    ev = lambda p: {"val": p.task_losses(x, y, mse), "test": p.task_losses(x, y, mse)}  # noqa: E731
    hist = tr.fit(lambda e: [batch(seed=e)], 3, evaluate=ev, hv=lambda L: {"dummy": float(L.sum())})
    assert [r.epoch for r in hist.records] == [0, 1, 2, 3]
    assert hist.records[-1].seconds >= hist.records[1].seconds > 0
    ep, sec, hv = hist.curve("test", "dummy")
    assert time_to_fraction(ep, sec, hv, -math.inf) == (0, 0.0)
    assert time_to_fraction(ep, sec, hv, math.inf) is None
    import json
    json.dumps(hist.as_dict())


def test_validation_messages() -> None:
    pop = Population(TinyMTL, 3)
    with pytest.raises(ValueError, match="weights"):
        MT2OTrainer(pop, torch.ones(3, 2), loss_fn=mse, opt_factory=lambda p: torch.optim.SGD(p, lr=0.1))
    with pytest.raises(ValueError, match="n_models"):
        Population(TinyMTL, 0)
    with pytest.raises(ValueError, match="seeds"):
        Population(TinyMTL, 2, [1])
    with pytest.raises(ValueError, match="beta"):
        Elitist(beta=0.0)
    assert "FixedSimilarity(alpha=1.0" in repr(FixedSimilarity())
    assert repr(pop).startswith("Population(")


def test_init_is_seeded_and_rng_untouched() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = Population(TinyMTL, 2, [5, 6]).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    b = Population(TinyMTL, 2, [5, 6], vectorize=False).state_dict()
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not torch.equal(a["trunk.0.weight"][0], a["trunk.0.weight"][1])
    s = Population(TinyMTL, 2, [5, 6], shared_init=True).state_dict()
    assert torch.equal(s["trunk.0.weight"][0], s["trunk.0.weight"][1])
    assert isinstance(Population(TinyMTL, 2).unstack()[0], nn.Module)
