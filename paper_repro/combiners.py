"""Method names → combiners, for experiment configs and the command line (never inside a training loop).

Experiments name their methods in their profile configs (``"methods": ["EW", "MGDA", ...]``) so a run's
JSON says exactly what ran; :func:`make_combiner` is the one place that turns a name into an object.

>>> make_combiner("EW", n_tasks=2)
EqualWeighting(n_tasks=2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from methods import Combiner

__all__ = ["COMBINERS", "make_combiner", "uses_features"]


def _b(name: str) -> Callable[..., Combiner]:
    def build(n_tasks: int, **kw: Any) -> Combiner:
        import methods.baselines as b

        cls = getattr(b, name)
        try:
            return cls(n_tasks=n_tasks, **kw)
        except TypeError:  # stateless methods take no n_tasks
            return cls(**kw)

    return build


def _emtl(n_tasks: int, **kw: Any) -> Combiner:
    from methods.emtl import EMTL

    return EMTL(n_tasks=n_tasks, **kw)


def _emtl_r2(n_tasks: int, **kw: Any) -> Combiner:
    from methods.emtl import EMTLR2

    return EMTLR2(n_tasks, **kw)


def _emtl_si(n_tasks: int, **kw: Any) -> Combiner:
    from methods.emtl import EMTL

    return EMTL.si(n_tasks, **kw)


#: name → builder(n_tasks, **options). "-UB" names run in representation mode (see uses_features).
COMBINERS: dict[str, Callable[..., Combiner]] = {
    "EW": _b("EqualWeighting"),
    "LS": _b("LinearScalarization"),
    "Tchebycheff": _b("Tchebycheff"),
    "STCH": _b("SmoothTchebycheff"),
    "UW": _b("UncertaintyWeighting"),
    "DWA": _b("DWA"),
    "FAMO": _b("FAMO"),
    "GradNorm": _b("GradNorm"),
    "MGDA": _b("MGDA"),
    "MGDA-UB": _b("MGDA"),
    "PCGrad": _b("PCGrad"),
    "CAGrad": _b("CAGrad"),
    "IMTL-G": _b("IMTLG"),
    "Nash-MTL": _b("NashMTL"),
    "Aligned-MTL": _b("AlignedMTL"),
    "UPGrad": _b("UPGrad"),
    "EMTL": _emtl,
    "EMTL-SI": _emtl_si,
    "EMTL-R2": _emtl_r2,
}


def uses_features(name: str) -> bool:
    """Whether the named method runs in representation mode (gradients on the shared features)."""
    return name.endswith("-UB") or name.endswith("-rep")


def make_combiner(name: str, n_tasks: int, **options: Any) -> Combiner:
    """Build the combiner called ``name`` for ``n_tasks`` tasks; ``KeyError`` lists the known names."""
    if name not in COMBINERS:
        raise KeyError(f"Unknown method {name!r}; known methods: {sorted(COMBINERS)}.")
    return COMBINERS[name](n_tasks, **options)
