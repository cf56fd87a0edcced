"""Per-paper experiment modules; importing this package registers every experiment and claim.

A module listed in :data:`MODULES` that does not exist yet is skipped; any error *inside* an existing
module propagates (it is never swallowed).
"""

from __future__ import annotations

import importlib

__all__ = ["MODULES", "LOADED"]

#: The per-paper modules, in import order.
MODULES: tuple[str, ...] = ("demo", "nmt", "emtl", "cso", "mt2o")
#: The modules actually imported.
LOADED: list[str] = []

for _mod in MODULES:
    _full = f"{__name__}.{_mod}"
    try:
        importlib.import_module(_full)
    except ModuleNotFoundError as exc:
        if exc.name != _full:
            raise
        continue
    LOADED.append(_mod)
