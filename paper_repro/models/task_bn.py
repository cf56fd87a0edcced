"""Per-task BatchNorm for shared convolutional trunks (CSO, arXiv 2406.02996, Sec. 3; ``specs/cso.md`` §1, §6).

Every scored shared conv feeds one BatchNorm per task, with its own γ, β and running statistics; the forward
pass for task t uses BN_t everywhere. :func:`convert_to_task_bn` turns the ``BatchNorm2d`` modules of a model's
shared part into :class:`TaskBatchNorm2d` (deep copies of the original, so the function is unchanged right after
conversion), :func:`active_task` selects the task, and :func:`iter_conv_bn_pairs` lists each conv weight with
the per-task BN that follows it (what connection strength, Eq. 4–7, needs).

Joint forward: a :class:`TaskBatchNorm2d` with no active task raises ``RuntimeError`` (never a silent default
to task 0). ``EncoderHeadsModel.forward`` therefore runs the trunk once per task inside ``active_task``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor, nn

from .base import ConvNormAct, check_positive_int

__all__ = ["TaskBatchNorm2d", "convert_to_task_bn", "active_task", "set_active_task", "iter_conv_bn_pairs"]


class TaskBatchNorm2d(nn.Module):
    """One ``BatchNorm2d`` per task; ``active_task`` (``int | None``) selects which one ``forward`` applies.

    ``bns[t]`` is task t's BN (``weight`` = γ_t, ``bias`` = β_t, ``running_var``, ``eps``).
    Shapes: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, bn: nn.BatchNorm2d, n_tasks: int) -> None:
        super().__init__()
        check_positive_int("n_tasks", n_tasks)
        self.bns = nn.ModuleList(copy.deepcopy(bn) for _ in range(n_tasks))
        self.active_task: int | None = None

    @property
    def n_tasks(self) -> int:
        return len(self.bns)

    def forward(self, x: Tensor, /) -> Tensor:
        if self.active_task is None:
            raise RuntimeError(
                "TaskBatchNorm2d has no active task: call `model.forward_task(x, t)`, `model(x)` (one trunk pass "
                "per task) or run inside `active_task(model, t)`."
            )
        return self.bns[self.active_task](x)

    def extra_repr(self) -> str:
        return f"n_tasks={self.n_tasks}, active_task={self.active_task}"


def _task_bns(model: nn.Module) -> list[TaskBatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, TaskBatchNorm2d)]


def set_active_task(model: nn.Module, task: int | None) -> None:
    """Select task ``task`` (or none) in every :class:`TaskBatchNorm2d` of ``model``."""
    for bn in _task_bns(model):
        if task is not None and not 0 <= task < bn.n_tasks:
            raise ValueError(f"Parameter `task` should be in [0, {bn.n_tasks}). Found `task = {task}`.")
        bn.active_task = task


@contextmanager
def active_task(model: nn.Module, task: int | None) -> Iterator[nn.Module]:
    """Context manager: every :class:`TaskBatchNorm2d` of ``model`` uses task ``task``; restores on exit."""
    bns = _task_bns(model)
    previous = [bn.active_task for bn in bns]
    try:
        set_active_task(model, task)
        yield model
    finally:
        for bn, t in zip(bns, previous):
            bn.active_task = t


def _shared_root(model: nn.Module) -> nn.Module:
    """The shared part of ``model``: its ``encoder`` attribute when it has one, else the model itself."""
    encoder = getattr(model, "encoder", None)
    return encoder if isinstance(encoder, nn.Module) else model


def convert_to_task_bn(model: nn.Module, n_tasks: int | None = None) -> nn.Module:
    """Replace, in place, every ``BatchNorm2d`` of the shared part with a :class:`TaskBatchNorm2d`.

    The shared part is ``model.encoder`` when it exists, else the whole model. Each task gets a deep copy of the
    original BN (γ, β, running mean/var, ``num_batches_tracked``, eps, momentum), so in eval mode the outputs are
    unchanged right after conversion (CSO's task-BN init, ``specs/cso.md`` §4). ``n_tasks`` defaults to
    ``model.n_tasks``. Returns ``model``.
    """
    n = getattr(model, "n_tasks", None) if n_tasks is None else n_tasks
    if n is None:
        raise ValueError("Parameter `n_tasks` should be given for a model without `n_tasks`. Found `n_tasks = None`.")
    check_positive_int("n_tasks", n)
    root = _shared_root(model)
    if _task_bns(root):
        raise ValueError("Parameter `model` should not be converted already. Found TaskBatchNorm2d modules in it.")
    targets = [(parent, name, child) for parent in root.modules() for name, child in parent.named_children()
               if type(child) is nn.BatchNorm2d]
    if not targets:
        raise ValueError("Parameter `model` should hold BatchNorm2d modules in its shared part. Found none.")
    for parent, name, child in targets:
        setattr(parent, name, TaskBatchNorm2d(child, n))
    return model


def iter_conv_bn_pairs(model: nn.Module) -> list[tuple[str, nn.Conv2d, TaskBatchNorm2d]]:
    """Every shared conv directly followed by a per-task BN: ``[(conv_name, conv, task_bn), ...]``.

    Pairing is structural (the ``conv`` and ``norm`` of one :class:`~paper_repro.models.base.ConvNormAct` block),
    never by renaming. ``conv_name`` is the conv's qualified module name, so its weight is
    ``model.get_parameter(conv_name + ".weight")`` with output channels on axis 0; task t's γ is
    ``task_bn.bns[t].weight``.
    """
    return [(f"{name}.conv" if name else "conv", m.conv, m.norm) for name, m in model.named_modules()
            if isinstance(m, ConvNormAct) and isinstance(m.norm, TaskBatchNorm2d)]
