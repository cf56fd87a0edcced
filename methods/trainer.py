"""A small multi-task trainer: any model with per-task outputs, any step strategy.

It does what every experiment here needs and nothing else: the per-batch closure, a progress bar, a
per-epoch metrics log, checkpoint and resume at epoch boundaries (an interrupted run resumes to the
same result), and results as JSON that say which commit and settings made them.

>>> import torch
>>> from torch.utils.data import DataLoader, TensorDataset
>>> from methods import JointStep
>>> from methods.trainer import Trainer
>>> from methods.baselines import EqualWeighting
>>> class TwoHeads(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.trunk, self.heads = torch.nn.Linear(3, 8), torch.nn.ModuleList([torch.nn.Linear(8, 1) for _ in range(2)])
...     def forward(self, x):
...         z = torch.tanh(self.trunk(x))
...         return [h(z).squeeze(1) for h in self.heads]
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randn(64, 3, generator=g); y = torch.stack([x.sum(1), x[:, 0]], 1)
>>> model = TwoHeads()
>>> trainer = Trainer(model, JointStep(EqualWeighting()), torch.optim.SGD(model.parameters(), lr=0.1),
...                   [torch.nn.functional.mse_loss] * 2, epochs=2, progress=False,
...                   train_loader=DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=g),
...                   shared_params=model.trunk.parameters(), task_params=[h.parameters() for h in model.heads])
>>> result = trainer.fit()
>>> len(result["history"]), result["steps"]
(2, 8)
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ._provenance import git_info, provenance, write_json
from .strategies import ForwardResult, StepStrategy

__all__ = ["Trainer", "LossFn"]

logger = logging.getLogger(__name__)

LossFn = Callable[[Tensor, Tensor], Tensor]
_CKPT = "checkpoint.pt"


def _to(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def _call(fn: Callable[..., Any], x: Any, *extra: Any) -> Any:
    if isinstance(x, dict):
        return fn(**x, **({} if not extra else {"task": extra[0]}))
    if isinstance(x, (list, tuple)):
        return fn(*x, *extra)
    return fn(x, *extra)


def _target(y: Any, t: int) -> Any:
    if isinstance(y, Tensor):
        return y[:, t] if y.dim() > 1 else y
    return y[t]


class Trainer:
    """Train ``model`` with ``strategy`` for ``epochs`` epochs.

    :param model: an ``nn.Module`` whose ``forward`` returns one output per task (a list or tuple);
        with ``use_features=True`` it must also define ``encode(x) -> z`` and ``decode(z) -> outputs``;
        a model with ``forward_task(x, t)`` gets single-task forwards (sequential steps, per-task BN).
    :param strategy: a :class:`~methods.strategies.StepStrategy` (e.g. ``JointStep(MGDA())``).
    :param optimizer: the optimizer of the model (and of any learnable combiner state).
    :param loss_fns: one ``loss_fn(output, target) -> scalar`` per task.
    :param train_loader: yields ``(x, y)``; ``x`` a tensor, a tuple (passed as ``*x``) or a dict
        (``**x``); ``y`` a ``(N, K)`` tensor (task t gets ``y[:, t]``) or a sequence of K targets.
    :param epochs: the number of epochs (a resumed run continues up to this number).
    :param evaluate: ``evaluate(model) -> dict`` called in eval mode and ``no_grad`` after each epoch.
    :param shared_params: the shared parameters; default ``model.shared_parameters()``.
    :param task_params: per-task parameters; default ``model.task_parameters()`` when defined.
    :param use_features: hand the shared representation to the strategy (representation mode).
    :param checkpoint_dir: where ``checkpoint.pt`` is written after every epoch and resumed from.
    :param progress: show a tqdm progress bar.
    :param step_callback: ``step_callback(step, info)`` after every strategy step (traces).
    :param scheduler: an optional LR scheduler stepped once per epoch.
    """

    def __init__(
        self,
        model: nn.Module,
        strategy: StepStrategy,
        optimizer: torch.optim.Optimizer,
        loss_fns: Sequence[LossFn],
        *,
        train_loader: Iterable[Any],
        epochs: int,
        evaluate: Callable[[nn.Module], dict[str, Any]] | None = None,
        shared_params: Iterable[Tensor] | None = None,
        task_params: Iterable[Iterable[Tensor]] | None = None,
        use_features: bool = False,
        checkpoint_dir: str | Path | None = None,
        progress: bool = True,
        step_callback: Callable[[int, dict[str, Any]], None] | None = None,
        scheduler: Any | None = None,
    ) -> None:
        if not isinstance(strategy, StepStrategy):
            raise TypeError(f"Parameter `strategy` should be a methods.StepStrategy. Found `{type(strategy).__name__}`.")
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"Parameter `epochs` should be a non-negative int. Found `epochs = {epochs!r}`.")
        self.loss_fns = list(loss_fns)
        if not self.loss_fns:
            raise ValueError("Parameter `loss_fns` should hold one loss function per task. Found none.")
        n_tasks = getattr(model, "n_tasks", None)
        if n_tasks is not None and n_tasks != len(self.loss_fns):
            raise ValueError(f"Parameter `loss_fns` should have one entry per task ({n_tasks}). Found {len(self.loss_fns)}.")
        if shared_params is None:
            if not hasattr(model, "shared_parameters"):
                raise ValueError("Pass `shared_params`, or give the model a `shared_parameters()` method.")
            shared_params = model.shared_parameters()
        if task_params is None and hasattr(model, "task_parameters"):
            task_params = model.task_parameters()
        self.shared_params = [p for p in shared_params]
        self.task_params = None if task_params is None else [list(ps) for ps in task_params]
        if use_features and not (hasattr(model, "encode") and hasattr(model, "decode")):
            raise ValueError(f"`use_features=True` needs a model with `encode` and `decode`; {type(model).__name__} has none.")
        self.model, self.strategy, self.optimizer = model, strategy, optimizer
        self.train_loader, self.epochs, self.evaluate = train_loader, epochs, evaluate
        self.use_features, self.progress = use_features, progress
        self.step_callback, self.scheduler = step_callback, scheduler
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.history: list[dict[str, Any]] = []
        self.step_count = 0
        self.start_epoch = 0
        self.wall_s = 0.0

    @property
    def n_tasks(self) -> int:
        return len(self.loss_fns)

    def _closure(self, x: Any, y: Any) -> Callable[[Sequence[int] | None], ForwardResult]:
        model = self.model

        def closure(tasks: Sequence[int] | None = None) -> ForwardResult:
            if tasks is not None and len(tasks) == 1 and hasattr(model, "forward_task"):
                t = int(tasks[0])
                out = _call(model.forward_task, x, t)
                if isinstance(out, (list, tuple)):
                    out = out[t]
                return ForwardResult(self.loss_fns[t](out, _target(y, t)).reshape(1))
            z = None
            if self.use_features:
                z = _call(model.encode, x)
                outs = model.decode(z)
            else:
                outs = _call(model, x)
            idx = range(self.n_tasks) if tasks is None else tasks
            if len(outs) != self.n_tasks:
                raise ValueError(f"The model should return one output per task ({self.n_tasks}). Found {len(outs)}.")
            task_losses = [self.loss_fns[t](outs[t], _target(y, t)) for t in idx]
            return ForwardResult(torch.stack(task_losses), z, task_losses if z is not None else None)

        return closure

    # -- checkpoints -------------------------------------------------------------------------------
    def _loader_generator(self) -> torch.Generator | None:
        gen = getattr(self.train_loader, "generator", None)
        sampler = getattr(self.train_loader, "sampler", None)
        return gen if gen is not None else getattr(sampler, "generator", None)

    def state_dict(self) -> dict[str, Any]:
        gen = self._loader_generator()
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "strategy": self.strategy.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "epoch": len(self.history),
            "step": self.step_count,
            "history": self.history,
            "wall_s": self.wall_s,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "loader": None if gen is None else gen.get_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.strategy.load_state_dict(state["strategy"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.history, self.step_count = list(state["history"]), int(state["step"])
        self.start_epoch, self.wall_s = int(state["epoch"]), float(state.get("wall_s", 0.0))
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        gen = self._loader_generator()
        if gen is not None and rng["loader"] is not None:
            gen.set_state(rng["loader"])

    def _save(self) -> None:
        if self.checkpoint_dir is None:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_dir / (_CKPT + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, self.checkpoint_dir / _CKPT)

    def _maybe_resume(self) -> None:
        if self.checkpoint_dir is None or not (self.checkpoint_dir / _CKPT).exists():
            return
        state = torch.load(self.checkpoint_dir / _CKPT, map_location="cpu", weights_only=False)
        self.load_state_dict(state)
        logger.info("resumed from %s at epoch %d", self.checkpoint_dir / _CKPT, self.start_epoch)

    # -- the loop ----------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train (resuming from the checkpoint if there is one) and return the results dict.

        :returns: ``{"history": [per-epoch records], "steps": int, "epochs": int, "wall_s": float,
            "resumed_from_epoch": int}``; each record has ``epoch``, ``train_losses`` (mean per task),
            ``time_s``, and ``val`` (the ``evaluate`` dict) when ``evaluate`` is given.
        """
        from tqdm.auto import tqdm

        self._code_state = git_info()  # the code that trains, whatever happens to the tree meanwhile
        self._maybe_resume()
        resumed_from = self.start_epoch
        device = self.shared_params[0].device
        for epoch in range(self.start_epoch, self.epochs):
            t0 = time.perf_counter()
            self.model.train()
            self.strategy.on_epoch_start(epoch)
            sums = torch.zeros(self.n_tasks, dtype=torch.float64)
            n_batches = 0
            bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}/{self.epochs}", disable=not self.progress, leave=False)
            for batch in bar:
                x, y = _to(batch[0], device), _to(batch[1], device)
                info = self.strategy.step(self._closure(x, y), self.optimizer,
                                          shared_params=self.shared_params, task_params=self.task_params)
                self.step_count += 1
                sums += torch.tensor(info["losses"], dtype=torch.float64)
                n_batches += 1
                if self.step_callback is not None:
                    self.step_callback(self.step_count, info)
            self.strategy.on_epoch_end(epoch)
            if self.scheduler is not None:
                self.scheduler.step()
            record: dict[str, Any] = {"epoch": epoch + 1, "train_losses": (sums / max(n_batches, 1)).tolist()}
            if self.evaluate is not None:
                self.model.eval()
                with torch.no_grad():
                    record["val"] = self.evaluate(self.model)
            record["time_s"] = time.perf_counter() - t0
            self.wall_s += record["time_s"]
            self.history.append(record)
            self._save()
            logger.info("epoch %d: %s", epoch + 1, record)
        return {"history": self.history, "steps": self.step_count, "epochs": self.epochs,
                "wall_s": self.wall_s, "resumed_from_epoch": resumed_from}

    def save_results(self, path: str | Path, results: dict[str, Any], settings: dict[str, Any]) -> Path:
        """Write ``results`` with provenance (commit, machine, versions, ``settings``) as JSON."""
        git = getattr(self, "_code_state", None)
        return write_json(path, {"provenance": provenance(settings, self.shared_params[0].device, git=git), **results})
