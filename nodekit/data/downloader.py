"""The checksummed downloader of the standard IDX files, and its command line.

``python -m nodekit.data download NAME [--root DIR] [--mirror URL ...] [--timeout S]`` fetches
``mnist`` or ``fashion-mnist`` into ``<root>/<name>/`` (root: :func:`nodekit.paths.data_dir`).
Every file is checked against its published MD5 before it is renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import logging
import os
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..paths import data_dir

log = logging.getLogger(__name__)

__all__ = ["REMOTE", "DownloadError", "Remote", "data_root", "download", "fetch_missing", "main", "md5sum"]


class DownloadError(RuntimeError):
    """A download failed: no mirror delivered the file whole and with the published checksum."""


def data_root(root: str | os.PathLike[str] | None) -> Path:
    """``root`` if given, else :func:`nodekit.paths.data_dir` (read at call time)."""
    return Path(root).expanduser() if root is not None else data_dir()


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
    return fetch_missing(remote, data_root(root) / remote.dirname, mirrors, timeout)


def fetch_missing(
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
    fetch.add_argument("--root", type=Path, default=None, help="data root (default: $NODEKIT_DATA, else <repo>/data)")
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

