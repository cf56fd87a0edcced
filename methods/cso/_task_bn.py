r"""Per-task BatchNorm for any CNN (CSO, arXiv 2406.02996, Sec. 3 "architecture requirement").

Every shared conv that CSO scores must feed a *task-specific* BatchNorm: one BN per task per layer,
each with its own :math:`\gamma, \beta` and running statistics; the forward pass for task :math:`\tau`
uses :math:`BN_\tau` everywhere. :func:`to_task_bn` converts every ``BatchNorm2d`` of a module (or of the
sub-modules named in ``include``) into a :class:`TaskBatchNorm2d` holding deep copies of the original
(so outputs are unchanged right after conversion; init follows [official-code], ``specs/cso.md`` §4).
:func:`active_task` selects the task; a forward pass with no task set raises.

Duck typing: any module with a ``bns`` sequence of BatchNorm modules and an ``active_task`` attribute is
treated as a task BN (so ``paper_repro.models.task_bn.TaskBatchNorm2d`` works with everything here).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["TaskBatchNorm2d", "to_task_bn", "active_task", "is_task_bn", "task_bn_modules", "TaskBNModel"]


def _check_n_tasks(n_tasks: int) -> int:
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, int) or n_tasks < 1:
        raise ValueError(f"Parameter `n_tasks` should be a positive int. Found `n_tasks = {n_tasks!r}`.")
    return n_tasks


class TaskBatchNorm2d(nn.Module):
    """One ``BatchNorm2d`` per task (deep copies of ``bn``); ``active_task`` picks the one applied.

    ``bns[t]`` holds task t's γ (``weight``), β (``bias``), ``running_mean``/``running_var`` and ``eps``.
    Shapes: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, bn: _BatchNorm, n_tasks: int) -> None:
        super().__init__()
        if not isinstance(bn, _BatchNorm):
            raise TypeError(f"Parameter `bn` should be a BatchNorm module. Found `{type(bn).__name__}`.")
        _check_n_tasks(n_tasks)
        self.bns = nn.ModuleList(copy.deepcopy(bn) for _ in range(n_tasks))
        self.active_task: int | None = None

    @property
    def n_tasks(self) -> int:
        return len(self.bns)

    def forward(self, x: Tensor, /) -> Tensor:
        if self.active_task is None:
            raise RuntimeError("TaskBatchNorm2d has no active task: run the forward pass inside `active_task(model, t)`.")
        return self.bns[self.active_task](x)

    def extra_repr(self) -> str:
        return f"n_tasks={self.n_tasks}, active_task={self.active_task}"


def is_task_bn(module: nn.Module) -> bool:
    """Whether ``module`` is a per-task BN (ours, or any module with ``bns`` of BatchNorms and ``active_task``)."""
    bns = getattr(module, "bns", None)
    return (hasattr(module, "active_task") and isinstance(bns, (nn.ModuleList, Sequence)) and len(bns) > 0
            and all(isinstance(b, _BatchNorm) for b in bns))


def task_bn_modules(model: nn.Module) -> list[nn.Module]:
    """Every per-task BN module of ``model``, in ``named_modules`` order."""
    return [m for m in model.modules() if is_task_bn(m)]


@contextmanager
def active_task(model: nn.Module, task: int | None) -> Iterator[nn.Module]:
    """Every per-task BN of ``model`` uses task ``task`` inside the block; the previous tasks are restored."""
    bns = task_bn_modules(model)
    previous = [bn.active_task for bn in bns]
    try:
        for bn in bns:
            if task is not None and not 0 <= task < len(bn.bns):
                raise ValueError(f"Parameter `task` should be in [0, {len(bn.bns)}). Found `task = {task}`.")
            bn.active_task = task
        yield model
    finally:
        for bn, t in zip(bns, previous):
            bn.active_task = t


def to_task_bn(model: nn.Module, n_tasks: int, *, include: Sequence[str] | None = None) -> nn.Module:
    """Replace, in place, every ``BatchNorm2d`` of ``model`` (or of the sub-modules ``include``) by a
    :class:`TaskBatchNorm2d` with ``n_tasks`` deep copies; return ``model``.

    :param model: any module (a trunk, or a whole multi-task net with ``include=["encoder"]``).
    :param n_tasks: K ≥ 1.
    :param include: qualified names of the sub-modules to convert (default: the whole model).
    :raises ValueError: if nothing is converted, or the model already holds per-task BNs.
    """
    _check_n_tasks(n_tasks)
    roots = [model] if include is None else [model.get_submodule(n) for n in include]
    if any(task_bn_modules(r) for r in roots):
        raise ValueError("Parameter `model` should not hold per-task BNs already. Found some.")
    targets = [(parent, name, child) for r in roots for parent in r.modules()
               for name, child in parent.named_children() if type(child) is nn.BatchNorm2d]
    if not targets:
        raise ValueError("Parameter `model` should hold BatchNorm2d modules to convert. Found none.")
    for parent, name, child in targets:
        setattr(parent, name, TaskBatchNorm2d(child, n_tasks))
    return model


class TaskBNModel(nn.Module):
    """A shared ``trunk`` (converted to per-task BN) with one head per task.

    ``forward_task(x, t) = heads[t](trunk(x))`` with BN_t active; ``forward(x)`` makes K passes
    (``[forward_task(x, t) for t]``; features depend on the task, so there is no single shared
    representation); ``predict_all(x) -> {t: out}``. The trunk's parameters that are not in a per-task
    BN are shared; each task's head and BN copies are its own.

    :param trunk: any CNN; its ``BatchNorm2d`` modules are converted here unless already per-task.
    :param heads: one module per task.
    """

    def __init__(self, trunk: nn.Module, heads: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(heads) < 1:
            raise ValueError("Parameter `heads` should hold one module per task. Found none.")
        self.n_tasks = len(heads)
        if not task_bn_modules(trunk):
            to_task_bn(trunk, self.n_tasks)
        self.trunk, self.heads = trunk, nn.ModuleList(heads)

    def forward_task(self, x: Tensor, task: int, /) -> Tensor:
        with active_task(self, task):
            return self.heads[task](self.trunk(x))

    def forward(self, x: Tensor, /) -> list[Tensor]:
        return [self.forward_task(x, t) for t in range(self.n_tasks)]

    def predict_all(self, x: Tensor, /) -> dict[int, Tensor]:
        return dict(enumerate(self.forward(x)))

    def _bn_params(self) -> list[list[nn.Parameter]]:
        bns = task_bn_modules(self.trunk)
        return [[p for bn in bns for p in bn.bns[t].parameters() if p.requires_grad] for t in range(self.n_tasks)]

    def shared_parameters(self) -> list[nn.Parameter]:
        own = {id(p) for ps in self._bn_params() for p in ps}
        return [p for p in self.trunk.parameters() if p.requires_grad and id(p) not in own]

    def task_parameters(self) -> list[list[nn.Parameter]]:
        bn = self._bn_params()
        return [[*(p for p in self.heads[t].parameters() if p.requires_grad), *bn[t]] for t in range(self.n_tasks)]
