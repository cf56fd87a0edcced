"""Every notebook in ``notebooks/`` runs under nbval (one test per notebook), and is committed stripped.

Mode: ``--nbval-lax``: every cell must run without error; only cells marked ``# NBVAL_CHECK_OUTPUT``
have their stored output compared. The notebooks share the session's runs folder (``runs_dir`` in
conftest) through ``$MTOPT_RUNS_DIR``, so experiments already run by the claims test are read back.
Per-notebook time limits: :data:`TIMEOUT_S` (``$MTOPT_NOTEBOOK_TIMEOUT`` overrides the default).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DEFAULT_TIMEOUT_S = int(os.environ.get("MTOPT_NOTEBOOK_TIMEOUT", "1800"))
#: Per-notebook wall-clock limits in seconds (default :data:`DEFAULT_TIMEOUT_S`).
TIMEOUT_S: dict[str, int] = {"overview.ipynb": DEFAULT_TIMEOUT_S}
CHECK_MARK = "NBVAL_CHECK_OUTPUT"
_IDS = [nb.stem for nb in NOTEBOOKS]


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_IDS)
def test_notebook_runs(notebook: Path, runs_dir: Path) -> None:
    timeout = TIMEOUT_S.get(notebook.name, DEFAULT_TIMEOUT_S)
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", str(notebook), "-q", "-p", "no:cacheprovider",
           f"--nbval-cell-timeout={timeout}", f"--rootdir={ROOT}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "MTOPT_RUNS_DIR": str(runs_dir), "MPLBACKEND": "Agg"}
    try:
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{notebook.name} did not finish within {timeout} s (MTOPT_NOTEBOOK_TIMEOUT)")
    assert out.returncode == 0, f"nbval failed on {notebook.name}:\n{out.stdout[-6000:]}\n{out.stderr[-2000:]}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_IDS)
def test_notebook_is_stripped(notebook: Path) -> None:
    """Outputs are committed only for checked cells, and stay small (no images, no run logs)."""
    raw = json.loads(notebook.read_text())  # before nbformat, which fills in missing cell ids with a warning
    assert all("id" in c for c in raw["cells"]), f"{notebook.name}: cells without an id (nbformat 4.5 needs them)"
    nb = nbformat.read(notebook, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if CHECK_MARK not in cell.source:
            assert not cell.get("outputs"), f"{notebook.name} cell {i}: unchecked output committed (strip it)"
        for o in cell.get("outputs", []):
            assert o.output_type == "stream", f"{notebook.name} cell {i}: only text outputs may be checked"
    assert notebook.stat().st_size < 100_000, f"{notebook.name} is {notebook.stat().st_size} bytes: strip outputs"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_IDS)
def test_notebook_figures_display(notebook: Path) -> None:
    """Figures are shown as cell values or with ``display(fig)``: the first code cell turns on the inline backend,
    and nothing switches to a non-interactive backend or relies on pyplot's show (the library's figures are not
    pyplot figures, so ``plt.show()`` would show nothing and a ``;``-terminated call would hide the figure)."""
    nb = nbformat.read(notebook, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code and code[0].startswith("%matplotlib inline"), f"{notebook.name}: first code cell lacks %matplotlib inline"
    for i, src in enumerate(code):
        assert "matplotlib.use(" not in src and "plt.show()" not in src, f"{notebook.name} code cell {i}"
        last = src.rstrip().splitlines()[-1] if src.strip() else ""
        assert not (last.startswith(("E.fig", "ex.figure", "fig")) and last.endswith(";")), \
            f"{notebook.name} code cell {i}: a figure hidden by ';'"


def test_library_figures_do_not_use_pyplot() -> None:
    """``paper_repro`` builds figures with the object-oriented API (``paper_repro.figures.subplots``), so a figure is
    not held by pyplot, is not shown twice in a notebook, and a report of many figures leaks none."""
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "paper_repro").rglob("*.py"))
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if "matplotlib.pyplot" in line and not line.lstrip().startswith(">>>")]   # doctests may check it
    assert not offenders, f"modules importing pyplot: {offenders}"


def test_there_are_notebooks() -> None:
    assert any(nb.name == "overview.ipynb" for nb in NOTEBOOKS)
