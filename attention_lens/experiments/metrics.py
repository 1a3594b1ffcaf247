"""The Metrics tab's table: stored runs grouped by variant, seeds aggregated, compared honestly.

Numbers come from a run's summary.json (written by train/evaluate); a plain ultralytics run
without one shows what it has (val metrics from results.csv, params and GFLOPs from its
best.pt) and is not compared. Runs are grouped by data set (the split fingerprint summaries
store), image size and epochs, and never pooled across them: a variant is compared only with
the baseline of the same base in the same group. A variant with several seeds shows mean ± std;
a seed given twice is counted once and flagged. Δ is flagged against the baseline's own
seed-to-seed noise (NOISE_SIGMAS standard deviations).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from attention_lens.experiments.latency import is_steady
from attention_lens.experiments.runs import Run, find_runs, plain_metrics
from attention_lens.modeling.variants import base_rank, display_base, placement_label

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


def collect_runs(sources: list[str | Path], uploaded: list[str | Path] = (),
                 yours: list[str | Path] = ()) -> tuple[list[Run], list[tuple[str, str]]]:
    """Usable runs from every source folder (and ``uploaded`` ones), and (run name, reason) for
    each one skipped.

    Names are relative to their source folder (no server paths). A run whose summary reads but
    cannot be tabulated is skipped too, with the reason: one bad run never hides the others.
    A plain ultralytics run (results.csv with validation metrics, no summary.json) is usable.
    The checkpoints of runs from ``uploaded`` folders are never built here (``Run.may_build``).
    Runs from ``uploaded`` and ``yours`` are the user's (``Run.yours``): listed first."""
    usable, skipped, seen = [], [], set()
    theirs = {str(u) for u in uploaded}
    yours = theirs | {str(y) for y in yours}
    for src in [*sources, *uploaded]:
        for run in find_runs(src):
            key = run.path.resolve()
            if key in seen:
                continue
            seen.add(key)
            run.may_build = str(src) not in theirs
            run.yours = str(src) in yours
            label = run_label(run, src)
            if not (run.usable or plain_metrics(run)):
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
    """(base, attention, placement); a run without a summary is its own variant, named by its model.
    Where the summary does not say the base (a plain ultralytics run evaluated by an earlier
    version), it is read from the model the run was trained from (args.yaml: ``yolo11n.yaml``)."""
    if not run.usable:
        return (base_from_args(run) or str(run.args.get("model") or run.name), "?", None)
    v = run.summary.get("variant") if isinstance(run.summary.get("variant"), dict) else {}
    return (v.get("base") or base_from_args(run) or "?", v.get("attention"), placement_label(v) if v else None)


#: An ultralytics model name: family, version, scale (yolov8n, yolo11s, yolov5nu, yolo26n).
_BASE_NAME = re.compile(r"^(yolov?\d+)([nslmx])(u?)(?:\.(?:ya?ml|pt))?$")


def base_from_args(run: Run) -> str | None:
    """The base named by the run's ``model`` argument when it is one of ultralytics' own model
    files (``yolo11n.yaml``, ``yolov8s.pt``), else None: text from the file, matched, never used
    as a path."""
    match = _BASE_NAME.match(Path(str(run.args.get("model") or "")).name)
    return f"{match[1]}{match[2]}{match[3]}" if match else None


def _shown_base(base: str | None, attention: str | None) -> str | None:
    """The base as the views name it; a run without a summary ("?") keeps what its folder said."""
    return display_base(base) if attention != "?" else base


def variant_name(key: tuple) -> str:
    base, attention, placement = key
    base = _shown_base(base, attention)
    if attention == "?":
        return f"{base} (no summary.json)"
    return f"{base} baseline" if not attention else f"{base} + {attention} @ {placement}"


def dataset_of(run: Run) -> tuple[str, str]:
    """(key, label) of the data set a run was measured on. Summaries store a fingerprint of the
    split files; a plain run has only the name of its data YAML, which never matches a fingerprint."""
    d = run.summary.get("dataset") if run.usable else None
    if isinstance(d, dict) and d.get("fingerprint"):
        fp = str(d["fingerprint"])[:16]
        return f"fp:{fp}", f"{str(d.get('name') or 'data')[:40]} · {fp[:8]}"
    data = str(run.args.get("data") or "?")
    return f"args:{data}", f"{Path(data).stem[:40] or '?'} (no fingerprint)"


def setting_of(run: Run) -> tuple:
    """(imgsz, epochs): runs trained or measured differently are not pooled or compared."""
    s = run.summary if run.usable else {}
    train = s.get("train") if isinstance(s.get("train"), dict) else {}
    imgsz = s.get("imgsz", run.args.get("imgsz"))
    epochs = train.get("epochs", run.args.get("epochs"))
    return (imgsz if isinstance(imgsz, (int, float)) else None, epochs if isinstance(epochs, (int, float)) else None)


def _seed(run: Run):
    s = run.summary.get("seed") if run.usable else run.args.get("seed")
    return s if isinstance(s, (int, float)) and not isinstance(s, bool) else None


def _metric(run: Run, split: str, name: str) -> float:
    if not run.usable:
        return plain_metrics(run).get(name, math.nan) if split == "val" else math.nan
    try:
        return float(run.summary["metrics"][split][name])
    except (KeyError, TypeError, ValueError):
        return math.nan


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.array([v for v in values if not math.isnan(v)], dtype=float)
    if not len(a):
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else math.nan


def _unique_seeds(members: list[Run]) -> tuple[list[Run], list[str]]:
    """The runs counted (the first of each seed, by folder name), and a note per repeated seed."""
    kept, notes, by_seed = [], [], {}
    for run in sorted(members, key=lambda r: str(r.path)):
        seed = _seed(run)
        if seed is not None and seed in by_seed:
            notes.append(f"seed {seed} given twice ({by_seed[seed].name}, {run.name}): counted once")
            continue
        if seed is not None:
            by_seed[seed] = run
        kept.append(run)
    return kept, notes


def metrics_table(runs: list[Run], per_run: bool = False) -> pd.DataFrame:
    """One row per variant (seeds aggregated) or per run, with Δ vs the baseline and a noise flag.

    Rows are grouped by (data set, image size, epochs, variant); each variant is compared with
    the baseline of its own base in its own group, never with another data set's."""
    groups: dict[tuple, list[Run]] = {}
    labels: dict[str, str] = {}
    for run in runs:
        ds_key, labels_ds = dataset_of(run)
        labels[ds_key] = labels_ds
        key = (ds_key, setting_of(run)) + variant_key(run)
        groups.setdefault(key, []).append(run)
    baselines = {}
    for key, members in groups.items():
        if key[3] is None:  # attention None: a baseline
            kept, _ = _unique_seeds(members)
            baselines[key[:3]] = kept
    rows = []
    for key, members in groups.items():
        ds_key, setting, base, attention, placement = key
        kept, dup_notes = _unique_seeds(members)
        base_runs = baselines.get(key[:3], [])
        base_mean, base_std = _mean_std([_metric(r, "test", "mAP50-95") for r in base_runs])
        for part in ([[r] for r in kept] if per_run else [kept]):
            row = {"model": part[0].name if per_run else variant_name(key[2:]), "data set": labels[ds_key],
                   "setting": _setting_label(setting), "base": _shown_base(base, attention),
                   "attention": attention or "none",
                   "placement": placement or "", "seeds": len(part), "yours": any(r.yours for r in part),
                   "params": _mean_std([_params(r) for r in part])[0]}
            for counter in ("thop", "torch"):
                row[f"GFLOPs ({counter})"] = _mean_std([_gflops(r, counter) for r in part])[0]
            row["CPU ms (imgsz)"] = _mean_std([_latency(r) for r in part])[0]
            for split in ("val", "test"):
                for m in METRICS:
                    mean, std = _mean_std([_metric(r, split, m) for r in part])
                    row[f"{split} {m}"] = mean
                    row[f"{split} {m} std"] = std
            row["baseline mean"], row["baseline std"] = base_mean, base_std
            row["baseline seeds"] = len(base_runs)
            # Against the mean of the baseline's seeds: a baseline seed's own row (per run) then shows
            # how far that seed lies from the mean, the seed noise itself (0 for the mean row).
            row["Δ test mAP50-95"] = (row["test mAP50-95"] - base_mean) if attention != "?" else math.nan
            row["flag"] = "; ".join([noise_flag(row["Δ test mAP50-95"], base_std, len(base_runs), len(part),
                                                attention)] + dup_notes + latency_notes(part) + method_notes(part))
            rows.append(row)
    df = pd.DataFrame(rows)
    if not len(df):
        return df
    # Grouped by base (in the pickers' order), then placement: the baseline first, each placement's
    # modules together.
    # The user's own runs first (with what they are compared against), then the rest.
    order = df["attention"].map(lambda v: (v == "?", v != "none"))
    theirs = df.groupby(["data set", "setting"])["yours"].transform("max")
    return df.assign(_o=order, _b=df["base"].map(base_rank), _y=~theirs, _r=~df["yours"]) \
        .sort_values(["_y", "data set", "setting", "_r", "_b", "_o", "placement", "attention", "model"]) \
        .drop(columns=["_o", "_b", "_y", "_r"]).reset_index(drop=True)


def _setting_label(setting: tuple) -> str:
    imgsz, epochs = setting
    return ", ".join(p for p in (f"{imgsz:g} px" if imgsz else "", f"{epochs:g} ep" if epochs else "") if p) or "?"


def noise_flag(delta: float, base_std: float, n_base: int, n_variant: int, attention: str | None) -> str:
    if attention is None:
        return f"baseline ({n_base} seed{'s' if n_base != 1 else ''})"
    if attention == "?":
        return ("no summary.json: val metrics from results.csv, not compared (`python -m attention_lens evaluate "
                "RUN/weights/best.pt --data DATA` writes one)")
    if n_base == 0:
        return "no baseline on this data set and setting"
    if n_base < 2 or math.isnan(base_std):
        return "single baseline run: noise unknown"
    if math.isnan(delta):
        return "no test mAP50-95"
    if abs(delta) < NOISE_SIGMAS * base_std:
        return "within noise"
    return "beyond noise" + (" (single run)" if n_variant < 2 else "")


def _params(run: Run) -> float:
    if not run.usable:
        return float(plain_metrics(run).get("params", math.nan))
    try:
        return float(run.summary.get("params", math.nan))
    except (TypeError, ValueError):
        return math.nan


def _gflops(run: Run, counter: str) -> float:
    if not run.usable:
        return float(plain_metrics(run).get(f"GFLOPs ({counter})", math.nan))
    try:
        return float(run.summary["gflops"]["at_imgsz"][counter])
    except (KeyError, TypeError, ValueError):
        return math.nan


def _latency(run: Run) -> float:
    """The run's CPU latency at its image size; NaN where the timing was unsteady (taken beside
    other work: ``latency.is_steady``), which is no measure of the model and is never charted."""
    try:
        record = run.summary["latency_cpu"]["at_imgsz"]
        return float(record["median_ms"]) if is_steady(record) else math.nan
    except (KeyError, TypeError, ValueError):
        return math.nan


def method_notes(runs: list[Run]) -> list[str]:
    """Summaries validated before ``validate`` matched ``yolo val`` (no "method" recorded): their
    numbers may be up to 0.01 off what ultralytics reports for the checkpoint."""
    old = [r.name for r in runs if r.usable and not all(isinstance(m, dict) and m.get("method") for m in
                                                         (r.summary.get("metrics") or {}).values())]
    return [f"{', '.join(old[:3])}: validated by an earlier version (square letterbox, up to 0.01 off "
            "`yolo val`); `evaluate` re-measures"] if old else []


def latency_notes(runs: list[Run]) -> list[str]:
    """Why a run's latency is left out: its timing's spread said the machine was busy."""
    notes = []
    for run in runs:
        record = (run.summary.get("latency_cpu") or {}).get("at_imgsz") if isinstance(run.summary, dict) else None
        if isinstance(record, dict) and "median_ms" in record and not is_steady(record):
            notes.append(f"latency of {run.name} left out: unsteady timing (median {float(record['median_ms']):.0f} "
                         f"ms, IQR {float(record.get('iqr_ms', 0)):.0f} ms: measured beside other work); "
                         "`recost` re-measures it")
    return notes


#: The verdict next to the name: what a reader looks for first.
LEAD_COLUMNS = ("model", "data set", "test mAP50-95", "Δ test mAP50-95", "flag", "noise band", "seeds")


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    """The table as shown: the verdict first, mean ± std strings where there are seeds, rounded numbers."""
    if df.empty:
        return df
    out = pd.DataFrame({c: df[c] for c in ("model", "data set", "seeds", "setting", "attention", "placement")})
    out["params (M)"] = (df["params"] / 1e6).round(3)
    for c in ("GFLOPs (thop)", "GFLOPs (torch)", "CPU ms (imgsz)"):
        out[c] = df[c].round(3)
    for split in ("val", "test"):
        for m in METRICS:
            mean, std = df[f"{split} {m}"], df[f"{split} {m} std"]
            out[f"{split} {m}"] = [("—" if math.isnan(a) else f"{a:.3f}") + (f" ± {s:.3f}" if not math.isnan(s) else "")
                                   for a, s in zip(mean, std)]
    out["Δ test mAP50-95"] = df["Δ test mAP50-95"].map(lambda v: "—" if math.isnan(v) else f"{v:+.3f}")
    out["flag"] = df["flag"]
    # The band each flag was judged against: |Δ| under NOISE_SIGMAS x the baseline's seed std.
    out["noise band"] = [("—" if math.isnan(sd) or attention in ("none", "?") else
                          f"±{NOISE_SIGMAS * sd:.3f} ({n} baseline seeds)")
                         for sd, attention, n in zip(df["baseline std"], df["attention"], df["baseline seeds"])]
    rest = [c for c in out.columns if c not in LEAD_COLUMNS]
    return out[list(LEAD_COLUMNS) + rest]
