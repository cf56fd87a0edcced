"""Numerical checks of the papers' theoretical claims (cvxpy, sympy, numpy; float64).

- :mod:`theory.pareto`: shared tools (min-norm Pareto-stationarity certificate, exact fronts of
  quadratic and least-squares tasks, dominance).
- :mod:`theory.registry`: the ``@check`` decorator, :func:`theory.registry.run_all`, the table.
- ``theory/<paper>.py``: the checks of one paper; ``theory/shared.py``: the shared ones.

The per-paper modules are imported by :func:`load_checks`, which the registry calls before listing
or running checks, so ``import theory.pareto`` stays cheap and independent of every check module.
Run ``python -m theory [--paper P] [--list] [--strict]``.
"""

from __future__ import annotations

import importlib

__all__ = ["MODULES", "load_checks"]

#: The check modules, in import order. One that does not exist (yet) is skipped.
MODULES: tuple[str, ...] = ("shared", "nmt", "emtl", "cso", "mt2o")


def load_checks() -> list[str]:
    """Import every existing module of :data:`MODULES` (registering its checks); return their names.

    Only a module that is itself absent is skipped; an error inside a module propagates.
    """
    loaded = []
    for mod in MODULES:
        full = f"{__name__}.{mod}"
        try:
            importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name != full:
                raise
            continue
        loaded.append(mod)
    return loaded
