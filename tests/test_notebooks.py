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


def test_there_are_notebooks() -> None:
    assert any(nb.name == "overview.ipynb" for nb in NOTEBOOKS)
