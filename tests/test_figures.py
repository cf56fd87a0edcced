"""Every figure says its data, profile, seeds and commit (``paper_repro.figures.stamp``)."""

from __future__ import annotations

import inspect

import pytest

from paper_repro import figures
from paper_repro.experiments import cso, demo, emtl, mt2o, nmt

MODULES = [cso, demo, emtl, mt2o, nmt]


def _figure_functions() -> list[tuple[str, object]]:
    out = []
    for mod in MODULES:
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ == mod.__name__ and (name.startswith("fig_") or
                                                  (name.startswith("figure_") and name != "figure_title")):
                out.append((f"{mod.__name__}.{name}", fn))
    return out


def test_there_are_figure_functions() -> None:
    assert len(_figure_functions()) >= 20


@pytest.mark.parametrize("name,fn", _figure_functions(), ids=[n for n, _ in _figure_functions()])
def test_every_experiment_figure_is_stamped(name: str, fn: object) -> None:
    assert getattr(fn, "__wrapped__", None) is not None, f"{name} is not decorated with paper_repro.figures.stamped"


def test_stamp_names_partial_dirty_and_several_results() -> None:
    res = {"experiment": "emtl.digits", "config": {"dataset": "multidigits"}, "profile": "quick", "seeds": [0, 1],
           "provenance": {"commit": "abcdef0123", "dirty": True}}
    line = figures.provenance_line(res)
    assert line.startswith("Multi-Digits") and "seeds [0, 1]" in line and line.endswith("commit abcdef0+dirty")
    fig = figures.summary_figure({**res, "summary": {"a": {"mean": 1.0, "se": 0.1, "n": 2, "values": [0.9, 1.1]}}})
    assert fig._supxlabel.get_text() == line            # summary_figure is stamped itself
    figures.stamp(fig, {"experiment": "x"})             # a second stamp does nothing
    assert fig._supxlabel.get_text() == line
    fig2, _ = figures.subplots()
    figures.stamp(fig2, [res, {**res, "experiment": "cso.scenes", "config": {"size": 16}, "partial_seeds": [2]}])
    text = fig2._supxlabel.get_text().splitlines()
    assert len(text) == 2 and "scenes 16×16" in text[1] and "(partial: not [2])" in text[1]
