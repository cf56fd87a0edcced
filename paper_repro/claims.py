"""The papers' claims, each tied to the experiment that tests it.

A :class:`Claim` names the paper, the statement, the paper's figure or table and the registered
experiment whose aggregated results (:func:`paper_repro.runner.run_experiment`) its ``check`` reads.
Checks are profile-independent: they look at the results, whatever profile produced them. Claims are
registered with :func:`register_claim` next to their experiments (``paper_repro/experiments/<paper>.py``).

:func:`evaluate` runs (or loads) each needed experiment once and checks every claim; a claim that does
not hold is reported with what we measured, never hidden. The helpers :func:`paired_effect`,
:func:`threshold_check`, :func:`per_seed` and :func:`all_of` keep checks short::

    register_claim(Claim(
        id="nmt.top-task-auc", paper="NMT", paper_figure="Table 2", experiment="nmt.recsys",
        statement="NMT keeps the top-priority task's AUC at least as high as equal weighting",
        check=lambda r: paired_effect(per_seed(r, "nmt.auc.ctr"), per_seed(r, "ew.auc.ctr"),
                                      direction="greater", margin=-0.002, label="AUC(NMT) − AUC(EW)"),
    ))
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paper_repro.registry import PAPERS, _load_builtins
from paper_repro.runner import DEFAULT_OUT, get_leaf, obtain_results

__all__ = [
    "Claim",
    "ClaimOutcome",
    "ClaimRow",
    "all_claims",
    "all_of",
    "evaluate",
    "format_table",
    "get_claim",
    "paired_effect",
    "per_seed",
    "register_claim",
    "threshold_check",
    "unregister_claim",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimOutcome:
    """What a check found: whether the claim holds, our number as short text, and the details."""

    holds: bool
    ours: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """One claim of one paper.

    :ivar id: unique id, e.g. ``"nmt.top-task-auc"``.
    :ivar paper: one of :data:`paper_repro.registry.PAPERS`.
    :ivar statement: the claim in one sentence, as the paper makes it.
    :ivar paper_figure: where the paper shows it (``"Fig. 3"``, ``"Table 2"``, or ``"—"``).
    :ivar experiment: the registered experiment whose results ``check`` reads.
    :ivar check: ``(results) -> ClaimOutcome``; profile-independent.
    :ivar expect_holds: ``False`` for a claim our data does not support: it stays in the table as ✗
        and the claims test pins that outcome (so a change that makes it hold is noticed too).
    :ivar expect_holds_full: the outcome on the committed full-profile results
        (``paper_repro/results/full/``), or ``None`` where none is committed. Pinned by
        ``tests/test_committed_results.py``, which evaluates the committed files without running anything.
    """

    id: str
    paper: str
    statement: str
    paper_figure: str
    experiment: str
    check: Callable[[dict[str, Any]], ClaimOutcome]
    expect_holds: bool = True
    expect_holds_full: bool | None = None

    def expected(self, profile: str) -> bool | None:
        """The recorded outcome for ``profile``: :attr:`expect_holds_full` for ``"full"``, else
        :attr:`expect_holds` (the quick profile's, which CI runs)."""
        return self.expect_holds_full if profile == "full" else self.expect_holds

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ValueError(f"Parameter `id` should be a non-empty string. Found `id = {self.id!r}`.")
        if self.paper not in PAPERS:
            raise ValueError(f"Parameter `paper` should be one of {PAPERS}. Found `paper = {self.paper!r}`.")
        if not callable(self.check):
            raise TypeError(f"Parameter `check` should be callable. Found `check = {self.check!r}`.")


@dataclass
class ClaimRow:
    """One line of the claims table. ``holds`` is ``None`` when the claim could not be evaluated
    (no results, or an error: see ``error``); ``expect_holds`` is the outcome recorded for this
    profile (:meth:`Claim.expected`; ``None`` where none is)."""

    id: str
    paper: str
    statement: str
    paper_figure: str
    experiment: str
    profile: str
    holds: bool | None
    ours: str
    expect_holds: bool | None = True
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CLAIMS: dict[str, Claim] = {}


def register_claim(claim: Claim) -> Claim:
    """Add ``claim`` to the registry (returns it); ``ValueError`` if the id is taken."""
    if not isinstance(claim, Claim):
        raise TypeError(f"Parameter `claim` should be a Claim. Found {type(claim).__name__}.")
    if claim.id in _CLAIMS and _CLAIMS[claim.id] is not claim:
        raise ValueError(f"A claim with id {claim.id!r} is already registered.")
    _CLAIMS[claim.id] = claim
    return claim


def unregister_claim(claim_id: str) -> None:
    """Remove a claim (for tests that register fakes); no error if absent."""
    _CLAIMS.pop(claim_id, None)


def all_claims(paper: str | None = None) -> list[Claim]:
    """Every registered claim (optionally of one paper), sorted by paper then id."""
    _load_builtins()
    if paper is not None and paper not in PAPERS:
        raise ValueError(f"Parameter `paper` should be one of {PAPERS} or None. Found `paper = {paper!r}`.")
    claims = [c for c in _CLAIMS.values() if paper is None or c.paper == paper]
    return sorted(claims, key=lambda c: (PAPERS.index(c.paper), c.id))


def get_claim(claim_id: str) -> Claim:
    """The claim with this id; ``KeyError`` listing the known ids otherwise."""
    if claim_id not in _CLAIMS:
        _load_builtins()
    if claim_id not in _CLAIMS:
        raise KeyError(f"No claim with id {claim_id!r}. Known claims: {', '.join(sorted(_CLAIMS)) or '(none)'}.")
    return _CLAIMS[claim_id]


def evaluate(
    claims: Iterable[Claim | str] | None = None,
    profile: str = "quick",
    run_missing: bool = True,
    out_dir: Path | str = DEFAULT_OUT,
    device: str = "cpu",
    paper: str | None = None,
    progress: bool = False,
) -> list[ClaimRow]:
    """Check claims on the results of ``profile``; each needed experiment is run or loaded once.

    :param claims: claims or claim ids; default every registered claim (of ``paper`` if given).
    :param run_missing: run experiments whose results are missing or stale; otherwise such claims
        get ``holds=None``.
    :returns: one :class:`ClaimRow` per claim, in the given (or registry) order. Errors inside an
        experiment or a check are reported in the row (``holds=None``, ``error``), not raised.
    """
    selected = all_claims(paper) if claims is None else [c if isinstance(c, Claim) else get_claim(c) for c in claims]
    results: dict[str, dict[str, Any] | None] = {}
    errors: dict[str, str] = {}
    for exp in dict.fromkeys(c.experiment for c in selected):
        try:
            results[exp] = obtain_results(exp, profile, out_dir, run_missing=run_missing, device=device, progress=progress)
        except Exception as exc:  # reported in the table, and logged with its traceback
            log.exception("experiment %s (%s) failed", exp, profile)
            errors[exp] = f"{type(exc).__name__}: {exc}"
            results[exp] = None
    rows = []
    for c in selected:
        base = dict(
            id=c.id, paper=c.paper, statement=c.statement, paper_figure=c.paper_figure,
            experiment=c.experiment, profile=profile, expect_holds=c.expected(profile),
        )
        res = results[c.experiment]
        if c.experiment in errors:
            rows.append(ClaimRow(**base, holds=None, ours="experiment failed", error=errors[c.experiment]))
            continue
        if res is None:
            hint = f"no results: run `python -m paper_repro run {c.experiment} --profile {profile}`"
            rows.append(ClaimRow(**base, holds=None, ours=hint))
            continue
        try:
            out = c.check(res)
            if not isinstance(out, ClaimOutcome):
                raise TypeError(f"check should return a ClaimOutcome. Found {type(out).__name__}.")
        except Exception as exc:
            log.exception("check of claim %s failed", c.id)
            rows.append(ClaimRow(**base, holds=None, ours="check failed", error=f"{type(exc).__name__}: {exc}",
                                 source=res.get("source")))
            continue
        detail = dict(out.detail)
        if res.get("stale"):
            detail["stale"] = True
        if res.get("partial_seeds"):
            detail["seeds"] = {"have": list(res.get("seeds", [])), "missing": list(res["partial_seeds"])}
        rows.append(ClaimRow(**base, holds=bool(out.holds), ours=out.ours, detail=detail, source=res.get("source")))
    return rows


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def format_table(rows: Sequence[ClaimRow]) -> str:
    """Markdown table: claim | paper | statement | paper's figure | ours | holds (✓, ✗, – or error)."""
    lines = ["| claim | paper | statement | paper's figure | ours | holds |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r.error:
            mark = "error"
        elif r.holds is None:
            mark = "–"
        else:
            mark = "✓" if r.holds else "✗"
        ours = r.ours if not r.error else f"{r.ours}: {r.error}"
        if r.detail.get("stale"):
            ours += " (stale results)"
        if r.detail.get("seeds"):
            have, missing = r.detail["seeds"]["have"], r.detail["seeds"]["missing"]
            ours += f" (seeds {', '.join(map(str, have))} only; not run yet: {', '.join(map(str, missing))})"
        lines.append(
            f"| {_cell(r.id)} | {_cell(r.paper)} | {_cell(r.statement)} | {_cell(r.paper_figure)} | {_cell(ours)} | {mark} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ helpers
def per_seed(results: dict[str, Any], key: str) -> list[float]:
    """The per-seed values of a dotted key (e.g. ``"nmt.auc.ctr"``), in seed order."""
    runs = results.get("per_seed")
    if not isinstance(runs, list) or not runs:
        raise KeyError(f"The results have no per-seed list (keys: {sorted(results)}).")
    return [get_leaf(r, key) for r in runs]


def _mean_se(values: np.ndarray) -> tuple[float, float, int]:
    n = int(values.size)
    mean = float(values.mean())
    se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return mean, se, n


def _as_vector(values: Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"Parameter `{name}` should be a non-empty 1-D sequence of numbers. Found shape {arr.shape}.")
    return arr


def _holds(mean: float, se: float, direction: str, threshold: float, n_se: float) -> bool:
    slack = 0.0 if n_se == 0 else n_se * (se if math.isfinite(se) else math.inf)
    if direction == "greater":
        return mean - slack > threshold
    if direction == "less":
        return mean + slack < threshold
    raise ValueError(f"Parameter `direction` should be 'greater' or 'less'. Found `direction = {direction!r}`.")


def paired_effect(
    a_per_seed: Sequence[float],
    b_per_seed: Sequence[float],
    direction: str = "greater",
    margin: float = 0.0,
    *,
    n_se: float = 0.0,
    label: str = "a − b",
) -> ClaimOutcome:
    """Paired (same seeds) effect of ``a`` over ``b``.

    With ``d_i = a_i − b_i``: ``"greater"`` holds if ``mean(d) − n_se·se(d) > margin``; ``"less"``
    holds if ``mean(d) + n_se·se(d) < −margin`` (a is lower than b by more than ``margin``). A
    negative margin expresses "not worse than, within |margin|". ``se`` uses ddof=1; with one seed
    and ``n_se > 0`` the claim cannot hold.

    :returns: ``ClaimOutcome`` with ``ours = "<label> = mean ± se (n=…)"`` and the per-seed values.
    """
    a = _as_vector(a_per_seed, "a_per_seed")
    b = _as_vector(b_per_seed, "b_per_seed")
    if a.shape != b.shape:
        raise ValueError(f"`a_per_seed` and `b_per_seed` should have the same length. Found {a.size} and {b.size}.")
    d = a - b
    mean, se, n = _mean_se(d)
    threshold = margin if direction == "greater" else -margin
    holds = _holds(mean, se, direction, threshold, n_se)
    ours = f"{label} = {mean:+.4g} ± {se:.2g} (n={n})"
    detail = {"diff_mean": mean, "diff_se": se, "n": n, "diffs": d.tolist(), "a": a.tolist(), "b": b.tolist(),
              "direction": direction, "margin": margin, "n_se": n_se}
    return ClaimOutcome(holds, ours, detail)


def threshold_check(
    values: Sequence[float],
    threshold: float,
    direction: str = "greater",
    *,
    n_se: float = 0.0,
    label: str = "value",
) -> ClaimOutcome:
    """Whether the mean over seeds is above (``"greater"``) or below (``"less"``) ``threshold``,
    optionally by ``n_se`` standard errors."""
    v = _as_vector(values, "values")
    mean, se, n = _mean_se(v)
    holds = _holds(mean, se, direction, threshold, n_se)
    op = ">" if direction == "greater" else "<"
    ours = f"{label} = {mean:.4g} ± {se:.2g} (n={n}; claim {op} {threshold:g})"
    return ClaimOutcome(holds, ours, {"mean": mean, "se": se, "n": n, "values": v.tolist(),
                                      "threshold": threshold, "direction": direction, "n_se": n_se})


def all_of(*outcomes: ClaimOutcome) -> ClaimOutcome:
    """A claim made of several parts holds if every part holds; ``ours`` joins the parts."""
    if not outcomes:
        raise ValueError("all_of needs at least one ClaimOutcome.")
    return ClaimOutcome(
        all(o.holds for o in outcomes),
        "; ".join(o.ours for o in outcomes),
        {"parts": [{"holds": o.holds, "ours": o.ours, **o.detail} for o in outcomes]},
    )
