"""Starting `python app.py` for a test and waiting until it answers (readiness, not a sleep)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(proc, url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited early:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/gradio_api/info", timeout=2):
                return
        except OSError:
            time.sleep(0.5)  # polling interval while the server starts, not a synchronisation
    raise TimeoutError(f"app did not answer at {url}")


@contextmanager
def serve(weights, *extra: str):
    """The app on a free port with ``weights``; yields its URL and stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--weights", str(weights), *extra],
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(proc, url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
