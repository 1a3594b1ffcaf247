"""Compare tab handlers' own tables."""
from __future__ import annotations

from attention_lens.app.compare_handlers import detections_table


def test_every_box_lists_the_reference_first_then_each_model_strongest_first():
    """Issue 35: the 'Every box' table listed the reference last."""
    payload = {"reference": "z-baseline", "detections": [
        {"model": "a-ema", "class": "RBC", "confidence": 0.5, "box": [0, 0, 1, 1]},
        {"model": "z-baseline", "class": "RBC", "confidence": 0.4, "box": [0, 0, 1, 1]},
        {"model": "a-ema", "class": "WBC", "confidence": 0.9, "box": [0, 0, 1, 1]},
        {"model": "z-baseline", "class": "RBC", "confidence": 0.8, "box": [0, 0, 1, 1]},
        {"model": "z-baseline", "class": "RBC", "confidence": None, "box": [0, 0, 1, 1]}]}
    df = detections_table(payload)
    assert list(zip(df["model"], df["confidence"].fillna(-1))) == [
        ("z-baseline", 0.8), ("z-baseline", 0.4), ("z-baseline", -1), ("a-ema", 0.9), ("a-ema", 0.5)]
    assert list(detections_table(None).columns) == ["model", "class", "confidence", "box (x1, y1, x2, y2)", "diff"]


def test_the_table_says_what_each_model_was_diffed_against_and_when_that_is_another_base():
    """Issue 35: mixed bases were diffed against yolov8n's baseline with no note."""
    from types import SimpleNamespace

    import pandas as pd

    from attention_lens.app.compare_handlers import _say_the_reference

    store = SimpleNamespace(entries={"v8-base": SimpleNamespace(base="yolov8n"), "v8-ema": SimpleNamespace(base="yolov8n"),
                                     "v5-ema": SimpleNamespace(base="yolov5n")})
    table = pd.DataFrame({"model": ["v8-base", "v8-ema", "v5-ema", "upload"]})
    _say_the_reference(store, dict.fromkeys(table["model"]), "v8-base", table)
    assert list(table.columns[:2]) == ["model", "diffed against"]
    assert list(table["diffed against"]) == ["(the reference)", "v8-base", "v8-base (other base: yolov8n)", "v8-base"]
