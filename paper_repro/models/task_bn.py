"""Per-task BatchNorm for the models here (CSO, arXiv 2406.02996, Sec. 3; ``specs/cso.md`` §1, §6).

The module and the converter are the library's (:mod:`methods.cso`, which works on any CNN); this file
adds what the models of this package need on top: :func:`convert_to_task_bn` converts a model's shared
part (its ``encoder`` when it has one), :func:`set_active_task` selects a task without a context, and
:func:`iter_conv_bn_pairs` lists each conv weight of a :class:`~paper_repro.models.base.ConvNormAct`
block with the per-task BN that follows it (what connection strength, Eq. 4–7, needs).

Joint forward: a :class:`TaskBatchNorm2d` with no active task raises ``RuntimeError`` (never a silent
default to task 0). ``EncoderHeadsModel.forward`` therefore runs the trunk once per task inside
``active_task``.
"""

from __future__ import annotations

from torch import nn

from methods.cso import TaskBatchNorm2d, active_task, task_bn_modules, to_task_bn

from .base import ConvNormAct, check_positive_int

__all__ = ["TaskBatchNorm2d", "convert_to_task_bn", "active_task", "set_active_task", "iter_conv_bn_pairs"]


def set_active_task(model: nn.Module, task: int | None) -> None:
    """Select task ``task`` (or none) in every per-task BN of ``model``."""
    for bn in task_bn_modules(model):
        if task is not None and not 0 <= task < len(bn.bns):
            raise ValueError(f"Parameter `task` should be in [0, {len(bn.bns)}). Found `task = {task}`.")
        bn.active_task = task


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
    encoder = getattr(model, "encoder", None)
    try:
        to_task_bn(model, n, include=["encoder"] if isinstance(encoder, nn.Module) else None)
    except ValueError as err:  # name the models' own wording: already converted / nothing to convert
        if "already" in str(err) or "Found some" in str(err):
            raise ValueError("Parameter `model` should not be converted already. Found TaskBatchNorm2d modules in it.") from err
        raise ValueError("Parameter `model` should hold BatchNorm2d modules in its shared part. Found none.") from err
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
