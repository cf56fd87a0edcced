"""The EMTL theory checks (theory/emtl.py) hold; T8 is deterministic and finite."""

from __future__ import annotations

import numpy as np
import pytest

from theory.emtl import generalization_experiment
from theory.registry import all_checks

CHECKS = all_checks("EMTL")


def test_registered():
    names = {c.name for c in CHECKS}
    assert {"T1_sympy_invariance", "T2_sympy_relative_progress", "T3_r1_closed_form", "T4_r3_exact_gradient",
            "T5_r2_vs_cvxpy", "T6_implementation_invariance", "T7_stop_gradient_vs_exact", "T8_generalization_toy"} <= names


@pytest.mark.parametrize("chk", [c for c in CHECKS if c.name != "T8_generalization_toy"], ids=lambda c: c.name)
def test_check_holds(chk):
    out = chk.run()
    assert out.holds, (chk.name, out.result)


def test_t8_small_deterministic_and_finite():
    a = generalization_experiment(lams=(0.0, 1.0), seeds=3, steps=100)
    b = generalization_experiment(lams=(0.0, 1.0), seeds=3, steps=100)
    assert a["methods"] == b["methods"]
    assert a["weights_crosscheck"] < 1e-9
    for v in a["methods"].values():
        assert np.isfinite(v["gap"]).all() and np.isfinite(v["cv2"]).all()
    c = generalization_experiment(lams=(0.0, 1.0), seeds=3, steps=100, data_seed=1)
    assert c["methods"] != a["methods"]
