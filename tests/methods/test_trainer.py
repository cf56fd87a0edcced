"""The trainer: closure, per-epoch log, checkpoint and resume to the same result, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from methods import JointStep, LossCombiner, MixedStep, SequentialStep
from methods.trainer import Trainer


class _Mean(LossCombiner):
    def combine(self, losses):
        return losses.mean()


class _TwoHeads(torch.nn.Module):
    n_tasks = 2

    def __init__(self) -> None:
        super().__init__()
        self.trunk = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.2), torch.nn.Tanh())
        self.heads = torch.nn.ModuleList([torch.nn.Linear(8, 1) for _ in range(2)])

    def encode(self, x):
        return self.trunk(x)

    def decode(self, z):
        return [h(z).squeeze(1) for h in self.heads]

    def forward(self, x):
        return self.decode(self.encode(x))

    def shared_parameters(self):
        return list(self.trunk.parameters())

    def task_parameters(self):
        return [list(h.parameters()) for h in self.heads]


def _make(epochs: int, ckpt=None, strategy=None, dtype=torch.float64):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(96, 3, generator=g, dtype=dtype)
    y = torch.stack([x.sum(1), x[:, 0] - x[:, 2]], 1)
    model = _TwoHeads().to(dtype)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    evaluate = lambda m: {"mse": [float(((o - y[:, t]) ** 2).mean()) for t, o in enumerate(m(x))]}  # noqa: E731
    return model, Trainer(model, strategy or JointStep(_Mean(2)), opt, [torch.nn.functional.mse_loss] * 2,
                          train_loader=loader, epochs=epochs, evaluate=evaluate, checkpoint_dir=ckpt, progress=False)


def test_fit_logs_every_epoch_and_learns():
    _, trainer = _make(4)
    res = trainer.fit()
    assert [r["epoch"] for r in res["history"]] == [1, 2, 3, 4]
    assert res["steps"] == 4 * 6
    first, last = res["history"][0]["val"]["mse"], res["history"][-1]["val"]["mse"]
    assert all(b < a for a, b in zip(first, last))


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    full_model, full = _make(4)
    full.fit()
    _, part = _make(2, ckpt=tmp_path)
    part.fit()  # "interrupted" after epoch 2: a new process builds everything again
    resumed_model, resumed = _make(4, ckpt=tmp_path)
    res = resumed.fit()
    assert res["resumed_from_epoch"] == 2 and len(res["history"]) == 4
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    assert res["history"] == full.history or all(
        r1["train_losses"] == r2["train_losses"] for r1, r2 in zip(res["history"], full.history))


def test_sequential_and_mixed_strategies_run(tmp_path):
    strat = MixedStep([(JointStep(_Mean(2)), 0.5), (SequentialStep(2), 0.5)], generator=torch.Generator().manual_seed(0))
    _, trainer = _make(2, strategy=strat)
    res = trainer.fit()
    assert sum(strat.counts) == res["steps"] and min(strat.counts) > 0


def test_representation_mode_requires_encode_decode():
    class NoEncode(torch.nn.Module):
        def forward(self, x):
            return [x.sum(1), x.sum(1)]
    with pytest.raises(ValueError, match="encode"):
        Trainer(NoEncode(), JointStep(_Mean(2)), torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1),
                [torch.nn.functional.mse_loss] * 2, train_loader=[], epochs=1,
                shared_params=[torch.nn.Parameter(torch.zeros(1))], use_features=True)


def test_wrong_number_of_loss_functions():
    model = _TwoHeads()
    with pytest.raises(ValueError, match="one entry per task"):
        Trainer(model, JointStep(_Mean(2)), torch.optim.SGD(model.parameters(), lr=0.1),
                [torch.nn.functional.mse_loss] * 3, train_loader=[], epochs=1)


def test_results_json_carries_provenance(tmp_path):
    _, trainer = _make(1)
    res = trainer.fit()
    path = trainer.save_results(tmp_path / "r.json", res, {"lr": 1e-2})
    data = json.loads(path.read_text())
    assert data["provenance"]["settings"] == {"lr": 1e-2}
    for key in ("commit", "dirty", "torch", "torch_threads", "timestamp_utc", "hostname"):
        assert key in data["provenance"]
    assert len(data["history"]) == 1
