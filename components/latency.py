"""CPU latency of a model's forward pass at batch 1: median and spread after warm-up."""
from __future__ import annotations

import copy
import statistics
import time

import torch


def measure_latency(model: torch.nn.Module, imgsz: int, runs: int = 30, warmup: int = 5, fuse: bool = True) -> dict:
    """Milliseconds per forward of a (fused, eval) copy on CPU: median, IQR, min, max."""
    m = copy.deepcopy(model).float().eval()
    if fuse and hasattr(m, "fuse"):
        m = m.fuse(verbose=False)
    x = torch.zeros(1, 3, imgsz, imgsz)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            m(x)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"imgsz": imgsz, "median_ms": round(statistics.median(times), 3), "iqr_ms": round(q[2] - q[0], 3),
            "min_ms": round(min(times), 3), "max_ms": round(max(times), 3), "runs": runs, "warmup": warmup,
            "threads": torch.get_num_threads()}
