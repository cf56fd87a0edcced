"""environment.yml, requirements/pins.txt and pyproject.toml name the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements/pins.txt").read_text().splitlines()]
    return {_name(ln): ln for ln in lines if ln}


def _conda_pip() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text()
    block = text.split("- pip:", 1)[1]
    reqs = [m.group(1).strip() for m in re.finditer(r"^\s+- (.+)$", block, flags=re.M)]
    return {_name(r): r for r in reqs if not r.startswith("-e")}


def test_environment_yml_matches_pins_exactly():
    assert _conda_pip() == _pins()


def test_pyproject_dependencies_are_all_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    pins = _pins()
    missing = sorted({_name(d) for d in deps} - set(pins))
    assert not missing, f"pyproject dependencies without a pin in requirements/pins.txt: {missing}"


def test_torch_and_torchjd_pinned_exactly():
    pins = _pins()
    assert pins["torch"] == "torch==2.13.0"
    assert re.fullmatch(r"torchjd==\d+\.\d+\.\d+", pins["torchjd"])


def test_no_torchvision_anywhere():
    for f in ("requirements/pins.txt", "environment.yml", "pyproject.toml"):
        assert "torchvision" not in (ROOT / f).read_text()


def test_installed_torch_is_the_pinned_one():
    import torch
    assert torch.__version__.split("+")[0] == "2.13.0"
