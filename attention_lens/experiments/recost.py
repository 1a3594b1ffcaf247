"""``python -m attention_lens recost RUN_DIR...``: re-measure the cost fields of stored run summaries.

A summary's params and GFLOPs follow from its checkpoint and this project's code; its latency from
the machine it was timed on and whatever else ran there at the time. After a module's formulation
changes, or to compare runs timed on different machines (or while other training shared the
cores), this re-measures all three for every run given, in one process, timing the models
alternately so that drift hits them all alike. Metrics and everything else are left as they were.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import torch

from attention_lens.experiments.evaluate import versions
from attention_lens.experiments.latency import latency_stats, time_alternately
from attention_lens.experiments.runs import SUMMARY_NAME


def checkpoint_of(run_dir: Path, summary: dict) -> Path:
    """A shipped run keeps best.pt beside its summary; a training run under weights/."""
    for candidate in (run_dir / "best.pt", run_dir / "weights" / "best.pt", run_dir / str(summary.get("checkpoint"))):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{run_dir}: no checkpoint (looked for best.pt and weights/best.pt)")


def read_summary(run_dir: Path) -> dict:
    path = run_dir / SUMMARY_NAME
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{run_dir}: no {SUMMARY_NAME}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("imgsz"), int):
        raise ValueError(f"{path}: not a run summary (no integer imgsz)")
    return summary


def alternated_latency(models: list[torch.nn.Module], imgsz: int, runs: int, warmup: int,
                       device: torch.device | None = None) -> list[dict]:
    """Per model: its latency record, the models timed in turn within each repetition (on a GPU,
    each forward waits for the device to finish: the time is the forward's, not its launch's)."""
    device = device or torch.device("cpu")
    x = torch.zeros(1, 3, imgsz, imgsz, device=device)

    def timed(m):
        if device.type == "cuda":
            return lambda: (m(x), torch.cuda.synchronize(device))
        return lambda: m(x)

    times = time_alternately([timed(m) for m in models], runs, warmup, settle=1)
    return [latency_stats(t, imgsz, warmup) | {"alternated_with": len(models) - 1} for t in times]


def recost(run_dirs: list[str | Path], runs: int = 30, warmup: int = 5, device: str | None = "cpu") -> list[Path]:
    """Re-measure params, GFLOPs (both counters) and latency of each run; rewrite its summary.
    ``device`` (``attention_lens.device``): the CPU's latency goes to ``latency_cpu`` (what the
    dashboard's charts read), a GPU's to ``latency_gpu`` with the GPU named.

    Every run is read and loaded before any summary is written, so one bad run changes nothing.
    """
    from attention_lens.device import device_label, resolve_device
    from attention_lens.experiments.flops import gflops
    from attention_lens.modeling.catalog import prepare
    from attention_lens.modeling.load import load_model

    where = resolve_device(device)
    dirs = [Path(d) for d in run_dirs]
    summaries = [read_summary(d) for d in dirs]
    models = [load_model(checkpoint_of(d, s)) for d, s in zip(dirs, summaries)]
    fused = [prepare(copy.deepcopy(m), device=where) for m in models]  # prepare fuses in place; counts are of the unfused
    latency: dict[int, list[dict]] = {}
    for size in sorted({s["imgsz"] for s in summaries} | {640}):
        latency[size] = alternated_latency(fused, size, runs, warmup, where)
    stamp = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": versions(),
             "runs": [d.name for d in dirs]}
    written = []
    for k, (d, s, m) in enumerate(zip(dirs, summaries, models)):
        s["params"] = int(sum(p.numel() for p in m.parameters()))
        s.setdefault("gflops", {})
        s["gflops"]["at_imgsz"], s["gflops"]["at_640"] = gflops(m, s["imgsz"]), gflops(m, 640)
        timed = {"at_imgsz": latency[s["imgsz"]][k], "at_640": latency[640][k]}
        if where.type == "cpu":
            s["latency_cpu"] = timed
        else:
            s["latency_gpu"] = {"device": device_label(where), **timed}
        s["cost_remeasured"] = stamp
        path = d / SUMMARY_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(s, indent=2, default=str))
        tmp.replace(path)  # atomic: a reader never sees half a summary
        written.append(path)
        print(f"{d.name}: {s['gflops']['at_imgsz']['torch']:.4f} GFLOPs, "
              f"{timed['at_imgsz']['median_ms']:.1f} ms at {s['imgsz']} on {device_label(where)}")
    return written


def add_cli(sub) -> None:
    p = sub.add_parser("recost", help="re-measure params, GFLOPs and latency of stored runs, side by side")
    p.add_argument("run_dirs", nargs="+", help="run folders holding summary.json (and best.pt or weights/best.pt)")
    p.add_argument("--runs", type=int, default=30, help="timed forwards per model and size")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="cpu", help="cpu (default: the latency the charts show), auto, cuda or "
                                                   "cuda:N (stored apart, as latency_gpu)")
    p.set_defaults(run=lambda a: not recost(a.run_dirs, a.runs, a.warmup, a.device))
