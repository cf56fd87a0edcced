"""Every model follows the "Models" contract of docs/ARCHITECTURE.md: shapes, partition, encode/decode, float64."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from paper_repro.models import (PLE, MMoE, MultiHeadMLP, MultiLeNet, SegNet, SharedBottom, active_task,
                                convert_to_task_bn)

N = 4
VOCAB = (7, 5, 3)


def _rec_input(dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    cat = torch.stack([torch.randint(0, v, (N,), generator=g) for v in VOCAB], dim=1)
    return cat, torch.randn(N, 4, generator=g, dtype=dtype)


def _image(c: int, h: int, w: int) -> Tensor:
    return torch.randn(N, c, h, w, generator=torch.Generator().manual_seed(1))


Case = tuple[Callable[[int], nn.Module], Callable[[], object], Callable[[int], list[tuple[int, ...]]]]

CASES: dict[str, Case] = {
    "lenet36": (lambda k: MultiLeNet(k, 36), lambda: _image(1, 36, 36), lambda k: [(N, 10)] * k),
    "lenet28_mgda_heads": (lambda k: MultiLeNet(k, 28, head_hidden=(50,)), lambda: _image(1, 28, 28),
                           lambda k: [(N, 10)] * k),
    "lenet10_bn": (lambda k: MultiLeNet(k, (10, 10), batch_norm=True), lambda: _image(1, 10, 10),
                   lambda k: [(N, 10)] * k),
    "lenet_task_bn": (lambda k: convert_to_task_bn(MultiLeNet(k, 10, batch_norm=True)), lambda: _image(1, 10, 10),
                      lambda k: [(N, 10)] * k),
    "mlp": (lambda k: MultiHeadMLP(21, (16, 16, 2), k, out_features=list(range(1, k + 1)), activate_last=False),
            lambda: torch.randn(N, 21), lambda k: [(N, t) for t in range(1, k + 1)]),
    "mlp_images": (lambda k: MultiHeadMLP(100, (8,), k, out_features=10, head_hidden=(4,)),
                   lambda: _image(1, 10, 10), lambda k: [(N, 10)] * k),
    "shared_bottom": (lambda k: SharedBottom(k, vocab_sizes=VOCAB, n_dense=4), _rec_input, lambda k: [(N,)] * k),
    "shared_bottom_dense": (lambda k: SharedBottom(k, n_dense=10, bottom=(32, 16), tower=(8,)),
                            lambda: torch.randn(N, 10), lambda k: [(N,)] * k),
    "mmoe": (lambda k: MMoE(k, vocab_sizes=VOCAB, n_dense=4), _rec_input, lambda k: [(N,)] * k),
    "mmoe_bn_dropout": (lambda k: MMoE(k, n_dense=10, batch_norm=True, dropout=0.2), lambda: torch.randn(N, 10),
                        lambda k: [(N,)] * k),
    "ple": (lambda k: PLE(k, vocab_sizes=VOCAB, n_dense=4), _rec_input, lambda k: [(N,)] * k),
    "ple_3levels": (lambda k: PLE(k, n_dense=10, n_levels=3, n_shared=1, n_specific=2), lambda: torch.randn(N, 10),
                    lambda k: [(N,)] * k),
    "segnet": (lambda k: SegNet(("segmentation", "depth", "normals")[:k], n_classes=5, channels=(4, 8)),
               lambda: _image(3, 12, 10), lambda k: [(N, 5, 12, 10), (N, 1, 12, 10), (N, 3, 12, 10)][:k]),
    "segnet_group_softplus": (lambda k: SegNet(("depth", "normals", "segmentation")[:k], channels=(4, 8, 8),
                                               norm="group", depth_activation="softplus"),
                              lambda: _image(3, 9, 16), lambda k: [(N, 1, 9, 16), (N, 3, 9, 16), (N, 7, 9, 16)][:k]),
    "segnet_task_bn": (lambda k: convert_to_task_bn(SegNet(("segmentation", "depth", "normals")[:k], n_classes=5,
                                                           channels=(4, 8), n_convs=2)),
                       lambda: _image(3, 8, 8), lambda k: [(N, 5, 8, 8), (N, 1, 8, 8), (N, 3, 8, 8)][:k]),
}

params = pytest.mark.parametrize("name", list(CASES))
tasks = pytest.mark.parametrize("k", [2, 3])


def _build(name: str, k: int) -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    make, inp, _ = CASES[name]
    return make(k), inp()


@params
@tasks
def test_output_shapes(name: str, k: int) -> None:
    model, x = _build(name, k)
    out = model(x)
    assert model.n_tasks == k
    assert isinstance(out, list) and [tuple(y.shape) for y in out] == CASES[name][2](k)
    assert all(torch.isfinite(y).all() for y in out)


@params
@tasks
def test_parameter_partition(name: str, k: int) -> None:
    model, _ = _build(name, k)
    shared = {id(p) for p in model.shared_parameters()}
    per_task = [{id(p) for p in ps} for ps in model.task_parameters()]
    assert len(per_task) == k and all(per_task) and shared
    assert len(shared) == len(model.shared_parameters())
    for i in range(k):
        assert not shared & per_task[i]
        for j in range(i + 1, k):
            assert not per_task[i] & per_task[j]
    everything = {id(p) for p in model.parameters() if p.requires_grad}
    assert shared.union(*per_task) == everything


@params
@tasks
def test_task_parameters_only_see_their_task(name: str, k: int) -> None:
    """Task j's parameters get no gradient from task i's output (j ≠ i), and some gradient from their own."""
    model, x = _build(name, k)
    model.eval()
    task_params = model.task_parameters()
    for i in range(k):
        model.zero_grad(set_to_none=True)
        model(x)[i].square().sum().backward()
        for j, ps in enumerate(task_params):
            grads = [p.grad for p in ps]
            if j == i:
                assert any(g is not None and g.abs().sum() > 0 for g in grads)
            else:
                assert all(g is None or not g.any() for g in grads)


@params
def test_encode_decode_equals_forward(name: str) -> None:
    model, x = _build(name, 3)
    if not hasattr(model, "encode"):
        assert name.startswith("ple")  # PLE documents that it has no single shared representation
        return
    model.eval()
    out = model(x)
    if getattr(model, "has_task_bn", False):
        with pytest.raises(RuntimeError, match="no active task"):
            model.encode(x)
        for t in range(model.n_tasks):
            with active_task(model, t):
                torch.testing.assert_close(model.decode(model.encode(x))[t], out[t], rtol=0, atol=0)
        return
    for a, b in zip(model.decode(model.encode(x)), out):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@params
def test_float64(name: str) -> None:
    model, x = _build(name, 2)
    model.double()
    if isinstance(x, tuple):
        x = (x[0], x[1].double())
    else:
        x = x.double()
    out = model(x)
    assert all(y.dtype == torch.float64 for y in out)
    sum(y.sum() for y in out).backward()
    assert all(p.grad is None or p.grad.dtype == torch.float64 for p in model.parameters())


def test_lenet_pmtl_sizes() -> None:
    assert MultiLeNet(2, 36).flat_features == 500  # PMTL: fc 500 -> 50
    assert MultiLeNet(2, 28).flat_features == 180
    with pytest.raises(ValueError, match="input_size"):
        MultiLeNet(2, 12, kernel_sizes=(9, 5))


def test_segnet_normals_are_unit_and_tasks_validated() -> None:
    torch.manual_seed(0)
    model = SegNet(("normals",), channels=(4,))
    n = model(_image(3, 6, 6))[0]
    torch.testing.assert_close(n.norm(dim=1), torch.ones(N, 6, 6))
    with pytest.raises(ValueError, match="tasks"):
        SegNet(("segmentation", "edges"))
    with pytest.raises(ValueError, match="depth_activation"):
        SegNet(depth_activation="relu")


def test_recsys_input_validation() -> None:
    model = MMoE(2, vocab_sizes=VOCAB, n_dense=4)
    with pytest.raises(ValueError, match="pair"):
        model(torch.randn(N, 4))
    with pytest.raises(ValueError, match="n_tasks"):
        SharedBottom(0, n_dense=3)
    with pytest.raises(ValueError, match="n_dense"):
        PLE(2)


def test_mmoe_representation_layout() -> None:
    model = MMoE(2, n_dense=10, n_experts=3, expert=(8, 6))
    z = model.encode(torch.randn(N, 10))
    assert z.shape == (N, 3 * 6 + 10)


def test_max_unpool_matches_torch() -> None:
    from paper_repro.models.segnet import max_unpool2x2

    x = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    pooled, idx = nn.functional.max_pool2d(x, 2, return_indices=True)
    torch.use_deterministic_algorithms(False)
    try:
        expected = nn.functional.max_unpool2d(pooled, idx, 2, output_size=x.shape[-2:])
    finally:
        torch.use_deterministic_algorithms(True)
    torch.testing.assert_close(max_unpool2x2(pooled, idx, x.shape[-2:]), expected, rtol=0, atol=0)
