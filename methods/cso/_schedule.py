r"""CSO's phase schedule and the full training strategy (arXiv 2406.02996, Sec. 4.3 "mixing", Table 4).

Phase 1 (Eq. 9) visits the tasks one at a time on the same batch, one optimizer step each
(:class:`~methods.SequentialStep`); phase 2 is one joint step with :class:`~methods.cso.CSOCombiner`
(:class:`~methods.JointStep`). Mixing [paper]: draw :math:`P \sim U(0,1)` and run phase 1 iff :math:`P \ge e/E`,
e = 0…E−1 (0-based, [decision] §10 #2), so :math:`\Pr(\text{phase 1}) = 1 - e/E`: epoch 0 is pure phase 1.

Modes (``specs/cso.md`` §4): ``"mixed"`` (default), ``"phase1"``, ``"phase2"``, ``"sequential"`` (phase 1 for
e < ⌊switch·E⌋, then phase 2; switch 0.5 [decision]). ``draw="batch"`` (default; [official-code]) draws per
mini-batch, ``draw="epoch"`` once per epoch ([paper]). The draws come from their own ``torch.Generator``
(default seed ``seed + 7919``; [decision]: the spec names a numpy Generator, we keep torch's, saved in
``state_dict``). ``phase1_lr_scale`` multiplies the learning rate during phase-1 steps only (1/K: the
equal-step ablation). ``phase1_order="shuffle"`` permutes the task order per batch.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from ..strategies import JointStep, MixedStep, SequentialStep, StepStrategy
from ._combiner import CSOCombiner

__all__ = ["PhaseSchedule", "CSOStep", "phase1_probability"]

Mode = Literal["mixed", "phase1", "phase2", "sequential"]
_MODES = ("mixed", "phase1", "phase2", "sequential")


def phase1_probability(epoch: int, num_epochs: int, mode: Mode = "mixed", switch: float = 0.5) -> float:
    """Probability of phase 1 in (0-based) ``epoch`` of ``num_epochs``: 1 − e/E for ``"mixed"``."""
    if num_epochs < 1 or not 0 <= epoch:
        raise ValueError(f"Expected 0 <= epoch and num_epochs >= 1. Found `epoch = {epoch}`, `num_epochs = {num_epochs}`.")
    if mode == "mixed":
        return max(0.0, 1.0 - epoch / num_epochs)
    if mode == "phase1":
        return 1.0
    if mode == "phase2":
        return 0.0
    if mode == "sequential":
        return 1.0 if epoch < math.floor(switch * num_epochs) else 0.0
    raise ValueError(f"Parameter `mode` should be one of {_MODES}. Found `mode = {mode!r}`.")


class PhaseSchedule:
    """Standalone phase draws: ``phase(epoch, num_epochs) -> 1 | 2`` (phase 1 iff u ≥ e/E, u ~ U(0,1)).

    :param mode: see the module docstring. :param draw: ``"batch"`` or ``"epoch"``.
    :param switch: the ``"sequential"`` switch point. :param seed: seed of the own generator.
    """

    def __init__(self, mode: Mode = "mixed", *, draw: Literal["batch", "epoch"] = "batch", switch: float = 0.5,
                 seed: int = 0) -> None:
        if mode not in _MODES:
            raise ValueError(f"Parameter `mode` should be one of {_MODES}. Found `mode = {mode!r}`.")
        if draw not in ("batch", "epoch"):
            raise ValueError(f"Parameter `draw` should be 'batch' or 'epoch'. Found `draw = {draw!r}`.")
        if not 0.0 <= switch <= 1.0:
            raise ValueError(f"Parameter `switch` should be in [0, 1]. Found `switch = {switch}`.")
        self.mode, self.draw, self.switch = mode, draw, switch
        self.generator = torch.Generator().manual_seed(seed)
        self._epoch: int | None = None
        self._u_epoch = 0.0

    def phase(self, epoch: int, num_epochs: int) -> int:
        p1 = phase1_probability(epoch, num_epochs, self.mode, self.switch)
        if self.draw == "epoch":
            if epoch != self._epoch:
                self._epoch, self._u_epoch = epoch, float(torch.rand((), generator=self.generator, dtype=torch.float64))
            u = self._u_epoch
        else:
            u = float(torch.rand((), generator=self.generator, dtype=torch.float64))
        return 1 if u >= 1.0 - p1 else 2  # P(u >= e/E) = 1 - e/E

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "epoch": self._epoch, "u_epoch": self._u_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._epoch, self._u_epoch = state["epoch"], state["u_epoch"]


class _LRScaled(StepStrategy):
    """Runs ``inner`` with every param group's learning rate multiplied by ``scale`` (restored afterwards)."""

    def __init__(self, inner: StepStrategy, scale: float) -> None:
        self.inner, self.scale = inner, scale

    def step(self, closure, optimizer, *, shared_params, task_params=None):
        if self.scale == 1.0:
            return self.inner.step(closure, optimizer, shared_params=shared_params, task_params=task_params)
        saved = [g["lr"] for g in optimizer.param_groups]
        try:
            for g in optimizer.param_groups:
                g["lr"] = g["lr"] * self.scale
            return self.inner.step(closure, optimizer, shared_params=shared_params, task_params=task_params)
        finally:
            for g, lr in zip(optimizer.param_groups, saved):
                g["lr"] = lr

    def __repr__(self) -> str:
        return f"{self.inner!r}@lr×{self.scale:g}"


class CSOStep(MixedStep):
    """The CSO training strategy: phase 1 (sequential per-task steps) mixed with phase 2 (``CSOCombiner``).

    Plug into ``methods.trainer.Trainer`` (it calls :meth:`on_epoch_start`) or call ``step`` yourself after
    ``on_epoch_start(e)``. ``step`` info carries ``"phase"`` (1 or 2) and ``"optimizer_steps"``.

    :param combiner: the phase-2 combiner.
    :param num_epochs: E, the number of epochs of the run (the schedule depends on e/E).
    :param mode: ``"mixed" | "phase1" | "phase2" | "sequential"``.
    :param draw: ``"batch"`` (default, [official-code]) or ``"epoch"`` ([paper]).
    :param switch: switch point of ``"sequential"``.
    :param generator: the phase RNG (default ``torch.Generator().manual_seed(seed + 7919)``).
    :param seed: used only when ``generator`` is None.
    :param phase1_order: ``"fixed"`` (1…K, [paper]) or ``"shuffle"``.
    :param phase1_lr_scale: learning-rate factor during phase-1 steps (default 1.0).

    >>> import torch
    >>> from torch import nn
    >>> from methods.cso import CSOCombiner, CSOStep, TaskBNModel, connection_map
    >>> model = TaskBNModel(nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4)), [nn.Identity()] * 2)
    >>> cmap = connection_map(model, torch.zeros(2, 1, 8, 8), forward=lambda m, x: m.trunk(x))
    >>> step = CSOStep(CSOCombiner(cmap, model.shared_parameters()), num_epochs=4)
    >>> probs = []
    >>> for epoch in range(4):   # P(phase 1) = 1 - e/E
    ...     step.on_epoch_start(epoch); probs.append(step.probs.tolist())
    >>> probs
    [[1.0, 0.0], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75]]
    """

    def __init__(self, combiner: CSOCombiner, num_epochs: int, *, mode: Mode = "mixed",
                 draw: Literal["batch", "epoch"] = "batch", switch: float = 0.5,
                 generator: torch.Generator | None = None, seed: int = 0,
                 phase1_order: Literal["fixed", "shuffle"] = "fixed", phase1_lr_scale: float = 1.0) -> None:
        if not isinstance(combiner, CSOCombiner):
            raise TypeError(f"Parameter `combiner` should be a CSOCombiner. Found `{type(combiner).__name__}`.")
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
            raise ValueError(f"Parameter `num_epochs` should be a positive int. Found `num_epochs = {num_epochs!r}`.")
        if mode not in _MODES:
            raise ValueError(f"Parameter `mode` should be one of {_MODES}. Found `mode = {mode!r}`.")
        if phase1_order not in ("fixed", "shuffle"):
            raise ValueError(f"Parameter `phase1_order` should be 'fixed' or 'shuffle'. Found `{phase1_order!r}`.")
        if not phase1_lr_scale > 0:
            raise ValueError(f"Parameter `phase1_lr_scale` should be positive. Found `phase1_lr_scale = {phase1_lr_scale}`.")
        if not 0.0 <= switch <= 1.0:
            raise ValueError(f"Parameter `switch` should be in [0, 1]. Found `switch = {switch}`.")
        gen = generator if generator is not None else torch.Generator().manual_seed(seed + 7919)
        k = combiner.n_tasks
        assert k is not None
        phase1 = _LRScaled(SequentialStep(k, shuffle=phase1_order == "shuffle", generator=gen), phase1_lr_scale)
        super().__init__([(phase1, 1.0), (JointStep(combiner), 1.0)], draw=draw, generator=gen)
        self.combiner, self.num_epochs, self.mode, self.switch = combiner, num_epochs, mode, switch
        self.n_tasks = k
        self.epoch = 0
        self._set_probs(0)

    def _set_probs(self, epoch: int) -> None:
        p1 = phase1_probability(epoch, self.num_epochs, self.mode, self.switch)
        self.probs = torch.tensor([p1, 1.0 - p1], dtype=torch.float64)

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        self._set_probs(epoch)
        super().on_epoch_start(epoch)

    def _draw(self) -> int:
        p1 = float(self.probs[0])
        if p1 >= 1.0 or p1 <= 0.0:  # deterministic phases consume no random numbers
            return 0 if p1 >= 1.0 else 1
        u = float(torch.rand((), generator=self.generator, dtype=torch.float64))
        return 0 if u >= 1.0 - p1 else 1  # phase 1 iff u >= e/E

    def step(self, closure, optimizer, *, shared_params, task_params=None):
        info = super().step(closure, optimizer, shared_params=shared_params, task_params=task_params)
        info["phase"] = info["phase"] + 1
        info["optimizer_steps"] = self.n_tasks if info["phase"] == 1 else 1
        return info

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.epoch = int(state.get("epoch", 0))
        self._set_probs(self.epoch)

    def __repr__(self) -> str:
        return (f"CSOStep(mode={self.mode!r}, draw={self.draw!r}, num_epochs={self.num_epochs}, "
                f"combiner={self.combiner!r})")
