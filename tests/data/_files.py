"""Writers of tiny files in the real formats (conventions §9), shared by the loader tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_nyuv2(root: Path, n: int = 3, h: int = 6, w: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for part, shape in (("image", (h, w, 3)), ("label", (h, w)), ("depth", (h, w, 1)), ("normal", (h, w, 3))):
            folder = root / split / part
            folder.mkdir(parents=True)
            for i in range(n):
                arr = rng.random(shape).astype(np.float32)
                if part == "label":
                    arr = rng.integers(-1, 13, shape).astype(np.float32)
                np.save(folder / f"{i}.npy", arr)
    return root


def write_aliexpress(path: Path, n: int = 20) -> Path:
    rng = np.random.default_rng(0)
    header = ["search_id"] + [f"categorical_{i}" for i in range(16)] + [f"numerical_{i}" for i in range(3)] + ["click", "conversion"]
    click = rng.integers(0, 2, n)
    rows = np.column_stack([np.arange(n), rng.integers(0, 5, (n, 16)), rng.random((n, 3)), click, click * rng.integers(0, 2, n)])
    lines = [",".join(header)] + [",".join(f"{v:g}" for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_pmtl(path: Path) -> Path:
    rng = np.random.default_rng(0)
    obj = (rng.random((10, 36, 36)), rng.integers(0, 10, (10, 2)), rng.random((4, 1296)), rng.integers(0, 10, (4, 2)))
    path.write_bytes(pickle.dumps(obj))
    return path


def write_census(path: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        r = [f"c{j}_{rng.integers(0, 3)}" for j in range(42)]
        for c in (0, 5, 16, 17, 18, 24, 30, 39):
            r[c] = str(int(rng.integers(0, 90)))
        r[7] = " Never married" if i % 2 else " Married-civilian spouse present"
        r[41] = " 50000+." if i % 3 == 0 else " - 50000."
        rows.append(", ".join(r))
    path.write_text("\n".join(rows) + "\n")
    return path
