"""A population of K copies of one multi-task network, stacked so that one vectorised pass trains all of them.

Vectorised path (default): :func:`torch.func.stack_module_state` stacks every parameter and buffer along a new
leading axis of size K; the forward is :func:`torch.func.vmap` over :func:`torch.func.functional_call` of a
``meta``-device copy of the network, so outputs have shape ``[K, B, …]``. One stock *elementwise* optimiser over the
stacked tensors (SGD, momentum, Adam, AdamW) then equals K independent optimisers. With ``compute="loop"`` the
parameters stay stacked (one optimiser, one mixing product) but the forward is a Python loop of K
``functional_call`` on the slices ``unbind(0)`` of the stacked tensors: on CPU a loop of plain convolutions is
faster than ``vmap``'s batched (grouped) convolution (``benchmark_stacked_step`` in
``paper_repro/experiments/mt2o.py`` measures both), and it runs layers that have no ``vmap`` rule (BatchNorm in train
mode, GroupNorm). Module path (``vectorize=False``): K ordinary modules. All paths agree (tested in float64).

Initialisation [decision, ``specs/mt2o.md`` §1.3]: model k is built by ``model_factory()`` under the torch seed
``seeds[k]`` (default ``1000·seed + k``) inside :func:`torch.random.fork_rng`, so the global RNG is left as it was.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["Population", "init_seeds"]

LossFn = Callable[[list[Tensor], Any], Tensor]  # (outputs of ONE model, target) -> losses (m,)


def init_seeds(seed: int, k: int) -> list[int]:
    """Init seeds ``1000·seed + k`` for k = 0..K−1 (identical across methods)."""
    return [1000 * seed + i for i in range(k)]


class _Call(nn.Module):
    """Wraps a model so that ``functional_call`` can run one of its methods (``encode``/``decode``)."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, *args: Any) -> Any:
        return getattr(self.model, self.method)(*args)


class Population:
    """K models with independent seeded inits.

    :param model_factory: ``() -> nn.Module`` building one multi-task model (``forward(x) -> list[Tensor]``).
    :param n_models: K ≥ 1.
    :param seeds: K init seeds (default :func:`init_seeds` with seed 0).
    :param vectorize: stacked parameters (default) or K ordinary modules.
    :param compute: with stacked parameters, ``"vmap"`` (default: one vectorised call) or ``"loop"`` (K calls on
        slices of the stacked tensors; see the module docstring for when it is faster).
    :param device: device of the population (default CPU).
    :param dtype: floating dtype of parameters and float buffers (default: as built).
    :param shared_init: every model starts from model 0's values (ablation; ``specs/mt2o.md`` §4 E5).

    >>> import torch
    >>> from torch import nn
    >>> from methods.mt2o import Population
    >>> class Two(nn.Module):   # a two-task model: forward returns one output per task
    ...     def __init__(self): super().__init__(); self.lin = nn.Linear(3, 2)
    ...     def forward(self, x): return list(self.lin(x).unbind(1))
    >>> pop = Population(Two, 4)   # model k is built under seed init_seeds(0, 4)[k] = k
    >>> _ = torch.manual_seed(2); torch.equal(pop.stacked()["lin.weight"][2], Two().lin.weight)
    True
    >>> [tuple(o.shape) for o in pop(torch.zeros(5, 3))], pop.mean_pairwise_distance() > 0
    ([(4, 5), (4, 5)], True)
    >>> pop.mix(torch.full((4, 4), 0.25)); pop.mean_pairwise_distance()   # averaging transfer: all models equal
    0.0
    """

    def __init__(self, model_factory: Callable[[], nn.Module], n_models: int, seeds: Sequence[int] | None = None,
                 *, vectorize: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, shared_init: bool = False, compute: str = "vmap") -> None:
        if compute not in ("vmap", "loop"):
            raise ValueError(f"Parameter `compute` should be 'vmap' or 'loop'. Found `compute = {compute!r}`.")
        if isinstance(n_models, bool) or not isinstance(n_models, int) or n_models < 1:
            raise ValueError(f"Parameter `n_models` should be a positive integer. Found `n_models = {n_models!r}`.")
        seeds = init_seeds(0, n_models) if seeds is None else list(seeds)
        if len(seeds) != n_models:
            raise ValueError(f"Parameter `seeds` should have K = {n_models} entries. Found {len(seeds)}.")
        models = []
        for s in seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(s))
                m = model_factory()
            if not isinstance(m, nn.Module):
                raise TypeError(f"`model_factory` should return an nn.Module. Found {type(m).__name__}.")
            m = m.to(device=device) if device is not None else m
            if dtype is not None:
                m = m.to(dtype=dtype)
            models.append(m)
        if shared_init:
            for m in models[1:]:
                m.load_state_dict(models[0].state_dict())
        self.n_models = n_models
        self.seeds = seeds
        self.vectorize = bool(vectorize)
        self.compute = compute
        self.n_tasks: int | None = getattr(models[0], "n_tasks", None)
        self._template = copy.deepcopy(models[0]).to("meta")
        self._param_names = [n for n, _ in models[0].named_parameters()]
        self._buffer_names = [n for n, _ in models[0].named_buffers()]
        ids = {id(p): n for n, p in models[0].named_parameters()}
        shared = getattr(models[0], "shared_parameters", None)
        self._shared_names = [ids[id(p)] for p in shared()] if callable(shared) else list(self._param_names)
        self.training = True
        if self.vectorize:
            params, buffers = stack_module_state(models)  # type: ignore[arg-type]
            self.params: dict[str, Tensor] = {n: nn.Parameter(p.detach().clone()) for n, p in params.items()}
            self.buffers: dict[str, Tensor] = {n: b.detach().clone() for n, b in buffers.items()}
            self.models: list[nn.Module] = []
        else:
            self.models = models
            self.params = {}
            self.buffers = {}

    # ------------------------------------------------------------------ structure
    @property
    def param_names(self) -> list[str]:
        return list(self._param_names)

    @property
    def shared_names(self) -> list[str]:
        """Names of the shared (trunk) parameters (``model.shared_parameters()``; all if the model has none)."""
        return list(self._shared_names)

    def parameters(self) -> list[Tensor]:
        """Every trainable tensor (stacked ``[K, …]`` tensors, or the K modules' parameters)."""
        if self.vectorize:
            return list(self.params.values())
        return [p for m in self.models for p in m.parameters()]

    def train(self, mode: bool = True) -> Population:
        self.training = mode
        self._template.train(mode)
        for m in self.models:
            m.train(mode)
        return self

    def eval(self) -> Population:
        return self.train(False)

    def stacked(self, *, buffers: bool = True) -> dict[str, Tensor]:
        """Name -> ``[K, …]`` tensor. Vectorised: the live tensors; loop: fresh stacked copies."""
        if self.vectorize:
            return {**self.params, **(self.buffers if buffers else {})}
        out: dict[str, Tensor] = {}
        for n in self._param_names:
            out[n] = torch.stack([dict(m.named_parameters())[n].detach() for m in self.models])
        if buffers:
            for n in self._buffer_names:
                out[n] = torch.stack([dict(m.named_buffers())[n].detach() for m in self.models])
        return out

    # ------------------------------------------------------------------ forward
    def _vcall(self, module: nn.Module, prefix: str, *args: Any, in_dims: tuple[int | None, ...]) -> Any:
        params = {prefix + n: p for n, p in self.params.items()}
        buffers = {prefix + n: b for n, b in self.buffers.items()}
        if self.compute == "loop":
            return self._loop_call(module, params, buffers, args, in_dims)

        def one(p: dict[str, Tensor], b: dict[str, Tensor], *a: Any) -> Any:
            return functional_call(module, (p, b), a)

        return vmap(one, in_dims=(0, 0, *in_dims), randomness="different")(params, buffers, *args)

    def _loop_call(self, module: nn.Module, params: dict[str, Tensor], buffers: dict[str, Tensor],
                   args: tuple[Any, ...], in_dims: tuple[int | None, ...]) -> Any:
        """``compute="loop"``: model k runs on ``unbind(0)`` slices (views) of the stacked tensors, so gradients
        flow back into the stacked parameters and in-place buffer updates (BatchNorm statistics) land in them."""
        ps = {n: p.unbind(0) for n, p in params.items()}
        bs = {n: b.unbind(0) for n, b in buffers.items()}
        outs = []
        for k in range(self.n_models):
            a = [x if d is None else x.select(d, k) for x, d in zip(args, in_dims)]
            outs.append(functional_call(module, ({n: v[k] for n, v in ps.items()}, {n: v[k] for n, v in bs.items()}),
                                        tuple(a)))
        if isinstance(outs[0], Tensor):
            return torch.stack(outs)
        return [torch.stack([o[t] for o in outs]) for t in range(len(outs[0]))]

    def forward(self, x: Tensor) -> list[Tensor]:
        """Every model on the same batch: a list (one per task) of ``[K, B, …]`` outputs."""
        if self.vectorize:
            return list(self._vcall(self._template, "", x, in_dims=(None,)))
        outs = [list(m(x)) for m in self.models]
        return [torch.stack([o[t] for o in outs]) for t in range(len(outs[0]))]

    __call__ = forward

    def encode(self, x: Tensor) -> Tensor:
        """Shared representations ``[K, B, …]`` (models with ``encode``; MGDA-UB's representation mode)."""
        if self.vectorize:
            return self._vcall(_Call(self._template, "encode"), "model.", x, in_dims=(None,))
        return torch.stack([m.encode(x) for m in self.models])  # type: ignore[operator]

    def decode(self, z: Tensor) -> list[Tensor]:
        """Per-task outputs from stacked representations ``z[K, B, …]``."""
        if self.vectorize:
            return list(self._vcall(_Call(self._template, "decode"), "model.", z, in_dims=(0,)))
        outs = [list(m.decode(z[k])) for k, m in enumerate(self.models)]  # type: ignore[operator]
        return [torch.stack([o[t] for o in outs]) for t in range(len(outs[0]))]

    def losses_from_outputs(self, outputs: list[Tensor], target: Any, loss_fn: LossFn) -> Tensor:
        """``[K, m]`` loss matrix: ``loss_fn(outputs of model k, target)`` for each k (vmapped when vectorised)."""
        if self.vectorize:
            return vmap(lambda *o: loss_fn(list(o), target))(*outputs)
        return torch.stack([loss_fn([o[k] for o in outputs], target) for k in range(self.n_models)])

    def task_losses(self, x: Tensor, target: Any, loss_fn: LossFn) -> Tensor:
        """``[K, m]`` per-task losses of every model on one batch (one vectorised forward)."""
        return self.losses_from_outputs(self.forward(x), target, loss_fn)

    # ------------------------------------------------------------------ transfer, export
    @torch.no_grad()
    def mix(self, m: Tensor, names: Iterable[str] | Callable[[str], bool] | None = None) -> None:
        """Mix parameter values (and float buffers) in place with the transfer matrix ``m``."""
        from .transfer import apply_transfer

        if self.vectorize:
            apply_transfer(m, self.stacked(), names)
            return
        stacked = self.stacked()
        apply_transfer(m, stacked, names)
        for k, mod in enumerate(self.models):
            for n, t in list(mod.named_parameters()) + list(mod.named_buffers()):
                t.copy_(stacked[n][k])

    def unstack(self) -> list[nn.Module]:
        """K independent ``nn.Module`` copies holding the current values."""
        if not self.vectorize:
            return [copy.deepcopy(m) for m in self.models]
        first = next(iter(self.params.values()))
        out = []
        for k in range(self.n_models):
            mod = copy.deepcopy(self._template).to_empty(device=first.device)
            state = {n: t[k].detach().clone() for n, t in self.stacked().items()}
            mod.load_state_dict(state)
            mod.train(self.training)
            out.append(mod)
        return out

    def state_dict(self) -> dict[str, Tensor]:
        return {n: t.detach().clone() for n, t in self.stacked().items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        with torch.no_grad():
            if self.vectorize:
                for n, t in self.stacked().items():
                    t.copy_(state[n])
            else:
                for k, mod in enumerate(self.models):
                    for n, t in list(mod.named_parameters()) + list(mod.named_buffers()):
                        t.copy_(state[n][k])

    def mean_pairwise_distance(self) -> float:
        """Mean ‖θ_k − θ_j‖ over pairs k < j (all parameters; a collapse diagnostic)."""
        if self.n_models < 2:
            return 0.0
        flat = torch.cat([t.detach().reshape(self.n_models, -1) for t in self.stacked(buffers=False).values()], 1)
        d = torch.cdist(flat.double(), flat.double())
        iu = torch.triu_indices(self.n_models, self.n_models, 1)
        return float(d[iu[0], iu[1]].mean())

    def __repr__(self) -> str:
        return (f"Population(n_models={self.n_models}, vectorize={self.vectorize}, compute={self.compute!r}, "
                f"model={type(self._template).__name__})")
