r"""The one adapter between TorchJD and this library's combiner interface.

TorchJD (MIT, arXiv 2406.16232) is pinned exactly (``torchjd==0.18.0``): its minor versions changed the
API several times. Everything TorchJD-specific, including the few private attributes we read for
state saving and solver diagnostics, lives in this module, so a TorchJD upgrade touches one file.

TorchJD is an optional dependency: importing :mod:`methods` never imports it; building a baseline
that needs it raises an :class:`ImportError` naming the class and the install command.

Two bases adapt TorchJD's objects:

* :class:`TorchJDScalarizer`, a :class:`~methods.LossCombiner` around a
  ``torchjd.scalarization.Scalarizer`` (a function of the loss vector);
* :class:`WeightingCombiner`, a :class:`~methods.GradientCombiner` around a
  ``torchjd.aggregation.Weighting`` of the Gramian (or of the Jacobian, for Nash-MTL). It adds the
  solver-failure fallback shared by every gradient-level baseline (see :meth:`WeightingCombiner.weights`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import warnings
from abc import abstractmethod
from types import ModuleType
from typing import Any, Literal

import torch
from torch import Tensor

from .._core import GradientCombiner, GradientStats, LossCombiner

__all__ = ["TORCHJD_VERSION", "require_torchjd", "TorchJDScalarizer", "WeightingCombiner", "solver_errors"]

logger = logging.getLogger(__name__)

TORCHJD_VERSION = "0.18.0"
_INSTALL_HINT = f'Install it with: pip install "torchjd[full]=={TORCHJD_VERSION}"'
_version_checked = False

Fallback = Literal["previous", "equal"]


def require_torchjd(owner: str, *submodules: str, extras: tuple[str, ...] = ()) -> ModuleType | list[ModuleType]:
    """Import ``torchjd.<submodule>`` for ``owner`` (a class name), or raise a helpful ImportError.

    :param owner: the name of the class that needs TorchJD (quoted in the error).
    :param submodules: e.g. ``"aggregation"``, ``"scalarization"``.
    :param extras: other packages the class needs (e.g. ``"cvxpy"``), checked with ``find_spec``.
    :returns: the imported submodule, or a list of them if several were asked for.
    """
    global _version_checked
    missing = [name for name in ("torchjd", *extras) if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"{owner} requires {missing} to be installed. {_INSTALL_HINT}")
    if not _version_checked:
        _version_checked = True
        found = importlib.metadata.version("torchjd")
        if found != TORCHJD_VERSION:
            warnings.warn(
                f"methods.baselines is tested with torchjd=={TORCHJD_VERSION}; found torchjd=={found}. "
                "The adapter reads a few TorchJD internals; results may differ.",
                stacklevel=3,
            )
    mods = [importlib.import_module(f"torchjd.{m}") for m in submodules]
    return mods[0] if len(mods) == 1 else mods


def solver_errors() -> tuple[type[BaseException], ...]:
    """The exception types a weighting's solver may raise that trigger the documented fallback.

    ``RuntimeError`` (torch linear algebra, e.g. ``torch.linalg.LinAlgError``), ``ValueError`` (quadprog's
    "constraints are inconsistent", numpy's ``LinAlgError``), ``ArithmeticError`` and cvxpy's
    ``SolverError``. Anything else (a ``TypeError``, a bug) propagates.
    """
    errors: list[type[BaseException]] = [RuntimeError, ValueError, ArithmeticError]
    if importlib.util.find_spec("cvxpy") is not None:
        from cvxpy.error import SolverError

        errors.append(SolverError)
    return tuple(errors)


class TorchJDScalarizer(LossCombiner):
    """A :class:`~methods.LossCombiner` around a TorchJD scalarizer stored as ``self.inner``.

    Subclasses build ``self.inner`` in ``__init__`` and may override :meth:`_weights` (the effective
    weight :math:`\\partial \\ell / \\partial L_i` of each loss, reported in ``last_info["weights"]``).
    """

    inner: torch.nn.Module

    def combine(self, losses: Tensor, /) -> Tensor:
        weights = self._weights(losses.detach())
        out = self.inner(losses)
        self.last_info = {"weights": [float(v) for v in weights.tolist()]}
        return out

    def _weights(self, losses: Tensor) -> Tensor:
        """The effective weight of each loss in the last combination (for ``last_info``)."""
        return torch.full_like(losses, 1.0 / losses.numel())

    def reset(self) -> None:
        reset = getattr(self.inner, "reset", None)
        if reset is not None:
            reset()
        self.last_info = {}


class WeightingCombiner(GradientCombiner):
    r"""A :class:`~methods.GradientCombiner` whose weights come from a solver that may fail.

    Subclasses implement :meth:`_compute` (the raw weights from the statistics). :meth:`weights` adds:

    * a check of the number of tasks (for combiners built with ``n_tasks``);
    * the **fallback**: if the solver raises one of :func:`solver_errors` or returns weights that are
      not finite, the step uses the previous step's weights (``fallback="previous"``, the default;
      equal weights :math:`1/K` on the first step) or equal weights :math:`1/K` (``fallback="equal"``),
      logs a warning and records ``last_info["fallback"] = {"reason": ..., "used": ...}``
      (``None`` when the solver succeeded).
    """

    def __init__(self, n_tasks: int | None = None, *, fallback: Fallback = "previous") -> None:
        super().__init__(n_tasks)
        if fallback not in ("previous", "equal"):
            raise ValueError(f"Parameter `fallback` should be 'previous' or 'equal'. Found `fallback = {fallback!r}`.")
        self.fallback = fallback
        self._previous: Tensor | None = None
        self.n_fallbacks = 0

    @abstractmethod
    def _compute(self, stats: GradientStats, /) -> Tensor:
        """The raw ``(K,)`` weights, before the failure checks."""

    def _check_stats(self, stats: GradientStats) -> int:
        jac = stats.jacobian
        if jac.dim() != 2 or jac.shape[0] == 0:
            raise ValueError(f"The Jacobian should be a non-empty (K, P) matrix. Found `jacobian.shape = {tuple(jac.shape)}`.")
        k = jac.shape[0]
        if self.n_tasks is not None and k != self.n_tasks:
            raise ValueError(
                f"{type(self).__name__} was built for n_tasks={self.n_tasks}. Found a Jacobian with {k} rows "
                f"(`jacobian.shape = {tuple(jac.shape)}`)."
            )
        return k

    def weights(self, stats: GradientStats, /) -> Tensor:
        k = self._check_stats(stats)
        jac = stats.jacobian
        reason: str | None = None
        info: dict[str, Any] = {}
        try:
            w = self._compute(stats)
            info = self._extra_info()
            if w.shape != (k,):
                reason = f"weights of shape {tuple(w.shape)} instead of ({k},)"
            elif not bool(torch.isfinite(w).all()):
                reason = f"non-finite weights {w.tolist()}"
        except solver_errors() as err:
            reason = f"{type(err).__name__}: {err}"
        fallback = info.pop("fallback", None)
        if reason is not None:
            use_prev = self.fallback == "previous" and self._previous is not None and self._previous.numel() == k
            w = self._previous.clone() if use_prev else torch.full((k,), 1.0 / k)
            fallback = {"reason": reason, "used": "previous" if use_prev else "equal"}
            self.n_fallbacks += 1
            logger.warning("%s: solver failed (%s); using the %s weights.", self, reason, fallback["used"])
        w = w.detach().to(device=jac.device, dtype=jac.dtype)
        self._previous = w.clone()
        self.last_info = {"weights": [float(v) for v in w.tolist()], "fallback": fallback, **info}
        return w

    def _extra_info(self) -> dict[str, Any]:
        """Method-specific JSON-able values for ``last_info`` (a ``"fallback"`` key is honoured)."""
        return {}

    # state: the previous weights (for the fallback) and whatever the subclass keeps
    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:
        return None

    def get_extra_state(self) -> dict[str, Any]:
        return {"previous": None if self._previous is None else self._previous.clone(),
                "n_fallbacks": self.n_fallbacks, **self._state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._previous = state.get("previous")
        self.n_fallbacks = int(state.get("n_fallbacks", 0))
        self._load_state(state)

    def reset(self) -> None:
        self._previous = None
        self.n_fallbacks = 0
        self.last_info = {}
        inner = getattr(self, "inner", None)
        if inner is not None and hasattr(inner, "reset"):
            inner.reset()


class GramianWeightingCombiner(WeightingCombiner):
    """A :class:`WeightingCombiner` around a TorchJD Gramian weighting stored as ``self.inner``."""

    inner: torch.nn.Module

    def _compute(self, stats: GradientStats, /) -> Tensor:
        return self.inner(stats.gramian)
