"""Step strategies: how one batch becomes optimizer steps.

A strategy gets a *closure* that runs a fresh forward pass on the current batch and returns a
:class:`ForwardResult`; ``closure(None)`` computes every task's loss, ``closure([t])`` only task t's
(a model may still run its whole forward). Strategies never build models or optimizers.

* :class:`JointStep`: one optimizer step with a combiner (the usual multi-task step).
* :class:`SequentialStep`: one optimizer step per task, in a fixed or random order (CSO phase 1).
* :class:`MixedStep`: draws one of several strategies per batch or per epoch with given
  probabilities (CSO's mixing of its two phases).

Stage-wise priority training (NMT) and the population of models with transfer (MT2O) are drivers of
their own (``methods.nmt``, ``methods.mt2o``): they own several optimizers or models.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from ._core import Combiner, HeadGrads, mtl_backward

__all__ = ["ForwardResult", "Closure", "StepStrategy", "JointStep", "SequentialStep", "MixedStep"]


@dataclass
class ForwardResult:
    """Losses of one forward pass (``(K,)`` or ``(len(tasks),)``) and, optionally, the shared features.

    >>> import torch
    >>> from methods import ForwardResult
    >>> res = ForwardResult(torch.tensor([0.5, 1.5]))
    >>> res.losses.tolist(), res.features is None, res.task_losses is None
    ([0.5, 1.5], True, True)
    """

    losses: Tensor
    features: Tensor | None = None
    task_losses: list[Tensor] | None = None  # the unstacked losses, for per-head backward passes


Closure = Callable[[Sequence[int] | None], ForwardResult]


class StepStrategy(ABC):
    """Turns one batch into one or more optimizer steps.

    >>> import torch
    >>> from methods import ForwardResult, StepStrategy
    >>> class SumStep(StepStrategy):   # plain descent on L_1 + L_2
    ...     def step(self, closure, optimizer, *, shared_params, task_params=None):
    ...         optimizer.zero_grad(); closure(None).losses.sum().backward(); optimizer.step()
    ...         return {"level": "sum"}
    >>> w = torch.nn.Parameter(torch.tensor([1.0])); opt = torch.optim.SGD([w], lr=0.1)
    >>> SumStep().step(lambda tasks: ForwardResult(torch.stack([w[0] ** 2, 3 * w[0]])), opt, shared_params=[w])
    {'level': 'sum'}
    >>> round(w.item(), 4)   # 1 - 0.1 * (2w + 3)
    0.5
    """

    @abstractmethod
    def step(
        self,
        closure: Closure,
        optimizer: torch.optim.Optimizer,
        *,
        shared_params: Sequence[Tensor],
        task_params: Sequence[Sequence[Tensor]] | None = None,
    ) -> dict[str, Any]:
        """Run the steps for one batch and return the step info (JSON-able)."""

    def on_epoch_start(self, epoch: int) -> None:
        """Hook called by the trainer at the start of every epoch."""

    def on_epoch_end(self, epoch: int) -> None:
        """Hook called by the trainer at the end of every epoch: ends the epoch of every combiner."""
        for combiner in self.combiners():
            combiner.end_epoch()

    def reset(self) -> None:
        """Restore a fresh instance's state."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def combiners(self) -> list[Combiner]:
        """The combiners this strategy uses (the trainer adds their parameters to checkpoints)."""
        return []


class JointStep(StepStrategy):
    """One forward pass, one ``mtl_backward`` with ``combiner``, one optimizer step.

    :param combiner: any :class:`~methods.Combiner`.
    :param head_grads: how task-specific parameters get their gradient (see ``mtl_backward``); ``None``
        takes the combiner's own ``head_grads`` attribute when it has one (EMTL weights its heads), else
        ``"raw"``.
    :param use_features: representation mode: gradient statistics on the closure's ``features``.

    >>> import torch
    >>> from methods import EqualWeighting, ForwardResult, JointStep
    >>> w = torch.nn.Parameter(torch.tensor([1.0])); opt = torch.optim.SGD([w], lr=0.1)
    >>> closure = lambda tasks: ForwardResult(torch.stack([w[0] ** 2, 3 * w[0]]))   # gradients 2w and 3
    >>> info = JointStep(EqualWeighting()).step(closure, opt, shared_params=[w])
    >>> round(w.item(), 4)   # 1 - 0.1 * mean(2, 3)
    0.75
    """

    def __init__(self, combiner: Combiner, *, head_grads: HeadGrads | None = None, use_features: bool = False) -> None:
        if not isinstance(combiner, Combiner):
            raise TypeError(f"Parameter `combiner` should be a methods.Combiner. Found `{type(combiner).__name__}`.")
        self.combiner = combiner
        self.head_grads: HeadGrads = head_grads if head_grads is not None else getattr(combiner, "head_grads", "raw")
        self.use_features = use_features
        self._first = True

    def step(self, closure, optimizer, *, shared_params, task_params=None):
        res = closure(None)
        if self.use_features and res.features is None:
            raise ValueError("JointStep(use_features=True) needs a closure that returns `features`.")
        optimizer.zero_grad(set_to_none=True)
        use_list = self.use_features and res.task_losses is not None
        info = mtl_backward(
            res.task_losses if use_list else res.losses, self.combiner, shared_params=shared_params, task_params=task_params,
            features=res.features if self.use_features else None, head_grads=self.head_grads,
            strict=self._first,
        )
        self._first = False
        optimizer.step()
        self.combiner.after_step(lambda: _no_grad_losses(closure))
        return info

    def reset(self) -> None:
        self.combiner.reset()

    def state_dict(self) -> dict[str, Any]:
        return {"combiner": self.combiner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.combiner.load_state_dict(state["combiner"])

    def combiners(self) -> list[Combiner]:
        return [self.combiner]

    def __repr__(self) -> str:
        return f"JointStep({self.combiner!r})"


def _no_grad_losses(closure: Closure) -> Tensor:
    with torch.no_grad():
        return closure(None).losses.detach()


class SequentialStep(StepStrategy):
    """One optimizer step per task on the same batch: for t in order, minimize L_t alone.

    This is CSO's phase 1 (arXiv 2406.02996, Alg. 1): each task's update sees the parameters left by
    the previous task's. ``order=None`` uses 0..K-1; ``shuffle=True`` draws a new order per batch
    from ``generator``.

    >>> import torch
    >>> from methods import ForwardResult, SequentialStep
    >>> w = torch.nn.Parameter(torch.tensor([1.0])); opt = torch.optim.SGD([w], lr=0.1)
    >>> def closure(tasks):   # L = (w^2, 3w); closure([t]) returns task t's loss only
    ...     losses = torch.stack([w[0] ** 2, 3 * w[0]])
    ...     return ForwardResult(losses if tasks is None else losses[tasks])
    >>> info = SequentialStep(2).step(closure, opt, shared_params=[w])
    >>> info["order"], round(w.item(), 4)   # w = 1 - 0.1 * 2 = 0.8, then 0.8 - 0.1 * 3
    ([0, 1], 0.5)
    """

    def __init__(self, n_tasks: int, order: Sequence[int] | None = None, *, shuffle: bool = False,
                 generator: torch.Generator | None = None) -> None:
        if n_tasks < 1:
            raise ValueError(f"Parameter `n_tasks` should be positive. Found `n_tasks = {n_tasks}`.")
        order = list(range(n_tasks)) if order is None else list(order)
        if sorted(order) != list(range(n_tasks)):
            raise ValueError(f"Parameter `order` should be a permutation of 0..{n_tasks - 1}. Found `order = {order}`.")
        self.n_tasks, self.order, self.shuffle, self.generator = n_tasks, order, shuffle, generator

    def step(self, closure, optimizer, *, shared_params, task_params=None):
        order = self.order
        if self.shuffle:
            order = [self.order[i] for i in torch.randperm(self.n_tasks, generator=self.generator).tolist()]
        losses = [0.0] * self.n_tasks
        for t in order:
            res = closure([t])
            loss = res.losses.reshape(-1)
            if loss.numel() != 1:
                raise ValueError(f"closure([t]) should return one loss. Found `losses.shape = {tuple(res.losses.shape)}`.")
            optimizer.zero_grad(set_to_none=True)
            loss[0].backward()
            optimizer.step()
            losses[t] = float(loss.detach())
        return {"level": "sequential", "order": order, "losses": losses}

    def __repr__(self) -> str:
        return f"SequentialStep(n_tasks={self.n_tasks}, order={self.order}, shuffle={self.shuffle})"


class MixedStep(StepStrategy):
    """Draws one of several strategies with fixed probabilities, per batch or per epoch.

    :param choices: ``(strategy, probability)`` pairs; probabilities are normalized.
    :param draw: ``"batch"`` (a new draw every step) or ``"epoch"`` (one draw per epoch).
    :param generator: the ``torch.Generator`` of the draws (seed it for reproducibility).

    >>> import torch
    >>> from methods import EqualWeighting, ForwardResult, JointStep, MixedStep, SequentialStep
    >>> w = torch.nn.Parameter(torch.tensor([1.0])); opt = torch.optim.SGD([w], lr=0.1)
    >>> closure = lambda tasks: ForwardResult(torch.stack([w[0] ** 2, 3 * w[0]]))
    >>> mixed = MixedStep([(JointStep(EqualWeighting()), 3.0), (SequentialStep(2), 0.0)],
    ...                   generator=torch.Generator().manual_seed(0))
    >>> info = mixed.step(closure, opt, shared_params=[w])
    >>> mixed.probs.tolist(), info["phase"], mixed.counts   # probabilities normalized; phase 1 never drawn
    ([1.0, 0.0], 0, [1, 0])
    """

    def __init__(self, choices: Iterable[tuple[StepStrategy, float]], *, draw: Literal["batch", "epoch"] = "batch",
                 generator: torch.Generator | None = None) -> None:
        pairs = list(choices)
        if not pairs:
            raise ValueError("Parameter `choices` should hold at least one (strategy, probability) pair. Found none.")
        probs = torch.tensor([float(p) for _, p in pairs], dtype=torch.float64)
        if bool((probs < 0).any()) or float(probs.sum()) <= 0:
            raise ValueError(f"Probabilities should be non-negative with a positive sum. Found `{probs.tolist()}`.")
        if draw not in ("batch", "epoch"):
            raise ValueError(f"Parameter `draw` should be 'batch' or 'epoch'. Found `draw = {draw!r}`.")
        self.strategies = [s for s, _ in pairs]
        self.probs = probs / probs.sum()
        self.draw, self.generator = draw, generator
        self._current: int | None = None
        self.counts = [0] * len(pairs)

    def _draw(self) -> int:
        return int(torch.multinomial(self.probs, 1, generator=self.generator))

    def on_epoch_start(self, epoch: int) -> None:
        if self.draw == "epoch":
            self._current = self._draw()
        for s in self.strategies:
            s.on_epoch_start(epoch)

    def step(self, closure, optimizer, *, shared_params, task_params=None):
        i = self._draw() if (self.draw == "batch" or self._current is None) else self._current
        self.counts[i] += 1
        info = self.strategies[i].step(closure, optimizer, shared_params=shared_params, task_params=task_params)
        info["phase"] = i
        return info

    def reset(self) -> None:
        self._current, self.counts = None, [0] * len(self.strategies)
        for s in self.strategies:
            s.reset()

    def state_dict(self) -> dict[str, Any]:
        return {"current": self._current, "counts": list(self.counts),
                "strategies": [s.state_dict() for s in self.strategies],
                "generator": None if self.generator is None else self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._current, self.counts = state["current"], list(state["counts"])
        for s, st in zip(self.strategies, state["strategies"]):
            s.load_state_dict(st)
        if self.generator is not None and state.get("generator") is not None:
            self.generator.set_state(state["generator"])

    def combiners(self) -> list[Combiner]:
        return [c for s in self.strategies for c in s.combiners()]

    def __repr__(self) -> str:
        inner = ", ".join(f"({s!r}, {p:.3g})" for s, p in zip(self.strategies, self.probs.tolist()))
        return f"MixedStep([{inner}], draw={self.draw!r})"
