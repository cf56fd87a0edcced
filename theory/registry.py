"""Registry of numerical checks of the papers' theoretical claims.

A check is a zero-argument function returning a :class:`CheckOutcome`, registered with the
:func:`check` decorator in ``theory/<paper>.py`` (``theory/shared.py`` for the shared ones)::

    from theory.registry import CheckOutcome, check

    @check(paper="EMTL", claim="Prop. 1: the equity term is invariant to loss rescaling")
    def emtl_scale_invariance() -> CheckOutcome:
        gap = ...  # computed with cvxpy / sympy / numpy, float64
        return CheckOutcome(holds=gap < 1e-10, result=f"max gap {gap:.1e}", detail={"gap": gap})

:func:`run_all` runs them (importing the per-paper modules first) and :func:`format_table` prints
the table that ``python -m theory`` shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "PAPERS",
    "Check",
    "CheckOutcome",
    "CheckRow",
    "all_checks",
    "check",
    "format_table",
    "run_all",
    "unregister",
]

log = logging.getLogger(__name__)

#: Papers a check may belong to (``"core"``: shared foundations such as Pareto stationarity).
PAPERS: tuple[str, ...] = ("NMT", "EMTL", "CSO", "MT2O", "core")


@dataclass(frozen=True)
class CheckOutcome:
    """Whether the claim held numerically, the result in a few words, and JSON-able details."""

    holds: bool
    result: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """A registered check: ``paper``, the ``claim`` it tests, a unique ``name`` and the function."""

    paper: str
    claim: str
    name: str
    fn: Callable[[], CheckOutcome]

    def run(self) -> CheckOutcome:
        """Run the check; ``TypeError`` if it does not return a :class:`CheckOutcome`."""
        out = self.fn()
        if not isinstance(out, CheckOutcome):
            raise TypeError(f"Check {self.name!r} should return a CheckOutcome. Found {type(out).__name__}.")
        return out


@dataclass
class CheckRow:
    """One line of the theory table; ``holds`` is ``None`` if the check raised (see ``error``)."""

    paper: str
    claim: str
    name: str
    holds: bool | None
    result: str
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CHECKS: dict[tuple[str, str], Check] = {}


def check(paper: str, claim: str, name: str | None = None) -> Callable[[Callable[[], CheckOutcome]], Callable[[], CheckOutcome]]:
    """Decorator registering a zero-argument function as a check (the function is returned unchanged).

    :param paper: one of :data:`PAPERS`.
    :param claim: the claim tested, with its place in the paper (e.g. ``"Thm 1: ..."``).
    :param name: unique within the paper; default the function's name.
    """
    if paper not in PAPERS:
        raise ValueError(f"Parameter `paper` should be one of {PAPERS}. Found `paper = {paper!r}`.")
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"Parameter `claim` should be a non-empty string. Found `claim = {claim!r}`.")

    def decorate(fn: Callable[[], CheckOutcome]) -> Callable[[], CheckOutcome]:
        if not callable(fn):
            raise TypeError(f"@check should decorate a function. Found {fn!r}.")
        cname = name or fn.__name__
        key = (paper, cname)
        if key in _CHECKS and _CHECKS[key].fn is not fn:
            raise ValueError(f"A check named {cname!r} is already registered for paper {paper!r}.")
        _CHECKS[key] = Check(paper=paper, claim=claim, name=cname, fn=fn)
        return fn

    return decorate


def unregister(paper: str, name: str) -> None:
    """Remove a check (for tests that register fakes); no error if absent."""
    _CHECKS.pop((paper, name), None)


def all_checks(paper: str | None = None) -> list[Check]:
    """Every registered check (optionally of one paper), per-paper modules imported first."""
    import theory

    theory.load_checks()
    if paper is not None and paper not in PAPERS:
        raise ValueError(f"Parameter `paper` should be one of {PAPERS} or None. Found `paper = {paper!r}`.")
    checks = [c for c in _CHECKS.values() if paper is None or c.paper == paper]
    return sorted(checks, key=lambda c: PAPERS.index(c.paper))  # stable: file order within a paper


def run_all(paper: str | None = None, checks: Sequence[Check] | None = None) -> list[CheckRow]:
    """Run every check (of ``paper``, or the given ones); an exception becomes a row with ``error``."""
    rows = []
    for c in checks if checks is not None else all_checks(paper):
        t0 = time.perf_counter()
        try:
            out = c.run()
            row = CheckRow(c.paper, c.claim, c.name, bool(out.holds), out.result, dict(out.detail))
        except Exception as exc:
            log.exception("theory check %s/%s raised", c.paper, c.name)
            row = CheckRow(c.paper, c.claim, c.name, None, "raised", error=f"{type(exc).__name__}: {exc}")
        row.seconds = time.perf_counter() - t0
        rows.append(row)
    return rows


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def format_table(rows: Sequence[CheckRow]) -> str:
    """Markdown table: paper | claim | check | result | holds (✓, ✗ or error)."""
    lines = ["| paper | claim | check | result | holds |", "|---|---|---|---|---|"]
    for r in rows:
        mark = "error" if r.error else ("✓" if r.holds else "✗")
        result = f"{r.result}: {r.error}" if r.error else r.result
        lines.append(f"| {_cell(r.paper)} | {_cell(r.claim)} | {_cell(r.name)} | {_cell(result)} | {mark} |")
    return "\n".join(lines)
