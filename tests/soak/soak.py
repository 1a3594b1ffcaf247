"""Soak: many new sessions against a served app; RSS and temp folders must stay flat.

    python tests/soak/soak.py --calls 500 --clients 4

Serves `python app.py` (shipped weights) on 127.0.0.1 with a short state lifetime, then N client
threads each make calls in turn, every call from a new gradio_client session: /compare of two
models, or /attention followed by /attention_downloads. Prints the server's RSS and the size of the
temp folders it writes (gradio's upload/cache folder, the per-session folders) after warm-up, at
the middle and at the end, then again once the sessions have expired. Not a test: it measures.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from app_server import free_port, wait_for_server  # noqa: E402


def folder_mb(path: Path) -> float:
    total = 0
    for p in path.rglob("*") if path.is_dir() else []:
        try:
            total += p.stat().st_size if p.is_file() else 0
        except OSError:
            pass
    return total / 2**20


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def main(argv=None) -> int:
    import subprocess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--ttl", type=int, default=60, help="state lifetime (s) the app is served with")
    args = ap.parse_args(argv)

    temp = Path(tempfile.mkdtemp(prefix="soak-"))
    env = {**os.environ, "ATTENTION_LENS_STATE_TTL": str(args.ttl), "GRADIO_TEMP_DIR": str(temp / "gradio"),
           "TMPDIR": str(temp)}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(proc, url)
        return soak(url, proc.pid, temp, args)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def soak(url: str, pid: int, temp: Path, args) -> int:
    from gradio_client import Client, handle_file

    examples = sorted((ROOT / "assets" / "examples").glob("*.jpg"))
    counter = itertools.count()
    lock = threading.Lock()
    failures, done = [], [0]

    def one_call(i: int) -> None:
        client = Client(url, verbose=False)  # a new session every call
        image = handle_file(str(examples[i % len(examples)]))
        if i % 2:
            client.predict(image, ["yolov8n-baseline-s0", "yolov8n-ema-neck-s0"], [], 0.25, 0.7, 320, None,
                           api_name="/compare")
        else:
            client.predict(image, ["yolov8n-ema-neck-s0", "yolov8n-cbam-neck-s0"], "jet", 0.5, 0.25, 320,
                           api_name="/attention")
            client.predict("jet", 0.5, api_name="/attention_downloads")

    def worker(limit: int) -> None:
        while True:
            with lock:
                i = next(counter)
            if i >= limit:
                return
            try:
                one_call(i)
            except Exception as e:  # noqa: BLE001  (counted and reported)
                failures.append(f"{type(e).__name__}: {str(e)[:120]}")
            with lock:
                done[0] += 1

    def phase(limit: int) -> None:
        threads = [threading.Thread(target=worker, args=(limit,)) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def report(label: str) -> dict:
        row = {"label": label, "calls": done[0],
               "rss_mb": rss_mb(pid), "gradio_mb": folder_mb(temp / "gradio"),
               "sessions_mb": folder_mb(temp / f"attention-lens-server-{pid}" / "sessions")}
        print(f"{label:>18}: calls {row['calls']:>4}  RSS {row['rss_mb']:7.1f} MB  gradio temp "
              f"{row['gradio_mb']:6.1f} MB  session folders {row['sessions_mb']:5.1f} MB", flush=True)
        return row

    warm = max(20, args.calls // 10)
    t0 = time.monotonic()
    phase(warm)
    start = report("after warm-up")
    phase(warm + (args.calls - warm) // 2)
    report("middle")
    phase(args.calls)
    end = report("end")
    elapsed = time.monotonic() - t0
    time.sleep(args.ttl + 5)  # waiting out the state lifetime is what is measured here
    Client(url, verbose=False).predict(handle_file(str(examples[0])), ["yolov8n-ema-neck-s0"], "jet", 0.5, 0.25,
                                       320, api_name="/attention")  # one call: sweeps expired folders
    after = report("after expiry")
    print(f"{args.calls} calls in {elapsed:.0f} s by {args.clients} clients; {len(failures)} failed"
          + (f" (first: {failures[0]})" if failures else ""))
    growth = (end["rss_mb"] - start["rss_mb"]) / start["rss_mb"]
    print(f"RSS growth after warm-up: {growth:+.1%}; after expiry vs warm-up: "
          f"{(after['rss_mb'] - start['rss_mb']) / start['rss_mb']:+.1%}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
