"""Stored detections: written, read back, and grown model by model without a second pass."""
from __future__ import annotations

import numpy as np
import pytest

from attention_lens.cache import BoundedCache

from attention_lens.analysis.dataset_report import load_detections, merged_detections, save_detections
from attention_lens.experiments.datasets import Split


def split(fingerprint="f00d"):
    boxes = [np.array([[0, 10, 10, 50, 50]], float), np.zeros((0, 5))]
    return Split("toy", "test", ["cell"], ["a.jpg", "b.jpg"], [(100, 100), (80, 120)], boxes, fingerprint)


def dets(x):
    return [np.array([[x, 10, 50, 50, 0.9, 0]], float), np.zeros((0, 6))]


def test_merging_adds_new_models_replaces_rerun_ones_and_keeps_the_rest(tmp_path):
    path = tmp_path / "stored.json.gz"
    save_detections(path, split(), 320, {"old": dets(10), "rerun": dets(11)},
                    {"old": [{"L1": {"kind": "k", "stride": 8, "groups": {"all": [1.5, True]}}}, None]})
    merged, scores = merged_detections(path, split(), 320, {"rerun": dets(12), "new": dets(13)}, {"new": None})
    save_detections(path, split(), 320, merged, scores)
    _, size, got, got_scores = load_detections(path)
    assert size == 320 and sorted(got) == ["new", "old", "rerun"]
    assert got["old"][0][0, 0] == 10 and got["rerun"][0][0, 0] == 12 and got["new"][0][0, 0] == 13
    assert got_scores["old"][0]["L1"]["groups"]["all"] == [1.5, True]


@pytest.mark.parametrize("other", [dict(fingerprint="beef"), dict(imgsz=640)])
def test_another_data_set_or_image_size_is_not_merged(tmp_path, other):
    path = tmp_path / "stored.json.gz"
    save_detections(path, split(), 320, {"old": dets(10)})
    with pytest.raises(ValueError, match="not merged"):
        merged_detections(path, split(other.get("fingerprint", "f00d")), other.get("imgsz", 320), {"new": dets(1)}, {})


def test_another_reference_or_confidence_reuses_each_models_bootstrap_series(monkeypatch):
    """The zoo's stored BCCD detections, three models: a second evaluation with another
    reference and confidence matches only at the new confidence (3 calls, not 6); its intervals
    equal those of an evaluation that computes everything afresh."""
    from pathlib import Path

    from attention_lens.analysis import dataset_report
    from attention_lens.analysis.dataset_report import evaluate_detections
    from attention_lens.analysis.evaluation import coco_matches

    stored = Path(__file__).resolve().parents[2] / "weights" / "evaluation" / "bccd-test.json.gz"
    if not stored.is_file():
        pytest.skip("the zoo's stored detections are not here")
    split_, _, all_dets, _ = load_detections(stored)
    three = {n: all_dets[n] for n in ("yolov8n-baseline-s0", "yolov8n-ema-neck-s0", "yolov8n-cbam-neck-s0")}
    calls = []
    monkeypatch.setattr(dataset_report, "coco_matches", lambda *a, **k: calls.append(a[2:]) or coco_matches(*a, **k))
    monkeypatch.setattr(dataset_report, "_SERIES", BoundedCache(128))
    evaluate_detections(split_, three, "yolov8n-baseline-s0", confidence=0.25, rounds=100)
    assert len(calls) == 6  # each model: at the confidence, and every detection for the bootstrap
    calls.clear()
    again = evaluate_detections(split_, three, "yolov8n-ema-neck-s0", confidence=0.4, rounds=100)
    assert calls == [(0.4,)] * 3
    monkeypatch.setattr(dataset_report, "_SERIES", BoundedCache(128))
    fresh = evaluate_detections(split_, three, "yolov8n-ema-neck-s0", confidence=0.4, rounds=100)
    assert again["against reference"] == fresh["against reference"] and again["models"] == fresh["models"]
