"""``core.demo``: several baselines trained on Multi-Digits with the shared trainer.

The smallest end-to-end run of the machinery: data (Multi-Digits, conventions §7.3), a multi-head
MLP, the step machinery with equal weighting and a few gradient-level methods, the trainer, the runner,
and a figure. It is the report's first section and the place to see the library used as intended.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from methods import JointStep
from methods.trainer import Trainer
from paper_repro.combiners import make_combiner, uses_features
from paper_repro.figures import stamped, subplots
from paper_repro.registry import Experiment, RunContext, register

__all__ = ["run_seed", "EXPERIMENT"]

_QUICK: dict[str, Any] = {
    "methods": ["EW", "MGDA-UB", "PCGrad", "IMTL-G", "UPGrad", "FAMO"],
    "epochs": 4, "batch_size": 128, "lr": 3e-3, "hidden": [128, 64], "data_seed": 0, "seeds": [0, 1],
}
_FULL: dict[str, Any] = {**_QUICK, "methods": ["EW", "MGDA", "MGDA-UB", "PCGrad", "CAGrad", "IMTL-G", "Nash-MTL",
                                                "Aligned-MTL", "UPGrad", "UW", "DWA", "GradNorm", "FAMO"],
                         "epochs": 20, "seeds": [0, 1, 2]}


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    return [float((o.argmax(1) == y[:, t]).double().mean()) for t, o in enumerate(model(x))]


def run_seed(config: dict[str, Any], seed: int, ctx: RunContext) -> dict[str, Any]:
    """Train every method of ``config["methods"]`` once with training seed ``seed``."""
    from paper_repro.data.digits import multidigits
    from paper_repro.models import MultiHeadMLP

    data = multidigits(seed=config["data_seed"])
    dev, dtype = ctx.device, ctx.dtype
    tr, te = data.train, data.test
    x_te, y_te = te.x.to(dev, dtype), te.y.to(dev)
    out: dict[str, Any] = {"data": data.meta["sizes"], "methods": {}}
    for name in config["methods"]:
        torch.manual_seed(seed)  # dropout-free model: this fixes the initialization only
        model = MultiHeadMLP(100, config["hidden"], n_tasks=2, out_features=10).to(dev, dtype)
        combiner = make_combiner(name, n_tasks=2).to(dev, dtype)
        params = list(model.parameters()) + list(combiner.parameters())
        loader = DataLoader(tr.dataset(), batch_size=config["batch_size"], shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        trainer = Trainer(
            model, JointStep(combiner, use_features=uses_features(name)), torch.optim.Adam(params, lr=config["lr"]),
            [torch.nn.functional.cross_entropy] * 2, train_loader=_Cast(loader, dtype),
            epochs=config["epochs"], use_features=uses_features(name),
            evaluate=lambda m: {"test_acc": _accuracy(m, x_te, y_te)},
            checkpoint_dir=ctx.checkpoint_dir(name), progress=ctx.progress,
        )
        res = trainer.fit()
        out["methods"][name] = {
            "test_acc": res["history"][-1]["val"]["test_acc"],
            "train_loss_curve": [r["train_losses"] for r in res["history"]],
            "final_train_loss": res["history"][-1]["train_losses"],
            "s_per_step": res["wall_s"] / max(res["steps"], 1),
        }
    return out


class _Cast:
    """Iterate a loader, casting inputs to ``dtype`` (keeps the loader's generator reachable)."""

    def __init__(self, loader: DataLoader, dtype: torch.dtype) -> None:
        self.loader, self.dtype, self.generator = loader, dtype, loader.generator

    def __iter__(self):
        for x, y in self.loader:
            yield x.to(self.dtype), y

    def __len__(self) -> int:
        return len(self.loader)


@stamped
def figure_accuracy(results: dict[str, Any]):
    """Bar chart: mean test accuracy per task and method, with the standard error over seeds."""
    import numpy as np

    methods = results["config"]["methods"]
    summ = results["summary"]
    fig, ax = subplots(figsize=(1.2 * len(methods) + 2, 3.2))
    width = 0.38
    for t, label in enumerate(["left digit", "right digit"]):
        means = [summ[f"methods.{m}.test_acc"]["mean"][t] for m in methods]
        ses = [np.nan_to_num(summ[f"methods.{m}.test_acc"]["se"][t]) for m in methods]
        ax.bar(np.arange(len(methods)) + (t - 0.5) * width, means, width, yerr=ses, label=label, capsize=2)
    ax.set_xticks(range(len(methods)), methods, rotation=20)
    lo = min(min(summ[f"methods.{m}.test_acc"]["mean"]) for m in methods)
    ax.set_ylim(max(0.0, lo - 0.1), 1.0)
    ax.set_ylabel("test accuracy")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Multi-Digits (our proxy), profile {results['profile']}, seeds {results['seeds']}, "
                 f"commit {results['provenance'].get('commit', '?')[:8]}", fontsize=8)
    fig.tight_layout()
    return fig


EXPERIMENT = register(Experiment(
    name="core.demo",
    paper="core",
    description="Baselines (EW, MGDA-UB, PCGrad, IMTL-G, UPGrad, FAMO, ...) on Multi-Digits with the shared trainer.",
    profiles={"quick": _QUICK, "full": _FULL},
    run_seed=run_seed,
    figures={"accuracy": figure_accuracy},
))
