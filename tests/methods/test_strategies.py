"""Step strategies: JointStep (with FAMO's after_step), SequentialStep, MixedStep."""

from __future__ import annotations

import copy

import pytest
import torch

from methods import ForwardResult, JointStep, MixedStep, SequentialStep, StepStrategy


def _setup(k=3, seed=0):
    torch.manual_seed(seed)
    trunk = torch.nn.Linear(4, 3)
    heads = torch.nn.ModuleList([torch.nn.Linear(3, 1) for _ in range(k)])
    x, y = torch.randn(12, 4), torch.randn(12, k)

    def closure(tasks=None):
        z = trunk(x)
        idx = range(k) if tasks is None else tasks
        return ForwardResult(torch.stack([((heads[i](z).squeeze(1) - y[:, i]) ** 2).mean() for i in idx]), z)

    return trunk, heads, closure


def _params(trunk, heads):
    return [*trunk.parameters(), *heads.parameters()]


def test_sequential_step_equals_k_manual_steps():
    trunk, heads, closure = _setup()
    opt = torch.optim.SGD(_params(trunk, heads), lr=0.1)
    info = SequentialStep(3, order=[2, 0, 1]).step(closure, opt, shared_params=list(trunk.parameters()))
    got = [p.detach().clone() for p in _params(trunk, heads)]

    trunk2, heads2, closure2 = _setup()
    opt2 = torch.optim.SGD(_params(trunk2, heads2), lr=0.1)
    for t in [2, 0, 1]:
        opt2.zero_grad()
        closure2([t]).losses[0].backward()
        opt2.step()
    assert all(torch.equal(a, b) for a, b in zip(got, _params(trunk2, heads2)))
    assert info["order"] == [2, 0, 1] and len(info["losses"]) == 3


def test_sequential_step_shuffle_is_seeded():
    orders = []
    for _ in range(2):
        trunk, heads, closure = _setup()
        s = SequentialStep(3, shuffle=True, generator=torch.Generator().manual_seed(5))
        opt = torch.optim.SGD(_params(trunk, heads), lr=0.1)
        orders.append([s.step(closure, opt, shared_params=list(trunk.parameters()))["order"] for _ in range(4)])
    assert orders[0] == orders[1] and all(sorted(o) == [0, 1, 2] for o in orders[0])


def test_sequential_step_validation():
    with pytest.raises(ValueError, match="permutation"):
        SequentialStep(3, order=[0, 0, 1])
    with pytest.raises(ValueError, match="n_tasks"):
        SequentialStep(0)


class _Counter(StepStrategy):
    def __init__(self, tag):
        self.tag = tag

    def step(self, closure, optimizer, *, shared_params, task_params=None):
        return {"tag": self.tag}


def test_mixed_step_frequencies_and_determinism():
    def run(seed, n=2000):
        m = MixedStep([(_Counter("a"), 0.2), (_Counter("b"), 0.8)], generator=torch.Generator().manual_seed(seed))
        tags = [m.step(None, None, shared_params=[])["tag"] for _ in range(n)]
        return tags, m.counts

    tags, counts = run(0)
    assert abs(counts[0] / 2000 - 0.2) < 0.03  # ~3.4 standard deviations
    assert run(0)[0] == tags and run(1)[0] != tags


def test_mixed_step_epoch_draw_is_constant_within_an_epoch():
    m = MixedStep([(_Counter("a"), 0.5), (_Counter("b"), 0.5)], draw="epoch", generator=torch.Generator().manual_seed(0))
    for epoch in range(6):
        m.on_epoch_start(epoch)
        tags = {m.step(None, None, shared_params=[])["tag"] for _ in range(5)}
        assert len(tags) == 1


def test_mixed_step_state_dict_resumes_the_draws():
    m = MixedStep([(_Counter("a"), 0.5), (_Counter("b"), 0.5)], generator=torch.Generator().manual_seed(3))
    [m.step(None, None, shared_params=[]) for _ in range(5)]
    state = copy.deepcopy(m.state_dict())
    after = [m.step(None, None, shared_params=[])["phase"] for _ in range(10)]
    m2 = MixedStep([(_Counter("a"), 0.5), (_Counter("b"), 0.5)], generator=torch.Generator().manual_seed(99))
    m2.load_state_dict(state)
    assert [m2.step(None, None, shared_params=[])["phase"] for _ in range(10)] == after


def test_mixed_step_validation():
    with pytest.raises(ValueError, match="at least one"):
        MixedStep([])
    with pytest.raises(ValueError, match="non-negative"):
        MixedStep([(_Counter("a"), -1.0)])
    with pytest.raises(ValueError, match="draw"):
        MixedStep([(_Counter("a"), 1.0)], draw="step")


def test_joint_step_with_famo_calls_after_step_with_recomputed_losses():
    pytest.importorskip("torchjd")
    from torchjd.scalarization import FAMO as TJDFAMO

    from methods.baselines import FAMO

    trunk, heads, closure = _setup()
    opt = torch.optim.SGD(_params(trunk, heads), lr=0.1)
    famo = FAMO(3)
    JointStep(famo).step(closure, opt, shared_params=list(trunk.parameters()), task_params=[list(h.parameters()) for h in heads])
    # the same by hand with TorchJD's FAMO
    trunk2, heads2, closure2 = _setup()
    opt2 = torch.optim.SGD(_params(trunk2, heads2), lr=0.1)
    ref = TJDFAMO(3)
    opt2.zero_grad()
    ref(closure2().losses).backward()
    opt2.step()
    with torch.no_grad():
        ref.update(closure2().losses)
    assert torch.allclose(famo.inner._w.detach(), ref._w.detach())
    assert not torch.equal(famo.inner._w.detach(), torch.zeros(3))
    assert all(torch.allclose(a, b) for a, b in zip(_params(trunk, heads), _params(trunk2, heads2)))


def test_joint_step_representation_mode_needs_features():
    pytest.importorskip("torchjd")
    from methods.baselines import MGDA

    trunk, heads, closure = _setup()
    opt = torch.optim.SGD(_params(trunk, heads), lr=0.1)
    info = JointStep(MGDA(), use_features=True).step(closure, opt, shared_params=list(trunk.parameters()))
    assert info["grad_space"] == "features"
    with pytest.raises(ValueError, match="features"):
        JointStep(MGDA(), use_features=True).step(lambda t=None: ForwardResult(closure().losses), opt,
                                                  shared_params=list(trunk.parameters()))
