"""The core step machinery: ``task_jacobian``, ``mtl_backward``, ``GradientStats``, combiner bases."""

from __future__ import annotations

import pytest
import torch

from methods import (
    Combiner,
    GradientCombiner,
    GradientStats,
    LossCombiner,
    StructureCombiner,
    check_losses,
    mtl_backward,
    task_jacobian,
)


class FixedWeights(GradientCombiner):
    """A test double: constant weights."""

    def __init__(self, w):
        super().__init__(len(w))
        self.w = torch.tensor(w, dtype=torch.float64)

    def weights(self, stats):
        self.seen = stats
        return self.w.to(stats.jacobian.dtype)


class Sum(LossCombiner):
    def combine(self, losses):
        return losses.sum()


class BlockSign(StructureCombiner):
    """A test double: per block, the sign-preserving sum of the rows."""

    def aggregate_blocks(self, blocks, stats):
        self.n_blocks = len(blocks)
        return [b.sum(0) for b in blocks]


def _model(k=3, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    trunk = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).to(dtype)
    heads = torch.nn.ModuleList([torch.nn.Linear(3, 1) for _ in range(k)]).to(dtype)
    x = torch.randn(10, 4, dtype=dtype)
    y = torch.randn(10, k, dtype=dtype)

    def forward():
        z = trunk(x)
        return torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)]), z

    return trunk, heads, forward


def _loop_grads(losses, params):
    return torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(l, params, retain_graph=True, allow_unused=True,
                                                                             materialize_grads=True)]) for l in losses])


def _grads(params):
    return torch.cat([p.grad.reshape(-1) for p in params])


def test_batched_jacobian_equals_per_task_loop(dtype):
    trunk, heads, forward = _model(dtype=dtype)
    losses, _ = forward()
    params = list(trunk.parameters())
    jac, mode = task_jacobian(losses, params)
    assert mode == "batched" and jac.shape == (3, sum(p.numel() for p in params)) and jac.dtype == dtype
    loop, mode2 = task_jacobian(losses, params, batched=False)
    assert mode2 == "loop"
    assert torch.allclose(jac, _loop_grads(losses, params), atol=1e-6 if dtype == torch.float32 else 1e-12)
    assert torch.allclose(jac, loop)


def test_jacobian_falls_back_to_loop_when_batching_fails(monkeypatch):
    trunk, heads, forward = _model()
    losses, _ = forward()
    real = torch.autograd.grad

    def no_batching(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("no batching rule")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_batching)
    jac, mode = task_jacobian(losses, list(trunk.parameters()))
    assert mode == "loop"
    monkeypatch.setattr(torch.autograd, "grad", real)
    assert torch.allclose(jac, _loop_grads(losses, list(trunk.parameters())))


@pytest.mark.parametrize("head_grads", ["raw", "weighted"])
def test_gradient_level_step_matches_hand_computation(head_grads):
    trunk, heads, forward = _model()
    losses, _ = forward()
    w = [0.2, 0.5, 1.3]
    comb = FixedWeights(w)
    info = mtl_backward(losses, comb, shared_params=trunk.parameters(), task_params=[h.parameters() for h in heads],
                        head_grads=head_grads)
    shared = list(trunk.parameters())
    losses, _ = forward()
    jac = _loop_grads(losses, shared)
    assert torch.allclose(_grads(shared), jac.T @ torch.tensor(w, dtype=jac.dtype))
    for i, h in enumerate(heads):
        scale = 1.0 if head_grads == "raw" else w[i]
        hand = torch.autograd.grad(losses[i] * scale, list(h.parameters()), retain_graph=True)
        for p, g in zip(h.parameters(), hand):
            assert torch.allclose(p.grad, g)
    assert info["weights"] == pytest.approx(w) and info["grad_space"] == "params" and info["jacobian_mode"] == "batched"
    assert comb.seen.mode == "params" and len(comb.seen.blocks()) == len(shared)


@pytest.mark.parametrize("head_grads", ["raw", "weighted"])
def test_representation_mode_matches_hand_computation(head_grads):
    trunk, heads, forward = _model()
    losses, z = forward()
    w = [0.7, 0.1, 0.4]
    comb = FixedWeights(w)
    info = mtl_backward(losses, comb, shared_params=trunk.parameters(), task_params=[h.parameters() for h in heads],
                        features=z, head_grads=head_grads)
    assert info["grad_space"] == "features"
    losses, z = forward()
    jz = _loop_grads(losses, [z])
    assert torch.allclose(comb.seen.jacobian, jz) and comb.seen.mode == "features"
    shared = list(trunk.parameters())
    assert torch.allclose(_grads(shared), _loop_grads(losses, shared).T @ torch.tensor(w, dtype=torch.float64))
    for i, h in enumerate(heads):
        scale = 1.0 if head_grads == "raw" else w[i]
        hand = torch.autograd.grad(losses[i] * scale, list(h.parameters()), retain_graph=True)
        assert all(torch.allclose(p.grad, g) for p, g in zip(h.parameters(), hand))


def test_loss_level_is_one_backward_of_the_combination():
    trunk, heads, forward = _model()
    losses, _ = forward()
    info = mtl_backward(losses, Sum(), shared_params=trunk.parameters())
    assert info["level"] == "loss"
    losses, _ = forward()
    hand = torch.autograd.grad(losses.sum(), list(trunk.parameters()))
    assert all(torch.allclose(p.grad, g) for p, g in zip(trunk.parameters(), hand))


def test_structure_level_gets_one_block_per_parameter():
    trunk, heads, forward = _model()
    losses, z = forward()
    comb = BlockSign()
    mtl_backward(losses, comb, shared_params=trunk.parameters())
    shared = list(trunk.parameters())
    assert comb.n_blocks == len(shared)
    losses, _ = forward()
    assert torch.allclose(_grads(shared), _loop_grads(losses, shared).sum(0))
    with pytest.raises(ValueError, match="representation mode"):
        mtl_backward(forward()[0], BlockSign(), shared_params=trunk.parameters(), features=forward()[1])


def test_gradients_accumulate_like_backward():
    trunk, heads, forward = _model()
    mtl_backward(forward()[0], FixedWeights([1.0, 1.0, 1.0]), shared_params=trunk.parameters())
    first = _grads(list(trunk.parameters())).clone()
    mtl_backward(forward()[0], FixedWeights([1.0, 1.0, 1.0]), shared_params=trunk.parameters())
    assert torch.allclose(_grads(list(trunk.parameters())), 2 * first)


def test_single_task_reduces_to_plain_gradient():
    trunk, heads, forward = _model(k=1)
    info = mtl_backward(forward()[0], FixedWeights([5.0]), shared_params=trunk.parameters())
    assert info["single_task"] is True
    hand = torch.autograd.grad(forward()[0][0], list(trunk.parameters()))
    assert all(torch.allclose(p.grad, g) for p, g in zip(trunk.parameters(), hand))


def test_gradient_stats_gramian_and_norms():
    j = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    s = GradientStats(j, torch.ones(3, dtype=torch.float64), shapes=[torch.Size([1]), torch.Size([1])])
    assert torch.equal(s.gramian, j @ j.T) and s.norms.tolist() == [5.0, 0.0, 1.0]
    assert [b.shape for b in s.blocks()] == [(3, 1), (3, 1)]
    with pytest.raises(ValueError, match="params"):
        GradientStats(j, torch.ones(3), mode="features").blocks()


@pytest.mark.parametrize(
    "losses, match, exc",
    [
        ([1.0, 2.0], "Tensor", TypeError),
        (torch.ones(2, 2), "1-D", ValueError),
        (torch.ones(0), "1-D", ValueError),
        (torch.tensor([1.0, float("nan")]), "finite", ValueError),
        (torch.tensor([float("-inf"), 1.0]), "finite", ValueError),
    ],
)
def test_check_losses_errors(losses, match, exc):
    with pytest.raises(exc, match=match):
        check_losses(losses)


def test_check_losses_task_count():
    with pytest.raises(ValueError, match=r"one entry per task \(3\)"):
        check_losses(torch.ones(2), 3)


def test_mtl_backward_argument_errors():
    trunk, heads, forward = _model()
    with pytest.raises(TypeError, match="Combiner"):
        mtl_backward(forward()[0], lambda l: l.sum(), shared_params=trunk.parameters())
    with pytest.raises(ValueError, match="shared_params"):
        mtl_backward(forward()[0], Sum(), shared_params=[])
    with pytest.raises(ValueError, match="head_grads"):
        mtl_backward(forward()[0], Sum(), shared_params=trunk.parameters(), head_grads="mean")
    with pytest.raises(ValueError, match="requires grad"):
        mtl_backward(forward()[0], Sum(), shared_params=[torch.ones(2)])
    with pytest.raises(ValueError, match="one entry per task"):
        mtl_backward(forward()[0], FixedWeights([1.0, 1.0]), shared_params=trunk.parameters())
    with pytest.raises(ValueError, match="n_tasks"):
        FixedWeights([])


def test_combiner_repr_and_defaults():
    c = FixedWeights([1.0, 2.0])
    assert repr(c) == "FixedWeights(n_tasks=2)" and str(c) == "FixedWeights"
    assert isinstance(c, Combiner) and c.level == "gradient" and Sum().level == "loss" and BlockSign().level == "structure"
    c.reset()
    c.after_step(lambda: torch.ones(2))


def test_representation_mode_list_and_stacked_losses_agree():
    """Per-head loop (a list of losses) and one batched pass (a stacked vector) give the same grads."""
    from methods import MGDA, mtl_backward

    torch.manual_seed(0)
    trunk = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh()).double()
    heads = torch.nn.ModuleList([torch.nn.Linear(6, 1) for _ in range(3)]).double()
    x, y = torch.randn(12, 5, dtype=torch.float64), torch.randn(12, 3, dtype=torch.float64)
    grads = []
    for as_list in (True, False):
        for p in [*trunk.parameters(), *heads.parameters()]:
            p.grad = None
        z = trunk(x)
        ls = [((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)]
        info = mtl_backward(ls if as_list else torch.stack(ls), MGDA(), shared_params=trunk.parameters(),
                            task_params=[h.parameters() for h in heads], features=z, head_grads="weighted")
        assert info["jacobian_mode"] == ("loop" if as_list else "batched")
        grads.append([p.grad.clone() for p in [*trunk.parameters(), *heads.parameters()]])
        # the shared update is exactly sum_i w_i g_i on the trunk parameters
        w = torch.tensor(info["weights"], dtype=torch.float64)
        z = trunk(x)
        ref = torch.autograd.grad(sum(w[i] * ((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)),
                                  list(trunk.parameters()))
        for a, b in zip(grads[-1], ref):
            assert torch.allclose(a, b, atol=1e-12)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-12)
