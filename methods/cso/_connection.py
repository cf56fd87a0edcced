r"""Structural pairing of shared convs with the per-task BNs they feed (``specs/cso.md`` §6.1).

CSO (arXiv 2406.02996, Def. 4) scores the link from output channel p of a shared conv to channel p of each
task's BN. A conv is *paired* when its output tensor is the direct input of a per-task BN. Pairing is found
structurally, never by renaming module names ([official-code] renames ``conv``→``bn``, which breaks on names
such as ``downsample.0``): one instrumented forward pass on an example input records, with forward hooks,
which conv produced the tensor each per-task BN receives. [decision] We always use this hook route (a
``torch.fx`` trace fails on common layers such as ``MaxPool2d(return_indices=True)`` followed by tuple
unpacking); an explicit ``pairs`` list overrides it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ._task_bn import active_task, is_task_bn, task_bn_modules

__all__ = ["ConnectionEntry", "ConnectionMap", "connection_map"]

logger = logging.getLogger(__name__)


@dataclass
class ConnectionEntry:
    """One paired layer: the conv weight ``param`` (qualified name ``name``), the axis of its output channels
    (0 for ``Conv2d``, 1 for ``ConvTranspose2d``) and the per-task BNs ``bns[t]`` it feeds."""

    name: str
    param: nn.Parameter
    out_axis: int
    bns: list[nn.Module]

    @property
    def channels(self) -> int:
        return int(self.param.shape[self.out_axis])


class ConnectionMap:
    """The paired layers of a model plus the conv weights that could not be paired.

    :ivar entries: the paired layers, in module order.
    :ivar unpaired_convs: qualified names of conv weights that feed no per-task BN directly.
    :ivar n_tasks: K.
    """

    def __init__(self, entries: Sequence[ConnectionEntry], unpaired_convs: Sequence[str], n_tasks: int,
                 conv_numel: dict[str, int] | None = None, param_names: dict[int, str] | None = None) -> None:
        self.entries = list(entries)
        self.param_names = dict(param_names or {})  # id(parameter) -> qualified name, for logs
        self._numel = dict(conv_numel or {})
        self.unpaired_convs = list(unpaired_convs)
        self.n_tasks = n_tasks
        for e in self.entries:
            if len(e.bns) != n_tasks:
                raise ValueError(f"Entry {e.name!r} should have {n_tasks} task BNs. Found {len(e.bns)}.")

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self) -> dict[str, Any]:
        """Paired count, paired fraction of conv-weight elements, and the per-task-BN overhead 2·C·(K−1) per BN."""
        paired = sum(e.param.numel() for e in self.entries)
        total = paired + sum(self._numel.get(n, 0) for n in self.unpaired_convs)
        overhead = sum(2 * e.channels * (self.n_tasks - 1) for e in self.entries if e.bns[0].affine)
        return {"paired_layers": len(self.entries), "unpaired_convs": list(self.unpaired_convs),
                "paired_fraction": paired / total if total else 0.0, "task_bn_overhead_params": overhead}

    def __repr__(self) -> str:
        return f"ConnectionMap(paired={len(self.entries)}, unpaired={len(self.unpaired_convs)}, n_tasks={self.n_tasks})"


_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _out_axis(conv: nn.Module) -> int | None:
    if isinstance(conv, nn.ConvTranspose2d):
        return 1 if conv.groups == 1 else None  # grouped transposed conv: output channels are split; unhandled
    return 0


def connection_map(model: nn.Module, example_input: Any = None, *,
                   forward: Callable[[nn.Module, Any], Any] | None = None,
                   pairs: Sequence[tuple[str, nn.Module]] | None = None) -> ConnectionMap:
    """Pair every conv of ``model`` whose output feeds a per-task BN directly.

    :param model: a model holding per-task BNs (:func:`~methods.cso.to_task_bn`, or any duck-typed task BN).
    :param example_input: one input batch for the instrumented pass (no gradient, BN in eval mode; buffers and
        the train flag are restored). Not needed when ``pairs`` is given.
    :param forward: ``forward(model, x)`` to run instead of ``model(x)`` (e.g. ``lambda m, x: m.encoder(x)``).
        It runs under ``active_task(model, 0)``.
    :param pairs: explicit ``[(conv_qualified_name, task_bn_module), ...]``; overrides the structural search.
    :raises ValueError: if the model holds no per-task BN, or neither ``example_input`` nor ``pairs`` is given.
    """
    tbns = task_bn_modules(model)
    if not tbns:
        raise ValueError("Parameter `model` should hold per-task BNs (see `methods.cso.to_task_bn`). Found none.")
    n_tasks = len(tbns[0].bns)
    if any(len(b.bns) != n_tasks for b in tbns):
        raise ValueError(f"All per-task BNs should have the same number of tasks. Found {[len(b.bns) for b in tbns]}.")
    convs = {name: m for name, m in model.named_modules() if isinstance(m, _CONVS)}
    found: dict[str, nn.Module] = {}
    if pairs is not None:
        for name, bn in pairs:
            if name not in convs or not is_task_bn(bn):
                raise ValueError(f"Pair {name!r} should name a conv of `model` and a per-task BN. Found {type(bn).__name__}.")
            found[name] = bn
    else:
        if example_input is None:
            raise ValueError("Parameter `example_input` should be given when `pairs` is None. Found `None`.")
        produced: dict[int, tuple[str, Tensor]] = {}
        seen: dict[str, set[int]] = {}
        handles = []
        for name, conv in convs.items():
            def _out_hook(mod: nn.Module, inp: Any, out: Any, name: str = name) -> None:
                if isinstance(out, Tensor):
                    produced[id(out)] = (name, out)  # keep `out` alive so its id stays unique during the pass
            handles.append(conv.register_forward_hook(_out_hook))
        bn_names = {id(m): n for n, m in model.named_modules() if is_task_bn(m)}
        for bn in tbns:
            def _in_hook(mod: nn.Module, inp: Any) -> None:
                x = inp[0] if isinstance(inp, tuple) and inp else None
                hit = produced.get(id(x)) if isinstance(x, Tensor) else None
                key = bn_names[id(mod)]
                seen.setdefault(key, set())
                if hit is not None and hit[1] is x:
                    found.setdefault(hit[0], mod)
                    seen[key].add(id(mod))
            handles.append(bn.register_forward_pre_hook(_in_hook))
        was_training = {m: m.training for m in model.modules()}
        state = {k: v.clone() for k, v in model.state_dict().items()}
        try:
            model.eval()
            with torch.no_grad(), active_task(model, 0):
                (forward or (lambda m, x: m(x)))(model, example_input)
        finally:
            for h in handles:
                h.remove()
            for m, t in was_training.items():
                m.train(t)
            model.load_state_dict(state)
    entries, unpaired = [], []
    numel: dict[str, int] = {}
    for name, conv in convs.items():
        w = getattr(conv, "weight", None)
        if w is None:
            continue
        numel[name + ".weight"] = w.numel()
        axis = _out_axis(conv)
        bn = found.get(name)
        if bn is None or axis is None or int(w.shape[axis]) != bn.bns[0].num_features:
            unpaired.append(name + ".weight")
            continue
        entries.append(ConnectionEntry(name + ".weight", w, axis, list(bn.bns)))
    cmap = ConnectionMap(entries, unpaired, n_tasks, numel, {id(p): n for n, p in model.named_parameters()})
    frac = cmap.summary()["paired_fraction"]
    if frac < 0.5:
        warnings.warn(f"Only {frac:.0%} of the conv weights feed a per-task BN directly (paired); CSO phase 2 sums "
                      f"the gradients of the others: {unpaired}.", stacklevel=2)
    return cmap
