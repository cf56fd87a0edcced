"""NMT stage-wise driver: measure_threshold, select_checkpoint, train_prioritized (spec §2.1, §2.5)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from methods.nmt import NMTConfig, measure_threshold, select_checkpoint, train_prioritized


class TwoTaskMLP(nn.Module):
    """Tiny tanh trunk (+ optional BatchNorm) with two linear heads."""

    n_tasks = 2

    def __init__(self, d: int = 6, h: int = 16, bn: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(d, h)]
        if bn:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.Tanh())
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList([nn.Linear(h, 1), nn.Linear(h, 1)])

    def forward(self, x):
        z = self.trunk(x)
        return [hd(z).squeeze(-1) for hd in self.heads]

    def shared_parameters(self):
        return list(self.trunk.parameters())

    def task_parameters(self):
        return [list(h.parameters()) for h in self.heads]


def _data(n: int = 512, d: int = 6, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    w1, w2 = torch.randn(d, generator=g, dtype=dtype), torch.randn(d, generator=g, dtype=dtype)
    y = torch.stack([torch.tanh(x @ w1), torch.sin(x @ w2)], dim=1)  # conflicting regression targets
    return x, y


class Loader:
    def __init__(self, x, y, bs, seed=0, shuffle=True):
        self.x, self.y, self.bs, self.shuffle = x, y, bs, shuffle
        self.g = torch.Generator().manual_seed(seed)

    def __iter__(self):
        idx = torch.randperm(len(self.x), generator=self.g) if self.shuffle else torch.arange(len(self.x))
        for s in range(0, len(idx), self.bs):
            i = idx[s : s + self.bs]
            yield self.x[i], self.y[i]


def _mse(out, y):
    return ((out - y) ** 2).mean()


def _neg_mse(out, y):
    return -float(((out - y) ** 2).mean())


def test_measure_threshold_is_train_mode_mean_and_restores_buffers():
    torch.manual_seed(0)
    model = TwoTaskMLP(bn=True)
    x, y = _data(256)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = Loader(x, y, 64, shuffle=False)
    got = measure_threshold(model, loader, 1, _mse)
    # independent: train-mode batch statistics, mean over mini-batches
    ref = []
    with torch.no_grad():
        model.train()
        for xb, yb in Loader(x, y, 64, shuffle=False):
            ref.append(float(_mse(model(xb)[1], yb[:, 1])))
        model.eval()
    for k, v in before.items():  # the reference pass above changed BN buffers; restore for the check below
        model.state_dict()[k].copy_(v)
    assert got == pytest.approx(sum(ref) / len(ref), rel=1e-6)
    model.eval()
    measure_threshold(model, loader, 0, _mse)
    assert not model.training
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    with pytest.raises(ValueError, match="mode"):
        measure_threshold(model, loader, 0, _mse, mode="eval_pass")
    with pytest.raises(ValueError, match="task"):
        measure_threshold(model, loader, 2, _mse)


def test_select_checkpoint_rule():
    refs = [0.80]
    # epoch 1 is feasible with the best m_k among feasible ones; epoch 2 has a higher m_k but violates
    idx, feas = select_checkpoint([[0.79, 0.6], [0.80, 0.65], [0.70, 0.9], [0.81, 0.64]], refs)
    assert (idx, feas) == (1, True)
    # none feasible: max-min fallback
    idx, feas = select_checkpoint([[0.70, 0.9], [0.78, 0.5], [0.75, 0.8]], refs)
    assert (idx, feas) == (1, False)
    # tolerance admits epoch 2
    idx, _ = select_checkpoint([[0.80, 0.6], [0.795, 0.9]], refs, tol_sel=0.01)
    assert idx == 1
    # never on the mean: the mean-best checkpoint [0.7, 0.99] is not chosen
    idx, _ = select_checkpoint([[0.80, 0.6], [0.70, 0.99]], refs)
    assert idx == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_two_task_stage2_keeps_constraint(dtype):
    """Spec §2.5: on a tiny 2-task MLP, stage 2 ends with mean last-epoch violation ≤ 0.01·ε_1."""
    torch.manual_seed(0)
    model = TwoTaskMLP().to(dtype)
    x, y = _data(512, dtype=dtype)
    xv, yv = _data(256, seed=1, dtype=dtype)
    cfg = NMTConfig(max_epochs=15, patience=15, violation="relative")
    res = train_prioritized(
        model, [0, 1], Loader(x, y, 64), Loader(xv, yv, 256, shuffle=False), [_mse, _mse], [_neg_mse, _neg_mse],
        lambda p: torch.optim.Adam(p, lr=1e-2), cfg,
    )
    eps1 = res.thresholds[0]
    last = res.epochs[1][-1]
    assert last["violation"][0] <= 0.01 * eps1
    lam = [row[0] for row in res.traces[1]["lambdas"]]
    assert all(v >= 0 for v in lam) and max(lam) > 0
    # the driver leaves the model at the last stage's selected state
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v.cpu(), res.final_state_dict[k])
    assert res.extension is None and len(res.state_dicts) == 2 and len(res.measured) == 1
    assert res.to_json()["priority"] == [0, 1]


def test_stage1_reuse_matches_full_run_and_is_deterministic():
    x, y = _data(256)
    xv, yv = _data(128, seed=1)
    cfg = NMTConfig(max_epochs=3, patience=3)

    def run(**kw):
        torch.manual_seed(0)
        model = TwoTaskMLP()
        return train_prioritized(model, [1, 0], Loader(x, y, 64), Loader(xv, yv, 128, shuffle=False),
                                 [_mse, _mse], [_neg_mse, _neg_mse], lambda p: torch.optim.Adam(p, lr=1e-2), cfg, **kw)

    a, b = run(), run()
    assert a.traces[1]["lambdas"] == b.traces[1]["lambdas"]
    c = run(stage1_state=a.state_dicts[0], stage1_info={"reference": a.references[0]})
    assert c.thresholds == pytest.approx(a.thresholds)


def test_single_run_extension_is_labelled():
    torch.manual_seed(0)
    x, y = _data(256)
    res = train_prioritized(TwoTaskMLP(), [0, 1], Loader(x, y, 64), Loader(x, y, 256, shuffle=False),
                            [_mse, _mse], [_neg_mse, _neg_mse], lambda p: torch.optim.Adam(p, lr=1e-2),
                            NMTConfig(single_run=True, max_epochs=2, patience=2))
    assert res.extension == "NMT-1R"
    assert res.thresholds[0] == pytest.approx(1.02 * res.measured[0])


def test_driver_validation():
    x, y = _data(64)
    args = (Loader(x, y, 32), Loader(x, y, 32), [_mse, _mse], [_neg_mse, _neg_mse], lambda p: torch.optim.SGD(p, lr=0.1))
    with pytest.raises(ValueError, match="priority"):
        train_prioritized(TwoTaskMLP(), [0], *args)
    with pytest.raises(ValueError, match="priority"):
        train_prioritized(TwoTaskMLP(), [0, 0], *args)
    with pytest.raises(ValueError, match="priority"):
        train_prioritized(TwoTaskMLP(), [0, 2], *args)
    with pytest.raises(TypeError, match="NMTConfig"):
        train_prioritized(TwoTaskMLP(), [0, 1], *args, config={"rho": 0})
    with pytest.raises(ValueError, match="stage1_info"):
        train_prioritized(TwoTaskMLP(), [0, 1], *args, stage1_state=TwoTaskMLP().state_dict())


class TwoHeadClassifier(nn.Module):
    """Tiny trunk with a 3-class head and a 1-output head, to check the shapes the metric functions get."""

    n_tasks = 2

    def __init__(self, d: int = 6) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(d, 8), nn.Tanh())
        self.heads = nn.ModuleList([nn.Linear(8, 3), nn.Linear(8, 1)])

    def forward(self, x):
        z = self.trunk(x)
        return [hd(z) for hd in self.heads]

    def shared_parameters(self):
        return list(self.trunk.parameters())

    def task_parameters(self):
        return [list(h.parameters()) for h in self.heads]


def test_metric_functions_get_one_row_per_sample():
    """(N, C) logits reach the metric as (N, C), (N, 1) outputs as (N,): accuracy-type metrics work."""
    torch.manual_seed(0)
    x = torch.randn(96, 6)
    y = torch.stack([(x[:, 0] > 0).long() + (x[:, 1] > 0).long(), x[:, 2]], dim=1)
    seen: list[tuple[int, ...]] = []

    def acc(out, t):
        seen.append(tuple(out.shape))
        return float((out.argmax(1) == t.long()).double().mean())

    def neg_mse(out, t):
        seen.append(tuple(out.shape))
        return -float(((out - t) ** 2).mean())

    def ce(out, t):
        return nn.functional.cross_entropy(out, t.long())

    def mse(out, t):
        return ((out.squeeze(-1) - t) ** 2).mean()

    res = train_prioritized(TwoHeadClassifier(), [0, 1], Loader(x, y, 32), Loader(x, y, 48, shuffle=False),
                            [ce, mse], [acc, neg_mse], lambda p: torch.optim.Adam(p, lr=1e-2),
                            NMTConfig(max_epochs=2, patience=2, violation="relative"))
    assert (96, 3) in seen and (96,) in seen and set(seen) == {(96, 3), (96,)}
    assert 0.0 <= res.references[0] <= 1.0
