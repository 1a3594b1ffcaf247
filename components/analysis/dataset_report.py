"""Several models over one labelled split, against a reference: the numbers, and a report.

``evaluate_models`` runs (or reuses) each model's detections, asks pycocotools for the metrics
(evaluation.py), and returns one JSON-ready dict. Detections are cached per (model content,
split fingerprint, image size), so a second look at other thresholds or another reference costs
only the matching. ``html_report`` turns the dict into one self-contained HTML file.
"""
from __future__ import annotations

import hashlib
import html
import json
import threading
from collections import OrderedDict

import numpy as np

from components.analysis.evaluation import (
    CATEGORIES,
    bootstrap_series,
    coco_eval,
    compare_objects,
    disagreement,
    metrics_of,
    paired_bootstrap,
    predict_split,
    verdict,
)
from components.experiments.datasets import Split

_CACHE: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()
_CACHE_MAX = 32
_LOCK = threading.Lock()


def model_digest(model) -> str:
    """A hash of the model's weights: the same content gives the same key whatever its name."""
    cached = getattr(model, "_attention_lens_digest", None)
    if cached:
        return cached
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    digest = h.hexdigest()[:16]
    try:
        model._attention_lens_digest = digest
    except AttributeError:
        pass
    return digest


def detections_for(model, name: str, split: Split, imgsz: int, progress=None) -> list[np.ndarray]:
    key = (model_digest(model), split.fingerprint, split.split, imgsz)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    dets = predict_split(model, split, imgsz, name, progress)
    with _LOCK:
        _CACHE[key] = dets
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return dets


def evaluate_detections(split: Split, detections: dict[str, list[np.ndarray]], reference: str,
                        confidence: float = 0.25, rounds: int = 1000, seed_groups: dict[str, str] | None = None,
                        top_images: int = 20) -> dict:
    """Every number the Evaluate view shows, from stored or fresh detections (JSON-ready).

    ``seed_groups``: model name -> variant name; where the reference's variant has several
    models (seeds), their spread of each metric is the seed noise the verdict compares with."""
    if reference not in detections:
        raise ValueError(f"the reference {reference!r} is not among the evaluated models")
    full = {n: coco_eval(split, d) for n, d in detections.items()}
    cut = {n: coco_eval(split, d, confidence) for n, d in detections.items()}
    models = {n: metrics_of(full[n], split, cut[n]) for n in detections}
    seed_std = _seed_std(models, reference, seed_groups or {})
    against = {}
    ref_series = bootstrap_series(full[reference], rounds) if len(detections) > 1 else None
    for n in detections:
        if n == reference:
            continue
        a = compare_objects(split, cut[reference], cut[n])
        boot = paired_bootstrap(full[reference], full[n], n=rounds, ref_series=ref_series)
        for metric, b in boot.items():
            b["seed std"] = seed_std.get(metric)
            b["verdict"] = verdict(b["delta"], b["low"], b["high"], seed_std.get(metric))
        against[n] = {"objects": a.counts, "by class": _breakdown(a.objects, "class"),
                      "by size": _breakdown(a.objects, "size"),
                      "false positives": {"reference": int(a.fp_reference.sum()), "model": int(a.fp_model.sum())},
                      "bootstrap": boot, "images": disagreement(split, a)[:top_images]}
    return {"data set": {"name": split.name, "split": split.split, "fingerprint": split.fingerprint,
                         "images": len(split.images), "objects": int(sum(len(b) for b in split.boxes)),
                         "classes": split.classes},
            "reference": reference, "confidence": confidence, "bootstrap rounds": rounds,
            "models": models, "against reference": against}


def _breakdown(objects: list[dict], key: str) -> dict:
    out: dict[str, dict] = {}
    for o in objects:
        out.setdefault(o[key], {c: 0 for c in CATEGORIES})[o["category"]] += 1
    return dict(sorted(out.items()))


def _seed_std(models: dict, reference: str, groups: dict[str, str]) -> dict:
    variant = groups.get(reference)
    seeds = [n for n, g in groups.items() if variant and g == variant and n in models]
    if len(seeds) < 2:
        return {}
    return {m: float(np.std([models[n][m] for n in seeds], ddof=1)) for m in ("mAP50-95", "mAP50")}


def evaluate_models(models: dict, split: Split, reference: str, imgsz: int = 320, confidence: float = 0.25,
                    rounds: int = 1000, seed_groups: dict[str, str] | None = None, progress=None) -> dict:
    """Run (or reuse) each model's detections on the split, then ``evaluate_detections``.

    ``progress(done, total, what)`` is called after each image of each model."""
    detections, total = {}, len(models) * len(split.images)
    for k, (name, model) in enumerate(models.items()):
        def step(i, n, k=k, name=name):
            if progress:
                progress(k * n + i, total, name)
        detections[name] = detections_for(model, name, split, imgsz, step)
    out = evaluate_detections(split, detections, reference, confidence, rounds, seed_groups)
    out["image size"] = imgsz
    return out


# ----------------------------------------------------------------------------- stored detections
#: Largest stored-detections file read (gzip, then the JSON inside).
MAX_STORED_BYTES = 32 * 2**20


def save_detections(path, split: Split, imgsz: int, detections: dict[str, list[np.ndarray]]) -> None:
    """Numbers only (ground truth, image sizes, each model's detections) as gzipped JSON, so the
    data-set views work where the images are not (a Space)."""
    import gzip

    rows = {n: [np.round(d, 4).tolist() for d in per_image] for n, per_image in detections.items()}
    data = {"split": split.as_dict(), "image size": imgsz, "detections": rows}
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))


def load_detections(path) -> tuple[Split, int, dict[str, list[np.ndarray]]]:
    """(split without pixels, image size, name -> per-image detections); ValueError if malformed."""
    import gzip

    with gzip.open(path, "rb") as f:
        raw = f.read(MAX_STORED_BYTES + 1)
    if len(raw) > MAX_STORED_BYTES:
        raise ValueError("stored detections larger than 32 MB")
    try:
        data = json.loads(raw)
        split = Split.from_dict(data["split"])
        dets = {str(n): [np.asarray(d, dtype=np.float64).reshape(-1, 6) for d in per_image]
                for n, per_image in data["detections"].items()}
        imgsz = int(data["image size"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"stored detections unreadable ({type(e).__name__})") from None
    if any(len(d) != len(split.images) for d in dets.values()):
        raise ValueError("stored detections do not cover the split's images")
    return split, imgsz, dets


# ----------------------------------------------------------------------------- report
def metrics_frame(results: dict):
    import pandas as pd

    rows = []
    for name, m in results["models"].items():
        b = results["against reference"].get(name, {}).get("bootstrap", {}).get("mAP50-95", {})
        rows.append({"model": name, "mAP50-95": m["mAP50-95"], "Δ mAP50-95": b.get("delta", 0.0),
                     "95% interval": f"[{b['low']:+.3f}, {b['high']:+.3f}]" if b else "reference",
                     "verdict": b.get("verdict", "reference"), "mAP50": m["mAP50"], "P": m.get("P"),
                     "R": m.get("R"), "AP small": m["AP small"], "AP medium": m["AP medium"],
                     "AP large": m["AP large"]})
    return pd.DataFrame(rows)


def objects_figure(results: dict):
    """Stacked bars: each model's ground-truth objects as found by both / only one / neither."""
    import plotly.graph_objects as go

    names = list(results["against reference"])
    fig = go.Figure()
    for c in CATEGORIES:
        fig.add_trace(go.Bar(name=c, x=names, y=[results["against reference"][n]["objects"][c] for n in names]))
    fig.update_layout(barmode="stack", height=360, yaxis_title="ground-truth objects",
                      title=f"Found at confidence ≥ {results['confidence']:g}, IoU 0.5, vs {results['reference']}",
                      margin=dict(t=40, b=40, l=50, r=10), legend=dict(orientation="h"))
    return fig


def delta_figure(results: dict):
    """Δ mAP50-95 against the reference with its bootstrap interval, and the seed band if known."""
    import plotly.graph_objects as go

    names = list(results["against reference"])
    boot = [results["against reference"][n]["bootstrap"]["mAP50-95"] for n in names]
    fig = go.Figure(go.Scatter(
        x=[b["delta"] for b in boot], y=names, mode="markers", marker=dict(size=11),
        error_x=dict(type="data", symmetric=False, array=[b["high"] - b["delta"] for b in boot],
                     arrayminus=[b["delta"] - b["low"] for b in boot]),
        name="Δ mAP50-95, 95% bootstrap interval over images"))
    std = next((b["seed std"] for b in boot if b.get("seed std")), None)
    if std:
        fig.add_vrect(x0=-2 * std, x1=2 * std, fillcolor="grey", opacity=0.15, line_width=0,
                      annotation_text="reference ± 2σ over seeds", annotation_position="top left")
    fig.add_vline(x=0, line_dash="dot")
    fig.update_layout(height=120 + 40 * len(names), xaxis_title=f"Δ mAP50-95 vs {results['reference']}",
                      margin=dict(t=30, b=40, l=10, r=10), showlegend=False)
    return fig


def html_report(results: dict) -> str:
    """One self-contained HTML file (plotly.js inlined once) with the tables and charts."""
    ds = results["data set"]
    table = metrics_frame(results).to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="—")
    figs = [objects_figure(results), delta_figure(results)] if results["against reference"] else []
    charts = "".join(f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs))
    images = "".join(
        f"<h3>{html.escape(n)}: images where it and the reference disagree most</h3>"
        + _rows_html(a["images"][:10]) for n, a in results["against reference"].items())
    return (f"<!doctype html><meta charset='utf-8'><title>Attention Lens evaluation</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}"
            f"td,th{{border:1px solid #ccc;padding:4px 8px}}</style>"
            f"<h1>Evaluation on {html.escape(ds['name'])} / {html.escape(ds['split'])}</h1>"
            f"<p>{ds['images']} images, {ds['objects']} objects, classes {html.escape(', '.join(ds['classes']))}; "
            f"reference {html.escape(results['reference'])}; P, R and found objects at confidence "
            f"≥ {results['confidence']:g}; bootstrap {results['bootstrap rounds']} rounds over images.</p>"
            f"{table}{charts}{images}"
            f"<script type='application/json' id='results'>{html.escape(json.dumps(results))}</script>")


def _rows_html(rows: list[dict]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
