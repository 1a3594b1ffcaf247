"""The Metrics tab's table: stored runs grouped by variant, seeds aggregated, compared honestly.

Every number comes from a run's summary.json (written by train/evaluate). A variant with
several seeds shows mean ± std; the difference to the baseline is flagged against the
baseline's own seed-to-seed noise.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from components.experiments.runs import Run, find_runs

METRICS = ("P", "R", "mAP50", "mAP50-95")
NOISE_SIGMAS = 2.0

#: Other people's results on other data, each row with its source. Never mixed into measured rows.
PUBLISHED = [
    {"source": "EMA authors' README (arXiv 2305.13563)", "setting": "YOLOv5s, COCO val", "metric": "mAP50-95",
     "baseline": 37.2, "rows": {"CBAM": 37.7, "ECA": 37.6, "CoordAtt": 38.1, "EMA": 38.4}},
    {"source": "EMA authors' README (arXiv 2305.13563)", "setting": "YOLOv5s, COCO val", "metric": "mAP50",
     "baseline": 56.0, "rows": {"EMA": 57.8}},
    {"source": "Coordinate Attention README (CVPR 2021)", "setting": "MobileNetV2, ImageNet", "metric": "top-1",
     "baseline": 72.3, "rows": {"SE": 73.5, "CBAM": 73.6, "CoordAtt": 74.3}},
    {"source": "Coordinate Attention README (CVPR 2021)", "setting": "SSDLite320, COCO", "metric": "AP",
     "baseline": 22.3, "rows": {"CoordAtt": 24.5}},
]


def published_table() -> pd.DataFrame:
    rows = []
    for p in PUBLISHED:
        for attention, value in p["rows"].items():
            rows.append({"attention": attention, "metric": p["metric"], "baseline": p["baseline"], "with attention": value,
                         "reported gain": round(value - p["baseline"], 2), "setting": p["setting"],
                         "source": p["source"]})
    return pd.DataFrame(rows)


def collect_runs(sources: list[str | Path]) -> tuple[list[Run], list[tuple[str, str]]]:
    """Usable runs from every source folder, and (run name, reason) for each one skipped.

    Names are relative to their source folder (no server paths). A run whose summary reads but
    cannot be tabulated is skipped too, with the reason: one bad run never hides the others."""
    usable, skipped, seen = [], [], set()
    for src in sources:
        for run in find_runs(src):
            key = run.path.resolve()
            if key in seen:
                continue
            seen.add(key)
            label = run_label(run, src)
            if not run.usable:
                skipped.append((label, "; ".join(run.problems) or "no metrics in summary.json"))
                continue
            try:
                metrics_table([run])
            except Exception as e:  # noqa: BLE001  (values of unexpected types deep in a summary)
                skipped.append((label, f"summary.json has values of unexpected types ({type(e).__name__})"))
                continue
            usable.append(run)
    return usable, skipped


def run_label(run: Run, source: str | Path) -> str:
    try:
        return str(run.path.relative_to(source)) or run.name
    except ValueError:
        return run.name


def variant_key(run: Run) -> tuple:
    v = run.summary.get("variant") or {}
    return (v.get("base") or "?", v.get("attention"), v.get("placement") if v.get("attention") else None)


def variant_name(key: tuple) -> str:
    base, attention, placement = key
    return f"{base} baseline" if not attention else f"{base} + {attention} @ {placement}"


def _metric(run: Run, split: str, name: str) -> float:
    try:
        return float(run.summary["metrics"][split][name])
    except (KeyError, TypeError, ValueError):
        return math.nan


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.array([v for v in values if not math.isnan(v)], dtype=float)
    if not len(a):
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else math.nan


def metrics_table(runs: list[Run], per_run: bool = False) -> pd.DataFrame:
    """One row per variant (seeds aggregated) or per run, with Δ vs the baseline and a noise flag."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        key = variant_key(run) + ((run.path.name,) if per_run else ())
        groups.setdefault(key, []).append(run)
    base_runs = [r for r in runs if variant_key(r)[1] is None]
    base_mean, base_std = _mean_std([_metric(r, "test", "mAP50-95") for r in base_runs])
    rows = []
    for key, members in groups.items():
        base, attention, placement = key[:3]
        row = {"model": variant_name(key[:3]) if not per_run else key[3], "base": base,
               "attention": attention or "none", "placement": placement or "", "seeds": len(members),
               "params": _mean_std([float(r.summary.get("params", math.nan)) for r in members])[0]}
        for counter in ("thop", "torch"):
            row[f"GFLOPs ({counter})"] = _mean_std([_gflops(r, counter) for r in members])[0]
        row["CPU ms (imgsz)"] = _mean_std([_latency(r) for r in members])[0]
        for split in ("val", "test"):
            for m in METRICS:
                mean, std = _mean_std([_metric(r, split, m) for r in members])
                row[f"{split} {m}"] = mean
                row[f"{split} {m} std"] = std
        mean = row["test mAP50-95"]
        row["Δ test mAP50-95"] = mean - base_mean if attention else 0.0
        row["flag"] = noise_flag(row["Δ test mAP50-95"], base_std, len(base_runs), len(members), bool(attention))
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.sort_values(["attention", "placement"], key=lambda s: s.map(lambda v: (v != "none", v))) \
        .reset_index(drop=True) if len(df) else df


def noise_flag(delta: float, base_std: float, n_base: int, n_variant: int, is_variant: bool) -> str:
    if not is_variant:
        return f"baseline ({n_base} seed{'s' if n_base != 1 else ''})"
    if n_base < 2 or math.isnan(base_std):
        return "single run: noise unknown"
    if abs(delta) < NOISE_SIGMAS * base_std:
        return "within noise"
    return "beyond noise" + (" (single run)" if n_variant < 2 else "")


def _gflops(run: Run, counter: str) -> float:
    try:
        return float(run.summary["gflops"]["at_imgsz"][counter])
    except (KeyError, TypeError, ValueError):
        return math.nan


def _latency(run: Run) -> float:
    try:
        return float(run.summary["latency_cpu"]["at_imgsz"]["median_ms"])
    except (KeyError, TypeError, ValueError):
        return math.nan


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    """The table as shown: mean ± std strings where there are seeds, rounded numbers."""
    if df.empty:
        return df
    out = pd.DataFrame({c: df[c] for c in ("model", "attention", "placement", "seeds")})
    out["params (M)"] = (df["params"] / 1e6).round(3)
    for c in ("GFLOPs (thop)", "GFLOPs (torch)", "CPU ms (imgsz)"):
        out[c] = df[c].round(3)
    for split in ("val", "test"):
        for m in METRICS:
            mean, std = df[f"{split} {m}"], df[f"{split} {m} std"]
            out[f"{split} {m}"] = [f"{a:.3f}" + (f" ± {s:.3f}" if not math.isnan(s) else "") for a, s in zip(mean, std)]
    out["Δ test mAP50-95"] = df["Δ test mAP50-95"].map(lambda v: f"{v:+.3f}")
    out["flag"] = df["flag"]
    return out
