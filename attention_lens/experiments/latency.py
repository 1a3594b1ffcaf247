"""CPU latency at batch 1: forwards timed after warm-up, alternately when there are several."""
from __future__ import annotations

import copy
import statistics
import time

import torch


def time_alternately(fns: list, runs: int, warmup: int = 3, settle: int = 0) -> list[list[float]]:
    """Milliseconds of each call per repetition, the callables timed in turn within each
    repetition so that drift on a shared machine hits them all alike.

    ``settle`` untimed calls precede each timed one, so that a model's weights are back in cache
    after the others ran (steady-state latency rather than the cost of switching models)."""
    times = [[] for _ in fns]
    with torch.inference_mode():
        for i in range(warmup + runs):
            for k, fn in enumerate(fns):
                for _ in range(settle):
                    fn()
                t0 = time.perf_counter()
                fn()
                if i >= warmup:
                    times[k].append((time.perf_counter() - t0) * 1000)
    return times


def latency_stats(times: list[float], imgsz: int, warmup: int) -> dict:
    """The summary's latency record: median, IQR, min, max in ms."""
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"imgsz": imgsz, "median_ms": round(statistics.median(times), 3), "iqr_ms": round(q[2] - q[0], 3),
            "min_ms": round(min(times), 3), "max_ms": round(max(times), 3), "runs": len(times), "warmup": warmup,
            "threads": torch.get_num_threads()}


def measure_latency(model: torch.nn.Module, imgsz: int, runs: int = 30, warmup: int = 5, fuse: bool = True) -> dict:
    """Milliseconds per forward of a (fused, eval) copy on CPU: median, IQR, min, max."""
    m = copy.deepcopy(model).float().eval()
    if fuse and hasattr(m, "fuse"):
        m = m.fuse(verbose=False)
    x = torch.zeros(1, 3, imgsz, imgsz)
    (times,) = time_alternately([lambda: m(x)], runs, warmup)
    return latency_stats(times, imgsz, warmup)


#: A timing whose interquartile range exceeds this share of its median was taken beside other
#: work: it is not the model's latency. Between the zoo's timings on a shared 2-core machine
#: (spread up to half the median) and one taken while the machine trained (more than the median);
#: figures in docs/PERFORMANCE.md, section 12.
UNSTEADY_IQR = 0.75


def is_steady(record: dict) -> bool:
    """Whether a latency record (``latency_stats``) reads as the model's own: IQR within
    UNSTEADY_IQR of the median. A record that says nothing of its spread counts as steady."""
    try:
        median, iqr = float(record["median_ms"]), float(record.get("iqr_ms", 0.0))
    except (KeyError, TypeError, ValueError):
        return False
    return median > 0 and iqr <= UNSTEADY_IQR * median


def steady_latency(model: torch.nn.Module, imgsz: int, runs: int = 30, tries: int = 3) -> dict:
    """``measure_latency``, measured again (up to ``tries`` times) while the spread says the
    machine was busy; the last record says ``"steady": False`` when no try was steady."""
    for _ in range(max(tries, 1)):
        record = measure_latency(model, imgsz, runs)
        if is_steady(record):
            return {**record, "steady": True}
    return {**record, "steady": False}
