"""Attention Lens: `python app.py` serves the dashboard (see --help)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import attention_lens  # noqa: F401  (offline settings before ultralytics loads)
from attention_lens.env import keep_freed_buffers, sweep_dead_runs

ROOT = Path(__file__).resolve().parent
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
EXAMPLES_ENV = "ATTENTION_LENS_EXAMPLES"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Serve the Attention Lens dashboard.")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="interface to bind (default 127.0.0.1; 0.0.0.0 on a Space)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), help="port (7860)")
    p.add_argument("--weights", default=str(ROOT / "weights"), help="folder with manifest.json and checkpoints")
    p.add_argument("--examples", default=os.environ.get(EXAMPLES_ENV, str(ROOT / "assets" / "examples")),
                   help=f"folder of example images (or ${EXAMPLES_ENV})")
    p.add_argument("--runs", help="extra runs directory for the Metrics tab")
    p.add_argument("--data", help="labelled data set for the Evaluate tab: a data.yaml, a folder holding one "
                                  "(or a Pascal VOC tree), or a zip")
    p.add_argument("--max-examples", type=int, default=8)
    p.add_argument("--share", action="store_true", help="create a public gradio.live link (off by default)")
    p.add_argument("--device", help="where the models run: auto (the first GPU torch sees, else the CPU), cpu, "
                                    "cuda or cuda:N (default: $ATTENTION_LENS_DEVICE, else auto)")
    return p.parse_args(argv)


def list_examples(folder: str | None, limit: int = 8) -> list[str]:
    if not folder or not Path(folder).is_dir():
        return []
    return [str(p) for p in sorted(Path(folder).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES][:limit]


def create_app(weights: str, examples: list[str], runs: str | None = None, data: str | None = None):
    from attention_lens.runtime.onnx_backend import CACHE_ENV as ONNX_CACHE_ENV
    from attention_lens.runtime.onnx_backend import REGISTRY, cache_dir
    from attention_lens.app import build_app
    from attention_lens.jobs.lane import Lane
    from attention_lens.modeling.catalog import ModelStore, read_manifest
    from attention_lens.torch_thread import on_activity, run_on_torch_thread

    store = ModelStore(read_manifest(weights))
    # The default selection loads (and warms up) now, where every later forward runs; the rest of
    # the zoo loads on first use, so start-up time and memory do not grow with the zoo.
    default = store.default_selection()
    run_on_torch_thread(store.load, default)
    # Their ONNX Runtime exports follow in the background (from the disk cache after the first
    # start); until one is ready its model answers through PyTorch.
    REGISTRY.prepare([store.get(n) for n in default])
    sources = [weights] + ([runs] if runs else [])
    stored = Path(weights) / "evaluation"
    # Evaluations run in child processes, one at a time; they read the graphs this process exports.
    lane = Lane(env={ONNX_CACHE_ENV: str(cache_dir())})
    on_activity(lane.pause, lane.resume)  # jobs pause while an interactive view computes
    demo = build_app(store, examples, sources, data, str(stored) if stored.is_dir() else None, lane, weights)
    return demo, store


def main(argv=None) -> int:
    args = parse_args(argv)
    from attention_lens.device import DEVICE_ENV, DeviceError, device_label, set_device

    try:
        device = set_device(args.device)
    except DeviceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.environ[DEVICE_ENV] = str(device)  # the evaluation lane's child processes place their models alike
    print(f"models run on {device_label(device)}", file=sys.stderr)
    keep_freed_buffers()
    sweep_dead_runs()  # what a killed server left in the temp folder (unpacked zips, session files)
    demo, _ = create_app(args.weights, list_examples(args.examples, args.max_examples), args.runs, args.data)
    demo.queue(default_concurrency_limit=2, max_size=32)
    from attention_lens.app.widgets import CSS, PAGE_JS, STATE_SESSIONS
    from attention_lens.modeling.checkpoints import LIMITS

    # Largest upload gradio accepts: the checkpoint loader's own file cap.
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=False,
                max_file_size=LIMITS["max_file_bytes"], state_session_capacity=STATE_SESSIONS, css=CSS,
                js=PAGE_JS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
