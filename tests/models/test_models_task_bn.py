"""Per-task BatchNorm: conversion preserves the function, per-task forward, divergence, pairing (specs/cso.md §6)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paper_repro.models import (MultiHeadMLP, MultiLeNet, SegNet, TaskBatchNorm2d, active_task, convert_to_task_bn,
                                iter_conv_bn_pairs, set_active_task)
from paper_repro.models.losses import cross_entropy


def _segnet(k: int = 3) -> SegNet:
    torch.manual_seed(0)
    return SegNet(("segmentation", "depth", "normals")[:k], n_classes=4, channels=(4, 8), n_convs=2)


def _warm_up(model: nn.Module, x: torch.Tensor) -> None:
    """Non-trivial BN state: random γ, β and running statistics from a few train-mode passes."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
        model.train()
        for _ in range(3):
            model(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make", [_segnet, lambda: MultiLeNet(3, 10, batch_norm=True)], ids=["segnet", "lenet"])
def test_conversion_preserves_function(make, dtype: torch.dtype) -> None:
    model = make().to(dtype)
    side = 10 if isinstance(model, MultiLeNet) else 8
    c = 1 if isinstance(model, MultiLeNet) else 3
    x = torch.randn(5, c, side, side, dtype=dtype)
    _warm_up(model, x)
    model.eval()
    before = model(x)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.encoder.modules())
    convert_to_task_bn(model)
    assert sum(isinstance(m, TaskBatchNorm2d) for m in model.modules()) == n_bn
    after = model(x)
    for a, b in zip(before, after):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for t in range(model.n_tasks):
        torch.testing.assert_close(model.forward_task(x, t), before[t], rtol=0, atol=0)


def test_no_active_task_raises_and_context_restores() -> None:
    model = convert_to_task_bn(_segnet())
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(RuntimeError, match="no active task"):
        model.encoder(x)
    with active_task(model, 1):
        model.encoder(x)
        assert all(bn.active_task == 1 for bn in model.modules() if isinstance(bn, TaskBatchNorm2d))
    assert all(bn.active_task is None for bn in model.modules() if isinstance(bn, TaskBatchNorm2d))
    model(x)  # joint forward: one trunk pass per task, leaves no task active
    assert all(bn.active_task is None for bn in model.modules() if isinstance(bn, TaskBatchNorm2d))
    with pytest.raises(ValueError, match="task"):
        set_active_task(model, 3)


def test_task_step_diverges_only_its_own_bn() -> None:
    model = convert_to_task_bn(_segnet(2))
    model.train()
    x = torch.randn(4, 3, 8, 8)
    y = torch.randint(0, 4, (4, 8, 8))
    bns = [m for m in model.modules() if isinstance(m, TaskBatchNorm2d)]
    snapshot = [{k: v.clone() for k, v in bn.bns[1].state_dict().items()} for bn in bns]
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    cross_entropy(model.forward_task(x, 0), y).backward()
    opt.step()
    for bn, snap in zip(bns, snapshot):
        assert not torch.equal(bn.bns[0].weight, bn.bns[1].weight)
        assert not torch.equal(bn.bns[0].running_mean, bn.bns[1].running_mean)
        for k, v in bn.bns[1].state_dict().items():  # task 1's γ, β and running stats untouched
            torch.testing.assert_close(v, snap[k], rtol=0, atol=0)


def test_task_bn_partition_and_overhead() -> None:
    plain = _segnet()
    n_shared = sum(p.numel() for p in plain.shared_parameters())
    n_task = [sum(p.numel() for p in ps) for ps in plain.task_parameters()]
    bn_affine = sum(m.weight.numel() + m.bias.numel() for m in plain.encoder.modules()
                    if isinstance(m, nn.BatchNorm2d))
    model = convert_to_task_bn(plain)
    assert sum(p.numel() for p in model.shared_parameters()) == n_shared - bn_affine
    assert [sum(p.numel() for p in ps) for ps in model.task_parameters()] == [n + bn_affine for n in n_task]


def test_iter_conv_bn_pairs() -> None:
    model = convert_to_task_bn(_segnet())
    pairs = iter_conv_bn_pairs(model)
    assert len(pairs) == 8  # 2 encoder stages + 2 decoder stages, 2 convs each
    for name, conv, tbn in pairs:
        assert model.get_parameter(f"{name}.weight") is conv.weight
        assert isinstance(tbn, TaskBatchNorm2d) and tbn.n_tasks == 3
        assert all(bn.num_features == conv.weight.shape[0] for bn in tbn.bns)
    assert iter_conv_bn_pairs(_segnet()) == []  # nothing to pair before conversion


def test_conversion_errors() -> None:
    model = convert_to_task_bn(_segnet())
    with pytest.raises(ValueError, match="converted already"):
        convert_to_task_bn(model)
    with pytest.raises(ValueError, match="BatchNorm2d"):
        convert_to_task_bn(MultiHeadMLP(4, (3,)))
    with pytest.raises(ValueError, match="n_tasks"):
        convert_to_task_bn(nn.Sequential(nn.BatchNorm2d(2)))
