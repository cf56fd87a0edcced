"""The single registry of hypervolume reference points (``specs/conventions.md`` §5; MT2O additions ``specs/mt2o.md`` §3).

Everything is minimised. Reference points come **only** from here (a test greps ``methods/``, ``paper_repro/``,
``theory/`` and ``notebooks/`` for literal references); :func:`paper_repro.metrics.hypervolume` takes an id.

Reference rules (``HVReference.rule``):
- ``"fixed"``: ``reference`` per objective (a scalar is broadcast over ``n_obj`` objectives);
- ``"lattice"``: ``reference`` (1.1) each, or ``1 + 1/H`` when the caller passes ``lattice_divisions=H`` for a
  simplex-lattice preference set with H divisions (Ishibuchi's rule, anyoptimization/pymoo issue #59);
- ``"trivial"``: ``reference × trivial_losses``: the factor times the loss of the best constant predictor of each
  task, computed by the caller on train for the fixed data seed (``scenes.shapes``).

Normalisation is never implicit: an entry with ``ideal``/``nadir`` maps ``f ↦ (f − ideal)/(nadir − ideal)``
before the reference applies (:meth:`HVReference.normalise`), and the HV result records that it did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np

__all__ = ["HVReference", "REGISTRY", "get_entry", "get_reference", "known_ids"]

Scalars = float | tuple[float, ...]


@dataclass(frozen=True)
class HVReference:
    """One registry entry: benchmark id, minimised objectives, reference rule, normalisation, source."""

    id: str
    objectives: str
    reference: Scalars
    normalisation: str
    source: str
    n_obj: int | None = None
    rule: Literal["fixed", "lattice", "trivial"] = "fixed"
    ideal: Scalars | None = None
    nadir: Scalars | None = None

    def _n_obj(self, n_obj: int | None) -> int:
        n = self.n_obj if n_obj is None else n_obj
        if n is None:
            raise ValueError(f"Parameter `n_obj` should be given for `{self.id}`, whose number of objectives is "
                             f"not fixed. Found `n_obj = None`.")
        if self.n_obj is not None and n != self.n_obj:
            raise ValueError(f"Parameter `n_obj` should be {self.n_obj} for `{self.id}`. Found `n_obj = {n}`.")
        if isinstance(self.reference, tuple) and len(self.reference) != n:
            raise ValueError(f"Parameter `n_obj` should be {len(self.reference)} for `{self.id}`. Found `n_obj = {n}`.")
        return n

    def reference_point(self, n_obj: int | None = None, *, lattice_divisions: int | None = None,
                        trivial_losses: Sequence[float] | None = None) -> np.ndarray:
        """The reference point, float64 ``(n_obj,)``, in the (possibly normalised) objective space."""
        if self.rule == "trivial":
            if trivial_losses is None:
                raise ValueError(f"Parameter `trivial_losses` should be given for `{self.id}` (rule: "
                                 f"{self.reference} × trivial loss per task). Found `trivial_losses = None`.")
            t = np.asarray(trivial_losses, dtype=np.float64)
            n = self._n_obj(t.size if n_obj is None else n_obj)
            if t.shape != (n,) or not np.all(np.isfinite(t) & (t > 0)):
                raise ValueError(f"Parameter `trivial_losses` should be {n} positive finite losses. "
                                 f"Found `trivial_losses = {list(t.ravel())}`.")
            return float(self.reference) * t  # type: ignore[arg-type]
        if trivial_losses is not None:
            raise ValueError(f"Parameter `trivial_losses` should be None for `{self.id}` (rule {self.rule!r}). "
                             f"Found `trivial_losses = {trivial_losses}`.")
        n = self._n_obj(n_obj)
        if lattice_divisions is not None:
            if self.rule != "lattice":
                raise ValueError(f"Parameter `lattice_divisions` should be None for `{self.id}` (rule "
                                 f"{self.rule!r}). Found `lattice_divisions = {lattice_divisions}`.")
            if isinstance(lattice_divisions, bool) or not isinstance(lattice_divisions, int) or lattice_divisions < 1:
                raise ValueError(f"Parameter `lattice_divisions` should be a positive integer. "
                                 f"Found `lattice_divisions = {lattice_divisions!r}`.")
            return np.full(n, 1.0 + 1.0 / lattice_divisions)
        return np.broadcast_to(np.asarray(self.reference, dtype=np.float64), (n,)).copy()

    def normalise(self, points: np.ndarray) -> np.ndarray:
        """``(f − ideal)/(nadir − ideal)`` when the entry normalises, else ``points`` unchanged; ``(n, m)``."""
        if self.ideal is None or self.nadir is None:
            if self.normalisation.startswith("explicit"):
                raise ValueError(f"Registry entry `{self.id}` normalises ({self.normalisation}) but records no "
                                 f"ideal/nadir constants yet; add them to paper_repro/hv_refs.py.")
            return points
        m = points.shape[1]
        ideal = np.broadcast_to(np.asarray(self.ideal, dtype=np.float64), (m,))
        nadir = np.broadcast_to(np.asarray(self.nadir, dtype=np.float64), (m,))
        return (points - ideal) / (nadir - ideal)


def _entries() -> tuple[HVReference, ...]:
    cosmos = "ruchtem/cosmos:multi_objective/settings.py"
    zdt_norm = "explicit (f − ideal)/(nadir − ideal), ideal and nadir of the analytic front"
    ishibuchi = "Ishibuchi's rule, summarised in anyoptimization/pymoo issue #59"
    zdt_fronts = {  # ideal, nadir of the analytic Pareto fronts (checked against pymoo in tests/test_metrics.py)
        "zdt1": ((0.0, 0.0), (1.0, 1.0)), "zdt2": ((0.0, 0.0), (1.0, 1.0)),
        "zdt3": ((0.0, -0.7733690123266405), (0.8518328654, 1.0)), "zdt4": ((0.0, 0.0), (1.0, 1.0)),
        "zdt5": ((1.0, 10.0 / 31.0), (31.0, 10.0)),  # raw objectives (pymoo's ZDT5 normalises by default)
        "zdt6": ((0.2807753188153771, 0.0), (1.0, 0.9211652203441234)),
    }
    dtlz_fronts: dict[str, tuple[float | None, float | None]] = {
        "dtlz1": (0.0, 0.5), "dtlz2": (0.0, 1.0), "dtlz3": (0.0, 1.0), "dtlz4": (0.0, 1.0),
        "dtlz5": (None, None), "dtlz6": (None, None), "dtlz7": (None, None),  # m-dependent: not recorded yet
    }
    re_n_obj = {"re21": 2, "re22": 2, "re23": 2, "re24": 2, "re25": 2, "re31": 3, "re32": 3, "re33": 3,
                "re34": 3, "re35": 3, "re36": 3, "re37": 3, "re41": 4, "re42": 4, "re61": 6, "re91": 9}
    out = [
        HVReference("moocore.example", "test fixture (moocore documentation example)", (10.0, 10.0), "none",
                    "moocore documentation: (5,5),(4,6),(2,7),(7,4) with reference (10,10) gives 38.0", n_obj=2),
        HVReference("multimnist.phn", "test CE loss (left, right)", (3.0, 3.0), "none",
                    "AvivNavon/pareto-hypernetworks:experiments/multimnist/trainer.py", n_obj=2),
        HVReference("multimnist.cosmos", "CE losses (left, right)", (2.0, 2.0), "none", cosmos, n_obj=2),
        HVReference("multidigits", "CE losses (left, right)", (3.0, 3.0), "none",
                    "ours; 3 > ln 10 ≈ 2.303, the chance-level CE", n_obj=2),
        HVReference("multimnist1d", "CE losses (left, right)", (3.0, 3.0), "none",
                    "ours; 3 > ln 10 ≈ 2.303, the chance-level CE", n_obj=2),
        *(HVReference(f"fairness.{d}", "BCE, DEO", (2.0, 2.0), "none",
                      f"{cosmos}; LibMOON's get_hv_ref(\"adult\")", n_obj=2) for d in ("adult", "compas", "credit")),
        HVReference("libmoon.regression", "MSE, MSE", (8.0, 8.0), "none",
                    "xzhang2523/libmoon:libmoon/util/constant.py", n_obj=2),
        *(HVReference(f"tabular.{d}", "MSE per target on standardised targets", 2.0,
                      "standardise targets with train statistics (upstream of the losses)",
                      "ours; the trivial predictor scores ≈ 1", n_obj=3) for d in ("linnerud", "solarflare")),
        HVReference("synth.regression", "MSE per target on train-standardised targets", 2.0,
                    "standardise targets with train statistics (upstream of the losses)",
                    "specs/mt2o.md §3, as tabular.*"),
        HVReference("vlmop1", "f1, f2 (convex front)", (1.1, 1.1), "none", "ours; the front lies in [0,1]²", n_obj=2),
        HVReference("vlmop2", "f1, f2 (concave front)", (1.1, 1.1), "none", "ours; the front lies in [0,1]²", n_obj=2),
        *(HVReference(z, "f1, f2", 1.1, zdt_norm, ishibuchi, n_obj=2, rule="lattice", ideal=i, nadir=n)
          for z, (i, n) in zdt_fronts.items()),
        *(HVReference(d, "f1..fm", 1.1, zdt_norm, ishibuchi, rule="lattice", ideal=i, nadir=n)
          for d, (i, n) in dtlz_fronts.items()),
        *(HVReference(r, "f1..fm", 1.1, "explicit, with EPSL's ideal and nadir values (not recorded yet)",
                      "Xi-L/EPSL:run_epsl.py; give the HV gap to the true front", n_obj=m)
          for r, m in re_n_obj.items()),
        HVReference("scenes.shapes", "seg CE, depth L1 (+ normals loss for the 3-task variant)", 2.0,
                    "none; reference = 2 × trivial loss per task",
                    "specs/mt2o.md §3: 2 × the loss of the best constant predictor (class-frequency CE, median "
                    "depth; for normals the cosine loss of the normalised mean normal, 1 − ‖mean n‖, our "
                    "extension for the 3-task variant), on train for the fixed data seed, frozen", rule="trivial"),
    ]
    return tuple(out)


REGISTRY: Mapping[str, HVReference] = MappingProxyType({e.id: e for e in _entries()})


def known_ids() -> list[str]:
    """Every registered id, sorted."""
    return sorted(REGISTRY)


def get_entry(ref_id: str) -> HVReference:
    """The registry entry of ``ref_id``; ``KeyError`` listing the known ids otherwise."""
    try:
        return REGISTRY[ref_id]
    except KeyError:
        raise KeyError(f"Unknown hypervolume reference id {ref_id!r}. Known ids: {', '.join(known_ids())}.") from None


def get_reference(ref_id: str, n_obj: int | None = None, *, lattice_divisions: int | None = None,
                  trivial_losses: Sequence[float] | None = None) -> np.ndarray:
    """The reference point of ``ref_id`` (float64 ``(n_obj,)``); see :meth:`HVReference.reference_point`."""
    return get_entry(ref_id).reference_point(n_obj, lattice_divisions=lattice_divisions,
                                             trivial_losses=trivial_losses)
