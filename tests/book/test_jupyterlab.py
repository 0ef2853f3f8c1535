"""A chapter runs in JupyterLab as `make lab` starts it: the server lists the chapters, a kernel it
starts executes a chapter's first cells (parameters, imports, provenance), and it stops cleanly.
A screenshot of JupyterLab with the chapter open goes to ``_build/screenshots/`` where Chromium is installed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

websocket = pytest.importorskip("websocket", reason="websocket-client (a JupyterLab dependency) is not installed")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CHAPTER = "01_odes_euler_resnets.ipynb"
TOKEN = uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    """JupyterLab on the notebooks, as `make lab` runs it (plus a free port, a token and no browser)."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", f"--notebook-dir={NOTEBOOKS}", "--allow-root",
               "--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            get(base, "/api/status")
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("JupyterLab did not start:\n" + (server.stdout.read() if server.stdout else ""))
            time.sleep(0.5)
    yield base, port
    request(base, "/api/shutdown", method="POST")
    try:
        assert server.wait(timeout=30) == 0, "JupyterLab did not stop cleanly"
    finally:
        if server.poll() is None:
            server.kill()


def request(base: str, path: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                 headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        text = response.read().decode()
    return json.loads(text) if text else {}


def get(base: str, path: str) -> dict:
    return request(base, path)


def execute(ws, code: str, timeout: float = 300) -> list[dict]:
    """Run ``code`` in the kernel behind ``ws``; return its iopub outputs (fails on an error reply)."""
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                   "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    # Done when the shell channel has replied and the kernel is idle again on iopub (the two
    # channels share the websocket but not an order: outputs may come after the reply).
    outputs, reply, idle, deadline = [], None, False, time.monotonic() + timeout
    while time.monotonic() < deadline and not (reply and idle):
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind in ("display_data", "execute_result", "stream", "error"):
            outputs.append(msg["content"] | {"msg_type": kind})
        elif kind == "execute_reply":
            reply = msg["content"]
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
    if not (reply and idle):
        pytest.fail(f"no reply within {timeout} s to:\n{code}")
    assert reply["status"] == "ok", f"cell failed: {outputs}"
    return outputs


def test_server_lists_every_chapter(lab) -> None:
    base, _ = lab
    listed = {item["name"] for item in get(base, "/api/contents")["content"]}
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} <= listed


def test_a_chapters_first_cells_run_in_a_kernel_of_the_server(lab) -> None:
    base, port = lab
    cells = [c for c in get(base, f"/api/contents/{CHAPTER}")["content"]["cells"] if c["cell_type"] == "code"]
    parameters = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
    setup = next(c for c in cells if "start_chapter(" in "".join(c["source"]))
    session = request(base, "/api/sessions", "POST",
                      {"path": CHAPTER, "type": "notebook", "name": CHAPTER, "kernel": {"name": "python3"}})
    kernel = session["kernel"]["id"]
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels?token={TOKEN}", timeout=300)
    try:
        execute(ws, "".join(parameters["source"]))
        outputs = execute(ws, "".join(setup["source"]))
        shown = " ".join(json.dumps(o.get("data", {})) for o in outputs if o["msg_type"] == "display_data")
        assert "Provenance of this execution" in shown and "quick" in shown
        assert execute(ws, "print(profile, seed, type(run).__name__)")[-1]["text"].strip() == "quick 0 ChapterRun"
    finally:
        ws.close()
        request(base, f"/api/sessions/{session['id']}", "DELETE")
    chromium = shutil.which("chromium")
    if chromium:  # what a reader sees: JupyterLab with the chapter open
        shots = ROOT / "_build" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
                        "--window-size=1400,1000", f"--screenshot={shots / 'jupyterlab.png'}",
                        f"{base}/lab/tree/{CHAPTER}?token={TOKEN}"], capture_output=True, timeout=120)
