"""nodekit.data.downloader: the checksummed downloader and its command line.

Download tests talk only to HTTP servers on 127.0.0.1 started here, serving small generated files."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
from problems import (
    IDX_NAMES,
    data_root,  # noqa: F401 (fixture: every test gets an empty data root)
    make_idx_set,
)

from nodekit import data
from nodekit.data import DownloadError


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class DropsConnectionHandler(QuietHandler):
    """Announces the whole file, sends half of it, then hangs up."""

    def do_GET(self) -> None:
        body = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve():
    """Start a loopback HTTP server for a folder; return its base URL. Servers stop at teardown."""
    servers = []

    def start(directory: Path, handler=QuietHandler) -> str:
        bound_handler = functools.partial(handler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), bound_handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def published(tmp_path, monkeypatch) -> Path:
    """A folder of generated .gz IDX files, registered as the "mnist" download with their MD5s."""
    folder = tmp_path / "published"
    make_idx_set(folder, seed=7)
    md5 = {f"{stem}.gz": hashlib.md5((folder / f"{stem}.gz").read_bytes()).hexdigest() for stem in IDX_NAMES}
    remote = dataclasses.replace(data.REMOTE["mnist"], mirrors=("http://127.0.0.1:9/unused/",), md5=md5)
    monkeypatch.setitem(data.REMOTE, "mnist", remote)
    return folder


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_verifies_and_loads(published, serve, data_root):
    url = serve(published)
    directory = data.download("mnist", mirrors=[url], timeout=5)
    assert directory == data_root / "mnist"
    assert leftovers(directory) == leftovers(published)
    for path in published.iterdir():
        assert (directory / path.name).read_bytes() == path.read_bytes()
    assert len(data.mnist("full").train) == 12
    # Verified files are kept: a second call needs no server (port 9 on loopback has none).
    data.download("mnist", mirrors=["http://127.0.0.1:9/"], timeout=5)


def test_mnist_download_true_uses_the_table_mirrors(published, serve, monkeypatch):
    url = serve(published)
    monkeypatch.setitem(data.REMOTE, "mnist", dataclasses.replace(data.REMOTE["mnist"], mirrors=(url,)))
    assert len(data.mnist("full", download=True).test) == 5


def test_download_checksum_mismatch_leaves_no_file(published, serve, tmp_path, data_root):
    tampered = tmp_path / "tampered"
    make_idx_set(tampered, seed=8)  # same names, different bytes
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        data.download("mnist", mirrors=[serve(tampered)], timeout=5)
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    assert leftovers(data_root / "mnist") == []


def test_download_cut_off_mid_file_leaves_no_file(published, serve, data_root):
    url = serve(published, DropsConnectionHandler)
    with pytest.raises(DownloadError, match="connection closed after|IncompleteRead"):
        data.download("mnist", mirrors=[url], timeout=5)
    assert leftovers(data_root / "mnist") == []


def test_download_falls_back_to_next_mirror(published, serve, tmp_path, data_root):
    (tmp_path / "empty").mkdir()
    first, second = serve(tmp_path / "empty"), serve(published)
    data.download("mnist", mirrors=[first, second], timeout=5)
    assert leftovers(data_root / "mnist") == leftovers(published)


def test_download_reports_every_mirror_that_failed(published, serve, tmp_path):
    (tmp_path / "empty").mkdir()
    url = serve(tmp_path / "empty")
    with pytest.raises(DownloadError) as info:
        data.download("mnist", mirrors=[url + "/a", url + "/b"], timeout=5)
    message = str(info.value)
    assert message.count("404") == 2 and f"{url}/a/train-images" in message and f"{url}/b/train-images" in message


def test_download_unknown_name():
    with pytest.raises(ValueError, match="choose one of: mnist, fashion-mnist"):
        data.download("cifar10")


def test_cli_downloads(published, serve, data_root, capsys):
    assert data.main(["download", "mnist", "--mirror", serve(published), "--timeout", "5"]) == 0
    assert "verified" in capsys.readouterr().out
    assert leftovers(data_root / "mnist") == leftovers(published)


def test_cli_failure_exits_1_with_message(published, serve, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert data.main(["download", "mnist", "--mirror", serve(tmp_path / "empty"), "--root", str(tmp_path)]) == 1
    assert "could not download" in capsys.readouterr().err

