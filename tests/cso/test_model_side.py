"""Converter, connection map, combiner and stepper of CSO (``specs/cso.md`` §7)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from methods import ForwardResult, JointStep, mtl_backward
from methods.cso import (CSOCombiner, CSOStep, PhaseSchedule, TaskBNModel, active_task, connection_map,
                         phase1_probability, to_task_bn)


class Block(nn.Module):
    """ResNet-style block: conv1/bn1, conv2/bn2, downsample.0/.1 (names that break rename-pairing)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=2, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + self.downsample(x))


def make_trunk() -> nn.Module:
    return nn.Sequential(Block(2, 4), nn.ConvTranspose2d(4, 3, 2, stride=2), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.Conv2d(3, 3, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def make_model(k: int = 2, seed: int = 0, dtype: torch.dtype = torch.float64) -> TaskBNModel:
    torch.manual_seed(seed)
    return TaskBNModel(make_trunk(), [nn.Linear(3, 1) for _ in range(k)]).to(dtype)


def perturb_bns(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.mul_(1 + 0.5 * torch.rand(m.weight.shape, generator=g, dtype=m.weight.dtype))
                m.running_var.mul_(1 + torch.rand(m.running_var.shape, generator=g, dtype=m.running_var.dtype))


def test_conversion_keeps_outputs_and_pairs_structurally() -> None:
    torch.manual_seed(0)
    trunk = make_trunk().double()
    perturb_bns(trunk, 0)
    x = torch.randn(4, 2, 8, 8, dtype=torch.float64)
    trunk.eval()
    before = trunk(x)
    converted = to_task_bn(copy.deepcopy(trunk), 3)
    for t in range(3):
        with active_task(converted, t):
            torch.testing.assert_close(converted(x), before)
    with pytest.raises(RuntimeError, match="active task"):
        converted(x)
    cmap = connection_map(converted, x)
    names = [e.name for e in cmap.entries]
    assert names == ["0.conv1.weight", "0.conv2.weight", "0.downsample.0.weight", "1.weight"]
    assert [e.out_axis for e in cmap.entries] == [0, 0, 0, 1]          # ConvTranspose2d: output channels on axis 1
    assert cmap.unpaired_convs == ["4.weight"]
    assert cmap.summary()["task_bn_overhead_params"] == sum(2 * c * (3 - 1) for c in (4, 4, 4, 3))
    with pytest.raises(ValueError, match="already"):
        to_task_bn(converted, 3)


def test_pairing_warns_when_few_convs_are_paired() -> None:
    trunk = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.BatchNorm2d(8), nn.Conv2d(8, 2, 1), nn.BatchNorm2d(2))
    to_task_bn(trunk, 2)
    with pytest.warns(UserWarning, match="paired"):
        cmap = connection_map(trunk, torch.zeros(1, 1, 6, 6))
    assert [e.name for e in cmap.entries] == ["3.weight"]


def _per_task_grads(model: TaskBNModel, x: torch.Tensor, y: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    out = []
    for t in range(model.n_tasks):
        model.zero_grad(set_to_none=True)
        ((model.forward_task(x, t)[:, 0] - y[:, t]) ** 2).mean().backward()
        out.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    model.zero_grad(set_to_none=True)
    return out


def _slow_expected(entry, grads: list[torch.Tensor]) -> torch.Tensor:
    """Independent route: Eq. 6 written out per channel, Eq. 7, Eq. 10, then Alg. 1 as loops, in float64."""
    w = entry.param.detach().double().movedim(entry.out_axis, 0)
    c = w.shape[0]
    shat = []
    for bn in entry.bns:
        s = [float(bn.weight.detach()[p]) ** 2 / (float(bn.running_var[p]) + bn.eps) * float((w[p] ** 2).sum()) for p in range(c)]
        shat.append([v / sum(s) for v in s])
    owner = [max(range(len(shat)), key=lambda t: (shat[t][p], -t)) for p in range(c)]
    g = [gr.double().movedim(entry.out_axis, 0).reshape(c, -1) for gr in grads]
    h = [x.clone() for x in g]
    if len(set(owner)) > 1:
        for i in set(owner):
            rows = [p for p in range(c) if owner[p] == i]
            a = g[i][rows].reshape(-1)
            for j in range(len(g)):
                b = h[j][rows].reshape(-1)
                if j != i and float(a @ b) < 0:
                    h[j][rows] = (b - (a @ b) / (a @ a) * a).reshape(len(rows), -1)
    out = sum(h).reshape(w.shape).movedim(0, entry.out_axis)
    return out.to(grads[0].dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [2, 3])
def test_combiner_routes_every_parameter(dtype: torch.dtype, k: int) -> None:
    model = make_model(k, dtype=dtype)
    perturb_bns(model, 1)
    model.train()
    x, y = torch.randn(8, 2, 8, 8, dtype=dtype), torch.randn(8, k, dtype=dtype)
    cmap = connection_map(model, x, forward=lambda m, z: m.trunk(z))
    shared, heads = model.shared_parameters(), model.task_parameters()
    comb = CSOCombiner(cmap, shared)
    per_task = _per_task_grads(model, x, y)
    losses = torch.stack([((model.forward_task(x, t)[:, 0] - y[:, t]) ** 2).mean() for t in range(k)])
    mtl_backward(losses, comb, shared_params=shared, task_params=heads)
    names = {id(p): n for n, p in model.named_parameters()}
    paired = {e.name for e in cmap.entries}
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    n_changed = 0
    for p in shared:
        n = names[id(p)]
        plain = sum(d[n] for d in per_task if n in d)
        if n in paired:
            expected = _slow_expected(cmap.entries[[e.name for e in cmap.entries].index(n)], [d[n] for d in per_task])
            n_changed += int(not torch.allclose(expected, plain))
            torch.testing.assert_close(p.grad, expected, **tol)
            torch.testing.assert_close(comb.combine_named(per_task)[n], expected, **tol)
        else:
            torch.testing.assert_close(p.grad, plain, **tol)      # unpaired: the plain sum
    for t, ps in enumerate(heads):
        for p in ps:
            torch.testing.assert_close(p.grad, per_task[t][names[id(p)]], **tol)  # own task's gradient only
    assert n_changed >= 1  # the BNs were perturbed: some layer had a conflict and was projected
    assert comb.last_info["unpaired"] and "layers" in comb.last_info
    # a None gradient on a paired layer falls back to the sum
    name = cmap.entries[0].name
    grads = [{name: per_task[0][name]}] + [{name: None} for _ in range(k - 1)]
    torch.testing.assert_close(comb.combine_named(grads)[name], per_task[0][name])


def test_degenerate_layers_sum_right_after_conversion() -> None:
    model = make_model(2)
    x, y = torch.randn(8, 2, 8, 8, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    cmap = connection_map(model, x, forward=lambda m, z: m.trunk(z))
    comb = CSOCombiner(cmap, model.shared_parameters())
    losses = torch.stack([((model.forward_task(x, t)[:, 0] - y[:, t]) ** 2).mean() for t in range(2)])
    mtl_backward(losses, comb, shared_params=model.shared_parameters())
    assert comb.last_info["degenerate_layers"] == len(cmap) and comb.last_info["projections"] == 0
    assert comb.ownership()["pooled"] == pytest.approx([0.5, 0.5])


def _closure(model: TaskBNModel, x: torch.Tensor, y: torch.Tensor, hook=None):
    def closure(tasks=None):
        ts = range(model.n_tasks) if tasks is None else tasks
        if hook is not None:
            hook(list(ts))
        return ForwardResult(torch.stack([((model.forward_task(x, t)[:, 0] - y[:, t]) ** 2).mean() for t in ts]))
    return closure


def test_phase1_equals_two_manual_sgd_updates() -> None:
    model = make_model(2)
    ref = copy.deepcopy(model)
    x, y = torch.randn(8, 2, 8, 8, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    cmap = connection_map(model, x, forward=lambda m, z: m.trunk(z))
    strat = CSOStep(CSOCombiner(cmap, model.shared_parameters()), num_epochs=5, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    strat.on_epoch_start(0)
    info = strat.step(_closure(model, x, y), opt, shared_params=model.shared_parameters(),
                      task_params=model.task_parameters())
    assert info["phase"] == 1 and info["optimizer_steps"] == 2
    for t in range(2):
        ref.zero_grad(set_to_none=True)
        ((ref.forward_task(x, t)[:, 0] - y[:, t]) ** 2).mean().backward()
        with torch.no_grad():
            for p in ref.parameters():
                if p.grad is not None:
                    p -= 0.05 * p.grad
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_phase1_adam_weight_decay_leaves_other_head_untouched() -> None:
    model = make_model(2)
    x, y = torch.randn(8, 2, 8, 8, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    cmap = connection_map(model, x, forward=lambda m, z: m.trunk(z))
    strat = CSOStep(CSOCombiner(cmap, model.shared_parameters()), num_epochs=5, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    head_b = [p.detach().clone() for p in model.heads[1].parameters()]
    seen = {}

    def hook(ts):
        if ts == [1]:
            seen["b"] = [p.detach().clone() for p in model.heads[1].parameters()]
    strat.on_epoch_start(0)
    strat.step(_closure(model, x, y, hook), opt, shared_params=model.shared_parameters(),
               task_params=model.task_parameters())
    assert all(torch.equal(a, b) for a, b in zip(head_b, seen["b"]))
    assert not all(torch.equal(a, p) for a, p in zip(head_b, model.heads[1].parameters()))


def test_schedule_rates_and_determinism() -> None:
    e_total = 10
    for e in (0, 3, 7):
        s = PhaseSchedule(seed=e)
        rate = sum(s.phase(e, e_total) == 1 for _ in range(10_000)) / 10_000
        assert abs(rate - (1 - e / e_total)) <= 0.02
    assert phase1_probability(0, 40) == 1.0 and phase1_probability(4, 8, "sequential") == 0.0
    s = PhaseSchedule(draw="epoch", seed=1)
    for e in range(5):
        assert len({s.phase(e, 5) for _ in range(50)}) == 1
    a, b = PhaseSchedule(seed=3), PhaseSchedule(seed=3)
    assert [a.phase(2, 4) for _ in range(50)] == [b.phase(2, 4) for _ in range(50)]


def test_cso_step_phase_sequence_is_seeded_and_epoch0_is_phase1() -> None:
    def phases(seed: int, draw: str) -> list[int]:
        model = make_model(2)
        x, y = torch.randn(4, 2, 8, 8, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
        cmap = connection_map(model, x, forward=lambda m, z: m.trunk(z))
        strat = CSOStep(CSOCombiner(cmap, model.shared_parameters()), num_epochs=4, seed=seed, draw=draw)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        out = []
        for e in range(4):
            strat.on_epoch_start(e)
            ep = [strat.step(_closure(model, x, y), opt, shared_params=model.shared_parameters(),
                             task_params=model.task_parameters())["phase"] for _ in range(5)]
            if e == 0:
                assert ep == [1] * 5
            if draw == "epoch":
                assert len(set(ep)) == 1
            out += ep
        return out
    assert phases(0, "batch") == phases(0, "batch")
    phases(1, "epoch")


def test_validation_messages() -> None:
    model = make_model(2)
    cmap = connection_map(model, torch.zeros(1, 2, 8, 8, dtype=torch.float64), forward=lambda m, z: m.trunk(z))
    with pytest.raises(ValueError, match="degenerate"):
        CSOCombiner(cmap, model.shared_parameters(), degenerate="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_epochs"):
        CSOStep(CSOCombiner(cmap, model.shared_parameters()), num_epochs=0)
    assert "CSOCombiner(paired=4" in repr(CSOCombiner(cmap, model.shared_parameters()))
    assert isinstance(JointStep(CSOCombiner(cmap, model.shared_parameters())), JointStep)


def test_works_with_paper_repro_segnet_task_bn() -> None:
    """Duck typing: the models' own per-task BN (``convert_to_task_bn``) pairs structurally too."""
    segnet = pytest.importorskip("paper_repro.models.segnet")
    task_bn = pytest.importorskip("paper_repro.models.task_bn")
    model = task_bn.convert_to_task_bn(segnet.SegNet(channels=(4, 8), n_classes=3))
    x = torch.randn(2, 3, 8, 8)
    cmap = connection_map(model, x, forward=lambda m, z: m.encoder(z))
    assert len(cmap) == len(task_bn.iter_conv_bn_pairs(model)) == 4
    assert cmap.unpaired_convs == [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)
                                   and n.startswith("heads")] or all(n.startswith("heads") for n in cmap.unpaired_convs)
    comb = CSOCombiner(cmap, model.shared_parameters())
    assert comb.unpaired == []  # every shared parameter of the SegNet trunk is a paired conv weight
