"""One evaluation against a reference: its cached series and what it reports."""
from __future__ import annotations

import pytest

from attention_lens.cache import BoundedCache

from attention_lens.evaluation.stored import load_detections


def test_another_reference_or_confidence_reuses_each_models_bootstrap_series(monkeypatch):
    """The zoo's stored BCCD detections, three models: a second evaluation with another
    reference and confidence matches only at the new confidence (3 calls, not 6); its intervals
    equal those of an evaluation that computes everything afresh."""
    from pathlib import Path

    from attention_lens.evaluation import report
    from attention_lens.evaluation.report import evaluate_detections
    from attention_lens.evaluation.coco import coco_matches

    stored = Path(__file__).resolve().parents[2] / "weights" / "evaluation" / "bccd-test.json.gz"
    if not stored.is_file():
        pytest.skip("the zoo's stored detections are not here")
    split_, _, all_dets, _ = load_detections(stored)
    three = {n: all_dets[n] for n in ("yolov8n-baseline-s0", "yolov8n-ema-neck-s0", "yolov8n-cbam-neck-s0")}
    calls = []
    monkeypatch.setattr(report, "coco_matches", lambda *a, **k: calls.append(a[2:]) or coco_matches(*a, **k))
    monkeypatch.setattr(report, "_SERIES", BoundedCache(128))
    evaluate_detections(split_, three, "yolov8n-baseline-s0", confidence=0.25, rounds=100)
    assert len(calls) == 6  # each model: at the confidence, and every detection for the bootstrap
    calls.clear()
    again = evaluate_detections(split_, three, "yolov8n-ema-neck-s0", confidence=0.4, rounds=100)
    assert calls == [(0.4,)] * 3
    monkeypatch.setattr(report, "_SERIES", BoundedCache(128))
    fresh = evaluate_detections(split_, three, "yolov8n-ema-neck-s0", confidence=0.4, rounds=100)
    assert again["against reference"] == fresh["against reference"] and again["models"] == fresh["models"]


def test_each_models_detections_are_hashed_once_per_evaluation(monkeypatch):
    """Every per-model cache of an evaluation is keyed by one hash of the model's detections."""
    from pathlib import Path

    from attention_lens.evaluation import report
    from attention_lens.evaluation.report import evaluate_detections

    stored = Path(__file__).resolve().parents[2] / "weights" / "evaluation" / "bccd-test.json.gz"
    if not stored.is_file():
        pytest.skip("the zoo's stored detections are not here")
    split_, _, all_dets, _ = load_detections(stored)
    three = {n: all_dets[n] for n in ("yolov8n-baseline-s0", "yolov8n-ema-neck-s0", "yolov8n-cbam-neck-s0")}
    hashed, real = [], report.detections_digest
    monkeypatch.setattr(report, "detections_digest", lambda d: hashed.append(1) or real(d))
    evaluate_detections(split_, three, "yolov8n-baseline-s0", confidence=0.25, rounds=50)
    assert len(hashed) == 3
