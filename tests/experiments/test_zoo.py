"""The shipped zoo: every checkpoint loads safely and reproduces its stored test metrics."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from attention_lens.experiments.evaluate import validate
from attention_lens.modeling.catalog import read_manifest
from attention_lens.modeling.load import load_model

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
ENTRIES = read_manifest(WEIGHTS)


def test_manifest_lists_a_baseline_and_every_file_exists():
    assert ENTRIES, "weights/manifest.json lists no models"
    assert any(e.attention is None for e in ENTRIES)
    for e in ENTRIES:
        assert e.checkpoint.is_file() and (e.run / "summary.json").is_file() and (e.run / "results.csv").is_file()
        assert e.checkpoint.stat().st_size < 10 * 1024 * 1024  # no Git LFS needed on Spaces


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_checkpoint_loads_safely_and_reproduces_its_test_metrics(entry, bccd_yolo):
    summary = json.loads((entry.run / "summary.json").read_text())
    model = load_model(entry.checkpoint)
    got = validate(model, bccd_yolo, "test", summary["imgsz"])
    assert got["mAP50-95"] == pytest.approx(summary["metrics"]["test"]["mAP50-95"], abs=0.005)
    assert summary["dataset"]["fingerprint"] and summary["seed"] == entry.seed
    if entry.attention is None:  # the bar a shipped baseline must clear, on the numbers measured now
        assert got["mAP50"] >= 0.75
