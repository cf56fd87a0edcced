"""Shared building blocks of the multi-task models (the "Models" contract of ``docs/ARCHITECTURE.md``).

A multi-task model is an :class:`torch.nn.Module` with ``forward(x) -> list[Tensor]`` (one output per task, in task
order), ``shared_parameters()``, ``task_parameters()`` and ``n_tasks``; models with a single shared representation
also have ``encode(x) -> Tensor`` and ``decode(z) -> list[Tensor]`` with ``forward = decode ∘ encode``.

Partition rule used by every model here: a parameter is *task-specific* for task t when only task t's output
depends on it; every other trainable parameter is *shared*. The two sets are disjoint and cover all trainable
parameters (tested in ``tests/models``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import Tensor, nn

__all__ = ["MultiTaskModel", "EncoderHeadsModel", "ConvNormAct", "mlp", "trainable", "check_positive_int"]


def check_positive_int(name: str, value: int) -> int:
    """Return ``value`` or raise ``ValueError`` when it is not a positive ``int``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Parameter `{name}` should be a positive integer. Found `{name} = {value!r}`.")
    return value


def trainable(*modules: nn.Module | Iterable[nn.Parameter]) -> list[nn.Parameter]:
    """The trainable parameters of ``modules`` (modules or parameter iterables), deduplicated, in order."""
    seen: set[int] = set()
    out: list[nn.Parameter] = []
    for m in modules:
        params = m.parameters() if isinstance(m, nn.Module) else m
        for p in params:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def mlp(
    in_features: int,
    widths: Sequence[int],
    *,
    out_features: int | None = None,
    batch_norm: bool = False,
    dropout: float = 0.0,
    activate_last: bool = True,
) -> nn.Sequential:
    """``Linear → [BatchNorm1d] → ReLU → [Dropout]`` per width, then an optional plain ``Linear(…, out_features)``.

    Shapes: ``(N, in_features) -> (N, widths[-1])`` or ``(N, out_features)``. With ``activate_last=False`` the
    last hidden layer is linear (no norm, activation or dropout), e.g. a linear bottleneck.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Parameter `dropout` should be in [0, 1). Found `dropout = {dropout}`.")
    layers: list[nn.Module] = []
    d = in_features
    for i, w in enumerate(widths):
        check_positive_int("widths", w)
        layers.append(nn.Linear(d, w))
        if activate_last or i < len(widths) - 1:
            if batch_norm:
                layers.append(nn.BatchNorm1d(w))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        d = w
    if out_features is not None:
        layers.append(nn.Linear(d, out_features))
    return nn.Sequential(*layers)


class ConvNormAct(nn.Module):
    """``Conv2d → norm → ReLU``: the unit that :func:`paper_repro.models.task_bn.iter_conv_bn_pairs` pairs.

    ``norm`` is ``"batch"`` (BatchNorm2d, convertible to per-task BN), ``"group"`` (GroupNorm with
    ``min(8, C)`` groups dividing C) or ``"none"``. Shapes: ``(N, C_in, H, W) -> (N, C_out, H', W')``.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, *, padding: int | None = None,
                 norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "group", "none"):
            raise ValueError(f"Parameter `norm` should be 'batch', 'group' or 'none'. Found `norm = {norm!r}`.")
        pad = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=pad, bias=norm == "none")
        if norm == "batch":
            self.norm: nn.Module = nn.BatchNorm2d(c_out)
        elif norm == "group":
            groups = max(g for g in range(1, min(8, c_out) + 1) if c_out % g == 0)
            self.norm = nn.GroupNorm(groups, c_out)
        else:
            self.norm = nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: Tensor, /) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class MultiTaskModel(nn.Module):
    """Base of every multi-task model: subclasses set ``n_tasks`` and implement the parameter partition.

    Per-task BatchNorms (:class:`~paper_repro.models.task_bn.TaskBatchNorm2d`) found anywhere in the model are
    task-specific: their task-t copy goes to ``task_parameters()[t]`` and never to ``shared_parameters()``.
    """

    n_tasks: int

    def _shared_modules(self) -> list[nn.Module]:
        raise NotImplementedError

    def _task_modules(self, task: int) -> list[nn.Module]:
        raise NotImplementedError

    def _task_bn_parameters(self, task: int | None) -> list[nn.Parameter]:
        from .task_bn import TaskBatchNorm2d  # local import: task_bn imports this module

        bns = [m for m in self.modules() if isinstance(m, TaskBatchNorm2d)]
        if task is None:
            return trainable(*bns)
        return trainable(*(bn.bns[task] for bn in bns))

    def shared_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters that more than one task's output depends on (per-task BN copies excluded)."""
        excluded = {id(p) for p in self._task_bn_parameters(None)}
        return [p for p in trainable(*self._shared_modules()) if id(p) not in excluded]

    def task_parameters(self) -> list[list[nn.Parameter]]:
        """``task_parameters()[t]``: trainable parameters only task t's output depends on (its head, its BNs)."""
        return [trainable(*self._task_modules(t), self._task_bn_parameters(t)) for t in range(self.n_tasks)]


class EncoderHeadsModel(MultiTaskModel):
    """``forward(x) = [head_t(encoder(x)) for t]``, with representation mode ``encode = encoder``, ``decode = heads``.

    Once the encoder holds per-task BatchNorms (:func:`~paper_repro.models.task_bn.convert_to_task_bn`) there is
    no single shared representation: ``forward`` then runs the encoder once per task with that task's BNs
    (K passes), ``forward_task(x, t)`` runs one of them, and ``encode`` works only inside
    ``active_task(model, t)`` (otherwise the task BN raises ``RuntimeError``).
    """

    def __init__(self, encoder: nn.Module, heads: Sequence[nn.Module]) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleList(heads)
        self.n_tasks = len(self.heads)

    def _shared_modules(self) -> list[nn.Module]:
        return [self.encoder]

    def _task_modules(self, task: int) -> list[nn.Module]:
        return [self.heads[task]]

    @property
    def has_task_bn(self) -> bool:
        """Whether the encoder holds per-task BatchNorms (then there is no single shared representation)."""
        from .task_bn import TaskBatchNorm2d

        return any(isinstance(m, TaskBatchNorm2d) for m in self.encoder.modules())

    def encode(self, x: Tensor, /) -> Tensor:
        """The shared representation ``z = encoder(x)``."""
        return self.encoder(x)

    def decode(self, z: Tensor, /) -> list[Tensor]:
        """One output per task from the shared representation ``z``."""
        return [head(z) for head in self.heads]

    def forward_task(self, x: Tensor, task: int, /) -> Tensor:
        """Task ``task``'s output alone, through its own BNs when the encoder has per-task BNs."""
        from .task_bn import active_task

        with active_task(self, task):
            return self.heads[task](self.encoder(x))

    def forward(self, x: Tensor, /) -> list[Tensor]:
        if self.has_task_bn:
            return [self.forward_task(x, t) for t in range(self.n_tasks)]
        return self.decode(self.encode(x))

