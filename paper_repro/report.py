"""A static report of every registered experiment: ``python -m paper_repro report``.

``report/index.md`` (and ``index.html`` with the same content, images by relative path):
provenance header, one section per experiment (description, config, result table, figures), the
claims table and the theory table. Experiments are loaded when stored results match the current
settings, run otherwise (``run_missing``); an experiment that fails gets an error note in its section.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paper_repro.claims import all_claims, evaluate, format_table
from paper_repro.figures import default_figures, save_figure
from paper_repro.provenance import provenance
from paper_repro.registry import PAPERS, all_experiments
from paper_repro.runner import DEFAULT_OUT, obtain_results, summary_table

__all__ = ["write_report"]

log = logging.getLogger(__name__)
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


class _Doc:
    """Builds the Markdown and the HTML version of the report side by side."""

    def __init__(self) -> None:
        self.md: list[str] = []
        self.html: list[str] = []

    def heading(self, level: int, text: str, anchor: str | None = None) -> None:
        self.md.append(f"{'#' * level} {text}\n")
        aid = f' id="{html.escape(anchor)}"' if anchor else ""
        self.html.append(f"<h{level}{aid}>{html.escape(text)}</h{level}>")

    def para(self, text: str) -> None:
        self.md.append(text + "\n")
        self.html.append(f"<p>{html.escape(text)}</p>")

    def bullets(self, items: Sequence[str]) -> None:
        self.md.append("\n".join(f"- {i}" for i in items) + "\n")
        self.html.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")

    def code(self, text: str) -> None:
        self.md.append(f"```\n{text}\n```\n")
        self.html.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, md_table: str) -> None:
        self.md.append(md_table + "\n")
        lines = [ln for ln in md_table.splitlines() if ln.startswith("|")]
        rows = [[c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(ln.strip())[1:-1]] for ln in lines]
        body = [r for i, r in enumerate(rows) if i != 1]  # drop the |---| line
        out = ["<table>"]
        for i, r in enumerate(body):
            tag = "th" if i == 0 else "td"
            out.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in r) + "</tr>")
        out.append("</table>")
        self.html.append("".join(out))

    def image(self, rel: str, alt: str) -> None:
        self.md.append(f"![{alt}]({rel})\n")
        self.html.append(f'<p><img src="{html.escape(rel)}" alt="{html.escape(alt)}" style="max-width:100%"></p>')

    def write(self, out: Path, title: str) -> Path:
        (out / "index.md").write_text("\n".join(self.md), encoding="utf-8")
        style = (
            "body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}"
            "pre{background:#f4f4f4;padding:.5em;overflow:auto}"
        )
        doc = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(self.html) + "\n</body></html>\n"
        )
        (out / "index.html").write_text(doc, encoding="utf-8")
        return out / "index.md"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def write_report(
    profile: str = "quick",
    out: Path | str = Path("report"),
    papers: Sequence[str] | None = None,
    *,
    experiments: Sequence[str] | None = None,
    out_dir: Path | str = DEFAULT_OUT,
    device: str = "cpu",
    run_missing: bool = True,
    progress: bool = True,
    include_theory: bool = True,
) -> Path:
    """Write ``out/index.md``, ``out/index.html`` and ``out/figures/*.png``; return the index.md path.

    :param profile: the experiments' profile.
    :param papers: restrict to these papers (default all of :data:`paper_repro.registry.PAPERS`).
    :param experiments: restrict to these experiment names (and the claims that use them).
    :param out_dir: where runs are stored / looked up (see :mod:`paper_repro.runner`).
    :param run_missing: run experiments whose results are missing or stale.
    :param include_theory: add the table of ``theory.registry.run_all()``.
    """
    t0 = time.perf_counter()
    out = Path(out)
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    papers = list(papers) if papers else list(PAPERS)
    bad = [p for p in papers if p not in PAPERS]
    if bad:
        raise ValueError(f"Parameter `papers` should contain only {PAPERS}. Found {bad}.")
    selected = [e for e in all_experiments() if e.paper in papers]
    if experiments is not None:
        unknown = sorted(set(experiments) - {e.name for e in all_experiments()})
        if unknown:
            raise KeyError(f"Unknown experiments {unknown}; known: {sorted(e.name for e in all_experiments())}.")
        selected = [e for e in selected if e.name in set(experiments)]

    sections = _Doc()
    total_wall = 0.0
    seeds_used: dict[str, list[int]] = {}
    for exp in selected:
        sections.heading(2, f"{exp.name} ({exp.paper})", anchor=exp.name)
        sections.para(exp.description.strip())
        try:
            res = obtain_results(exp.name, profile, out_dir, run_missing=run_missing, device=device, progress=progress)
        except Exception as exc:
            log.exception("experiment %s failed", exp.name)
            sections.para(f"ERROR while running: {type(exc).__name__}: {exc}")
            continue
        if res is None:
            sections.para(f"No results: run `python -m paper_repro run {exp.name} --profile {profile}`.")
            continue
        seeds_used[exp.name] = res.get("seeds", [])
        total_wall += float(res.get("wall_clock_s", 0.0))
        prov = res.get("provenance", {})
        sections.bullets([
            f"seeds {res.get('seeds')}; training wall-clock {res.get('wall_clock_s', 0.0):.1f} s (sum over seeds)",
            f"produced at commit {prov.get('commit', 'unknown')}{' (dirty)' if prov.get('dirty') else ''} "
            f"on {prov.get('hostname', '?')}, device {prov.get('device', '?')}, {prov.get('torch_threads', '?')} threads",
            f"source: {res.get('source', 'this run')}" + (" (STALE: other settings than the current config)" if res.get("stale") else "")
            + (f" (PARTIAL: seeds {res['partial_seeds']} of the profile not run yet)" if res.get("partial_seeds") else ""),
        ])
        sections.code(json.dumps(res.get("config", {}), sort_keys=True))
        if res.get("summary"):
            sections.table(summary_table(res))
        if res.get("aggregate"):
            sections.code(json.dumps(res["aggregate"], indent=1)[:4000])
        try:
            figs = {name: fn(res) for name, fn in exp.figures.items()} if exp.figures else default_figures(res)
        except Exception as exc:
            log.exception("figures of %s failed", exp.name)
            sections.para(f"ERROR while drawing figures: {type(exc).__name__}: {exc}")
            figs = {}
        for fname, fig in figs.items():
            path = save_figure(fig, figdir / f"{_safe(exp.name)}--{_safe(fname)}.png")
            sections.image(path.relative_to(out).as_posix(), f"{exp.name}: {fname}")

    names = {e.name for e in selected}
    claims = [c for c in all_claims() if c.paper in papers and (experiments is None or c.experiment in names)]
    claim_rows = evaluate(claims, profile=profile, out_dir=out_dir, run_missing=run_missing, device=device)
    theory_rows: list[Any] = []
    if include_theory:
        from theory.registry import run_all

        theory_rows = [r for p in papers for r in run_all(p)]

    doc = _Doc()
    prov = provenance({"profile": profile, "papers": papers, "out_dir": str(out_dir)}, device)
    doc.heading(1, f"Reproduction report: profile {profile!r}")
    doc.bullets([
        f"commit {prov['commit']}{' (dirty tree)' if prov['dirty'] else ''}; generated {prov['timestamp_utc']}",
        f"machine {prov['hostname']} ({prov['platform']}); python {prov['python']}, torch {prov['torch']}, "
        f"numpy {prov['numpy']}; {prov['torch_threads']} torch threads; device {prov['device']}",
        f"profile {profile}; papers {', '.join(papers)}; {len(selected)} experiment(s)",
        "seeds: " + ("; ".join(f"{k} {v}" for k, v in seeds_used.items()) or "none"),
        f"training wall-clock {total_wall:.1f} s (sum over experiments and seeds); "
        f"report built in {time.perf_counter() - t0:.1f} s",
    ])
    n_hold = sum(r.holds is True for r in claim_rows)
    doc.heading(2, "Claims")
    doc.para(f"{n_hold}/{len(claim_rows)} claims hold on profile {profile!r}. A claim that does not hold is listed "
             "with what we measured.")
    if claim_rows:
        doc.table(format_table(claim_rows))
    if include_theory:
        from theory.registry import format_table as theory_table

        doc.heading(2, "Theory checks")
        doc.para(f"{sum(r.holds is True for r in theory_rows)}/{len(theory_rows)} checks hold (`python -m theory`).")
        if theory_rows:
            doc.table(theory_table(theory_rows))
    doc.heading(2, "Experiments")
    if not selected:
        doc.para("No experiment is registered for these papers.")
    doc.md += sections.md
    doc.html += sections.html
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    index = doc.write(out, f"Reproduction report ({profile}, {stamp})")
    log.info("report written to %s", index)
    return index
