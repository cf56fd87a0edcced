r"""The step machinery shared by every method: combiner bases, per-task gradients, ``mtl_backward``.

One training step is: a batch → per-task losses :math:`L \in \mathbb{R}^K` → (for gradient-level
methods) the Jacobian :math:`J \in \mathbb{R}^{K \times P}` of the losses with respect to the shared
parameters, computed once in one batched backward pass → a combiner turns it into the update written
to ``.grad`` → the optimizer steps.

Three combiner levels cover the baselines and the four papers:

* :class:`LossCombiner` (``level = "loss"``): losses in, a scalar out; one ordinary backward pass.
* :class:`GradientCombiner` (``level = "gradient"``): weights :math:`w` from the Jacobian statistics;
  the shared update is :math:`J^\top w`.
* :class:`StructureCombiner` (``level = "structure"``): gets the Jacobian split per shared parameter
  tensor and returns one update per tensor (CSO's phase 2).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

__all__ = [
    "Combiner",
    "LossCombiner",
    "GradientCombiner",
    "StructureCombiner",
    "GradientStats",
    "Level",
    "task_jacobian",
    "mtl_backward",
    "check_losses",
]

logger = logging.getLogger(__name__)

Level = Literal["loss", "gradient", "structure"]
HeadGrads = Literal["raw", "weighted"]


def check_losses(losses: Tensor, n_tasks: int | None = None, *, check_finite: bool = True) -> Tensor:
    """Validate a vector of per-task losses and return it.

    :param losses: tensor of shape ``(K,)``, one scalar loss per task.
    :param n_tasks: the expected K, or ``None`` to accept any K >= 1.
    :param check_finite: raise on NaN or infinite losses (costs one device sync).
    :raises TypeError: if ``losses`` is not a tensor.
    :raises ValueError: on a wrong shape, a wrong number of tasks or a non-finite value.
    """
    if not isinstance(losses, Tensor):
        raise TypeError(f"Parameter `losses` should be a Tensor of shape (K,). Found `{type(losses).__name__}`.")
    if losses.dim() != 1 or losses.numel() == 0:
        raise ValueError(
            f"Parameter `losses` should be a non-empty 1-D tensor of per-task losses. "
            f"Found `losses.shape = {tuple(losses.shape)}`."
        )
    if n_tasks is not None and losses.numel() != n_tasks:
        raise ValueError(
            f"Parameter `losses` should have one entry per task ({n_tasks}). "
            f"Found `losses.shape = {tuple(losses.shape)}`."
        )
    if check_finite:
        finite = torch.isfinite(losses.detach())
        if not bool(finite.all()):
            bad = [(i, float(v)) for i, v in enumerate(losses.detach().tolist()) if not finite[i]]
            raise ValueError(f"Losses should be finite. Found non-finite losses (task, value): {bad}.")
    return losses


class Combiner(nn.Module, ABC):
    """Base of every method: turns what one step produced into the shared update.

    A combiner is an :class:`torch.nn.Module` so that learnable state (e.g. uncertainty weighting's
    log-variances) is reached by ``.parameters()``, moves with ``.to(...)`` and is saved by
    ``state_dict()``. Non-tensor state is saved through ``get_extra_state``.

    Every combiner exposes:

    * ``level``: ``"loss"``, ``"gradient"`` or ``"structure"``;
    * ``last_info``: a JSON-able dict describing the last step (weights, fallbacks, ...);
    * ``reset()``: restore the state of a freshly built instance;
    * ``after_step(recompute)``: a hook called after ``optimizer.step()``; ``recompute()`` returns the
      losses of the same batch at the new parameters (only methods such as FAMO call it).

    >>> import torch
    >>> from methods import MGDA, Combiner, EqualWeighting
    >>> [c.level for c in (EqualWeighting(), MGDA())], isinstance(MGDA(), Combiner)
    (['loss', 'gradient'], True)
    >>> EqualWeighting(n_tasks=2)(torch.tensor([1.0, 2.0, 3.0]))   # the task count is checked on every call
    Traceback (most recent call last):
        ...
    ValueError: Parameter `losses` should have one entry per task (2). Found `losses.shape = (3,)`.
    """

    level: ClassVar[Level]

    def __init__(self, n_tasks: int | None = None) -> None:
        super().__init__()
        if n_tasks is not None and (not isinstance(n_tasks, int) or n_tasks < 1):
            raise ValueError(f"Parameter `n_tasks` should be a positive int. Found `n_tasks = {n_tasks!r}`.")
        self.n_tasks = n_tasks
        self.last_info: dict[str, Any] = {}

    def reset(self) -> None:
        """Restore the behaviour of a freshly constructed instance (stateless: nothing to do)."""

    def after_step(self, recompute: Callable[[], Tensor]) -> None:
        """Hook called after the optimizer step. Default: nothing."""

    def end_epoch(self) -> None:
        """Hook called at the end of every training epoch (e.g. DWA's per-epoch history). Default: nothing."""

    def _check(self, losses: Tensor) -> Tensor:
        return check_losses(losses, self.n_tasks)

    def extra_repr(self) -> str:
        return "" if self.n_tasks is None else f"n_tasks={self.n_tasks}"

    def __repr__(self) -> str:  # concise: Name(args)
        return f"{type(self).__name__}({self.extra_repr()})"

    def __str__(self) -> str:
        return type(self).__name__


class LossCombiner(Combiner):
    """A method that needs only the loss values: ``combine(losses) -> scalar``.

    >>> import torch
    >>> from methods import LossCombiner
    >>> class Sum(LossCombiner):
    ...     def combine(self, losses):
    ...         return losses.sum()
    >>> Sum()(torch.tensor([1.0, 2.5]))   # forward() validates the losses, then calls combine()
    tensor(3.5000)
    """

    level: ClassVar[Level] = "loss"

    @abstractmethod
    def combine(self, losses: Tensor, /) -> Tensor:
        """Return the scalar to back-propagate, built from ``losses`` of shape ``(K,)``."""

    def forward(self, losses: Tensor, /) -> Tensor:
        return self.combine(self._check(losses))


@dataclass
class GradientStats:
    """What a gradient-level method sees in one step.

    :ivar jacobian: ``(K, P)`` detached per-task gradients, on the shared parameters (``mode =
        "params"``) or on the flattened shared representation (``mode = "features"``).
    :ivar losses: ``(K,)`` detached loss values.
    :ivar mode: where the gradients were taken.
    :ivar shapes: the shapes of the parameter tensors spanning J's columns (``mode="params"`` only).

    >>> import torch
    >>> from methods import GradientStats
    >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    >>> stats = GradientStats(J, torch.tensor([1.0, 1.0]), shapes=[torch.Size([2]), torch.Size([1])])
    >>> stats.gramian.tolist(), [round(float(n) ** 2, 4) for n in stats.norms]   # G = J J^T, ||g_i||^2 = G_ii
    ([[18.0, -22.0], [-22.0, 38.0]], [18.0, 38.0])
    >>> [tuple(b.shape) for b in stats.blocks()]   # one (K, numel) block per parameter tensor
    [(2, 2), (2, 1)]
    """

    jacobian: Tensor
    losses: Tensor
    mode: Literal["params", "features"] = "params"
    shapes: list[torch.Size] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def gramian(self) -> Tensor:
        """``J Jᵀ`` of shape ``(K, K)``, computed once."""
        return self.jacobian @ self.jacobian.T

    @cached_property
    def norms(self) -> Tensor:
        """Per-task gradient norms ``‖g_i‖``, from the Gramian's diagonal."""
        return self.gramian.diagonal().clamp_min(0).sqrt()

    def blocks(self) -> list[Tensor]:
        """J split into one ``(K, numel)`` block per shared parameter tensor."""
        if self.shapes is None:
            raise ValueError("Per-parameter blocks exist only in `mode='params'`.")
        return list(torch.split(self.jacobian, [int(torch.Size(s).numel()) for s in self.shapes], dim=1))


class GradientCombiner(Combiner):
    """A method that needs the per-task gradients of the shared parameters.

    Subclasses implement :meth:`weights`; the update is :math:`d = J^\\top w`. A method whose update is
    not a weighting of the rows of J overrides :meth:`aggregate` instead and sets
    ``supports_features = False``.

    >>> import torch
    >>> from methods import GradientCombiner, GradientStats
    >>> class Sum(GradientCombiner):
    ...     def weights(self, stats):
    ...         return torch.ones(stats.jacobian.shape[0])
    >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    >>> Sum().aggregate(GradientStats(J, torch.tensor([1.0, 1.0]))).tolist()   # d = J^T w = g_1 + g_2
    [2.0, 2.0, 2.0]
    """

    level: ClassVar[Level] = "gradient"
    supports_features: ClassVar[bool] = True

    @abstractmethod
    def weights(self, stats: GradientStats, /) -> Tensor:
        """Return the ``(K,)`` weights of the task gradients."""

    def aggregate(self, stats: GradientStats, /) -> Tensor:
        """Return the ``(P,)`` update direction; default ``Jᵀ w``."""
        w = self.weights(stats)
        return stats.jacobian.T @ w.to(stats.jacobian.dtype)

    def forward(self, stats: GradientStats, /) -> Tensor:
        """Return the weights for ``stats`` (a convenience for ``combiner(stats)``)."""
        return self.weights(stats)


class StructureCombiner(GradientCombiner):
    """A method that needs the per-task gradients split per shared parameter tensor (and model state).

    Subclasses implement :meth:`aggregate_blocks`, returning one flat update per parameter tensor.

    >>> import torch
    >>> from methods import GradientStats, StructureCombiner
    >>> class Split(StructureCombiner):   # tensor 0 follows task 0, tensor 1 follows task 1
    ...     def aggregate_blocks(self, blocks, stats):
    ...         return [b[i] for i, b in enumerate(blocks)]
    >>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    >>> Split().aggregate(GradientStats(J, torch.ones(2), shapes=[torch.Size([2]), torch.Size([1])])).tolist()
    [-4.0, 1.0, 1.0]
    """

    level: ClassVar[Level] = "structure"
    supports_features: ClassVar[bool] = False

    @abstractmethod
    def aggregate_blocks(self, blocks: list[Tensor], stats: GradientStats, /) -> list[Tensor]:
        """Map per-parameter Jacobian blocks ``(K, P_b)`` to per-parameter updates ``(P_b,)``."""

    def weights(self, stats: GradientStats, /) -> Tensor:  # pragma: no cover - not a weighting
        raise NotImplementedError(f"{type(self).__name__} is not a weighting of the task gradients.")

    def aggregate(self, stats: GradientStats, /) -> Tensor:
        return torch.cat([b.reshape(-1) for b in self.aggregate_blocks(stats.blocks(), stats)])


def _param_list(params: Iterable[Tensor] | None, name: str, *, allow_empty: bool = False) -> list[Tensor]:
    if params is None:
        if allow_empty:
            return []
        raise ValueError(f"Parameter `{name}` should be a non-empty iterable of tensors. Found `None`.")
    out = [p for p in params]
    if not out and not allow_empty:
        raise ValueError(f"Parameter `{name}` should be a non-empty iterable of tensors. Found an empty list.")
    for i, p in enumerate(out):
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise ValueError(f"Parameter `{name}[{i}]` should be a tensor that requires grad. Found `{type(p).__name__}`.")
    return out


def task_jacobian(
    losses: Tensor,
    inputs: Sequence[Tensor],
    *,
    retain_graph: bool = True,
    batched: bool = True,
) -> tuple[Tensor, str]:
    """Per-task gradients of ``losses`` (K,) with respect to ``inputs``, as a ``(K, P)`` matrix.

    All K vector-Jacobian products run in one batched backward pass
    (``torch.autograd.grad(..., is_grads_batched=True)``). If an operation in the graph has no
    batching rule, it falls back to K ordinary backward passes; the returned mode says which ran
    (``"batched"`` or ``"loop"``). Inputs a loss does not reach get zero columns.
    """
    k = losses.numel()
    if batched:
        try:
            eye = torch.eye(k, dtype=losses.dtype, device=losses.device)
            grads = torch.autograd.grad(
                losses, list(inputs), grad_outputs=eye, is_grads_batched=True,
                retain_graph=retain_graph, allow_unused=True, materialize_grads=True,
            )
            return torch.cat([g.reshape(k, -1) for g in grads], dim=1), "batched"
        except RuntimeError as err:  # an op without a batching rule: fall back
            logger.debug("batched Jacobian failed (%s); falling back to a loop", err)
    rows = []
    for i in range(k):
        grads = torch.autograd.grad(
            losses[i], list(inputs), retain_graph=True if i < k - 1 else retain_graph,
            allow_unused=True, materialize_grads=True,
        )
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows), "loop"


def _reaches(node: Any, targets: set[int], seen: set[int]) -> bool:
    """Whether the autograd graph below ``node`` reaches the accumulator of a tensor in ``targets``."""
    stack = [node]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        var = getattr(fn, "variable", None)  # AccumulateGrad nodes hold their leaf tensor
        if var is not None and id(var) in targets:
            return True
        stack.extend(nxt for nxt, _ in fn.next_functions)
    return False


def _check_dependence(losses: Tensor, shared: Sequence[Tensor]) -> None:
    """Raise if some task's loss does not reach the shared parameters.

    Through ``torch.stack`` autograd returns zeros, not ``None``, for a loss that never touches the
    shared parameters, so the check walks the graph of each stacked loss instead of calling autograd.
    For a loss vector not built by ``stack`` the graph cannot be split per task and the check is a
    per-task ``autograd.grad`` with ``allow_unused``.
    """
    if losses.grad_fn is None:
        raise ValueError("The losses do not depend on any parameter (they have no grad_fn).")
    targets = {id(p) for p in shared}
    root = losses.grad_fn
    if type(root).__name__.startswith("StackBackward") and len(root.next_functions) == losses.numel():
        for i, (node, _) in enumerate(root.next_functions):
            if not _reaches(node, targets, set()):
                raise ValueError(
                    f"Loss of task {i} does not depend on the shared parameters; expected every task's "
                    f"loss to be computed through them."
                )
        return
    for i in range(losses.numel()):
        grads = torch.autograd.grad(losses[i], list(shared), retain_graph=True, allow_unused=True)
        if all(g is None for g in grads):
            raise ValueError(
                f"Loss of task {i} does not depend on the shared parameters; expected every task's "
                f"loss to be computed through them."
            )


def _accumulate(params: Sequence[Tensor], flat: Tensor) -> None:
    offset = 0
    for p in params:
        n = p.numel()
        g = flat[offset : offset + n].view_as(p).to(p.dtype)
        p.grad = g.clone() if p.grad is None else p.grad + g
        offset += n


def split_losses(losses: Tensor | Sequence[Tensor]) -> tuple[Tensor, list[Tensor] | None]:
    """The ``(K,)`` loss vector and, when ``losses`` is the K scalar losses before stacking, that list.

    Backward passes that should run through one task's head only start from the list: from ``vector[i]`` autograd
    goes through the stack into every head (with zero cotangents).

    >>> a, b = torch.tensor(1.0), torch.tensor([2.0])
    >>> vec, parts = split_losses([a, b])
    >>> vec.tolist(), [p.shape for p in parts], split_losses(vec)[1] is None
    ([1.0, 2.0], [torch.Size([]), torch.Size([])], True)

    :raises ValueError: an empty list.
    """
    if isinstance(losses, Tensor):
        return losses, None
    task_losses = [loss.reshape(()) for loss in losses]
    if not task_losses:
        raise ValueError("Parameter `losses` should hold one loss per task. Found none.")
    return torch.stack(task_losses), task_losses


def mtl_backward(
    losses: Tensor | Sequence[Tensor],
    combiner: Combiner,
    *,
    shared_params: Iterable[Tensor],
    task_params: Iterable[Tensor] | Iterable[Iterable[Tensor]] | None = None,
    features: Tensor | None = None,
    head_grads: HeadGrads = "raw",
    retain_graph: bool = False,
    check_finite: bool = True,
    strict: bool = False,
) -> dict[str, Any]:
    r"""Fill ``.grad`` of the shared (and task-specific) parameters for one multi-task step.

    * loss-level combiner: ``combiner(losses).backward()``;
    * gradient-level: the ``(K, P)`` Jacobian on ``shared_params`` is computed once (batched), the
      combiner maps it to weights :math:`w` (or a direction), and the shared gradient is
      :math:`J^\top w`. Task-specific parameters get :math:`\nabla \sum_i L_i` (``head_grads="raw"``,
      TorchJD's ``mtl_backward`` convention) or :math:`\nabla \sum_i w_i L_i` (``"weighted"``, the
      convention of most paper code);
    * representation mode (``features`` given, gradient-level weightings only): the statistics come
      from :math:`\partial L_i / \partial z` (MGDA-UB, arXiv 1810.04650 §3.3) and the shared gradient
      is :math:`\nabla_\theta \sum_i w_i L_i`, exactly :math:`\sum_i w_i g_i`, in one more backward;
    * structure-level: like gradient-level, with the Jacobian split per shared parameter tensor.

    Gradients are accumulated into ``.grad`` (as ``Tensor.backward`` does): zero them first.

    :param losses: ``(K,)`` per-task losses attached to the graph, or a sequence of K scalar losses
        (then each task's backward in representation mode runs through its own head only).
    :param combiner: any :class:`Combiner`.
    :param shared_params: the shared parameters (non-empty).
    :param task_params: the task-specific parameters (a flat iterable, or one iterable per task).
    :param features: the shared representation, for representation mode.
    :param head_grads: ``"raw"`` or ``"weighted"`` (see above).
    :param retain_graph: keep the graph after the backward pass.
    :param check_finite: raise a ``ValueError`` on NaN or infinite losses.
    :param strict: also check that every loss depends on the shared parameters (K extra backward
        passes; the trainer does this on its first step only).
    :returns: the step info: ``losses``, ``level``, and the combiner's ``last_info`` (weights,
        fallbacks, the Jacobian mode ``"batched"``/``"loop"``, ``zero_grad_tasks``...).
    """
    if not isinstance(combiner, Combiner):
        raise TypeError(f"Parameter `combiner` should be a methods.Combiner. Found `{type(combiner).__name__}`.")
    losses, task_losses = split_losses(losses)
    check_losses(losses, combiner.n_tasks, check_finite=check_finite)
    shared = _param_list(shared_params, "shared_params")
    heads: list[Tensor] = []
    if task_params is not None:
        for item in task_params:
            heads.extend([item] if isinstance(item, Tensor) else list(item))
        heads = _param_list(heads, "task_params", allow_empty=True)
    if head_grads not in ("raw", "weighted"):
        raise ValueError(f"Parameter `head_grads` should be 'raw' or 'weighted'. Found `head_grads = {head_grads!r}`.")
    if strict:
        _check_dependence(losses, shared)
    info: dict[str, Any] = {"level": combiner.level, "losses": losses.detach().tolist()}

    if combiner.level == "loss":
        loss = combiner(losses)
        loss.backward(retain_graph=retain_graph)
        info.update(combiner.last_info)
        return info

    assert isinstance(combiner, GradientCombiner)
    k = losses.numel()
    detached = losses.detach()
    if features is not None:
        if not combiner.supports_features:
            raise ValueError(f"{combiner!s} needs gradients on the parameters; it does not support representation mode (features=...).")
        # One backward per task from its loss to z (and its head), then one backward of
        # z against sum_i w_i dL_i/dz through the trunk: every head and the trunk run once.
        if task_losses is not None:
            rows = [torch.autograd.grad(task_losses[i], [features] + heads, retain_graph=True, allow_unused=True,
                                        materialize_grads=True) for i in range(k)]
            jac = torch.stack([torch.cat([g.reshape(-1) for g in r]) for r in rows])
            mode = "loop"
        else:  # a stacked loss vector: one batched pass (heads of other tasks get zero cotangents)
            jac, mode = task_jacobian(losses, [features] + heads, retain_graph=True)
        n_z = features.numel()
        jz, j_heads = jac[:, :n_z], jac[:, n_z:]
        stats = GradientStats(jz, detached, mode="features")
        w = combiner.weights(stats).detach().to(jac.dtype)
        cotangent = (jz.T @ w).view_as(features).to(features.dtype)
        _accumulate(shared, torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            features, shared, grad_outputs=cotangent, retain_graph=retain_graph, allow_unused=True,
            materialize_grads=True)]))
        if heads:
            head_w = w if head_grads == "weighted" else torch.ones(k, dtype=jac.dtype, device=jac.device)
            _accumulate(heads, j_heads.T @ head_w)
        info.update({"jacobian_mode": mode, "grad_space": "features"})
        info.update(combiner.last_info)
        info.setdefault("weights", w.tolist())
        return info

    jac, mode = task_jacobian(losses, shared + heads, retain_graph=retain_graph)
    n_shared = sum(p.numel() for p in shared)
    j_shared, j_heads = jac[:, :n_shared], jac[:, n_shared:]
    zero_rows = (j_shared.abs().amax(dim=1) == 0).nonzero().flatten().tolist()
    stats = GradientStats(j_shared, detached, mode="params", shapes=[p.shape for p in shared])
    if k == 1:  # every method reduces to plain gradient descent on one task
        direction, w = j_shared[0], torch.ones(1, dtype=jac.dtype, device=jac.device)
        combiner.last_info = {"single_task": True}
    elif combiner.level == "structure":
        direction, w = combiner.aggregate(stats), None
    else:
        w = combiner.weights(stats).detach().to(jac.dtype)
        direction = j_shared.T @ w
    _accumulate(shared, direction)
    if heads:
        head_w = w if (head_grads == "weighted" and w is not None) else torch.ones(k, dtype=jac.dtype, device=jac.device)
        _accumulate(heads, j_heads.T @ head_w)
    info.update({"jacobian_mode": mode, "grad_space": "params", "zero_grad_tasks": zero_rows})
    info.update(combiner.last_info)
    if w is not None:
        info.setdefault("weights", w.tolist())
    return info
