"""Classic ultralytics/yolov5 v7.0 checkpoints, written by the real code (tests/fixtures/yolov5)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attention_lens.runtime.capture import capture_gates
from attention_lens.attention import EMA, SE, PolarizedSA
from attention_lens.modeling.load import load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "yolov5"
CASES = [("v5-baseline-best.pt", None, 0), ("v5-se-best.pt", SE, 1), ("v5-ema-best.pt", EMA, 3),
         ("v5-ema-last.pt", EMA, 3), ("v5-psa-best.pt", PolarizedSA, 2),
         ("v5-c3ema-best.pt", EMA, 3)]  # the tutorial's C3_EMA1/2/3: EMA inside C3 at its three positions


def expected(name: str) -> dict:
    return torch.load(FIXTURES / f"{name.rsplit('-', 1)[0]}.expected.pt", weights_only=True)


@pytest.mark.parametrize("name, attention, count", CASES)
def test_yolov5_checkpoint_loads_and_equals_the_original_forward(name, attention, count):
    model = load_model(FIXTURES / name)
    exp = expected(name)
    with torch.no_grad():
        got = model(exp["input"])[0]
    z = exp["output"]  # yolov5's own (1, n, 5 + nc): xywh, objectness, class probabilities
    want = torch.cat([z[..., :4], z[..., 5:] * z[..., 4:5]], -1).permute(0, 2, 1)  # as its NMS scores boxes
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-5)
    assert model.names == {0: "Platelets", 1: "RBC", 2: "WBC"}
    layers = [m for m in model.modules() if attention and isinstance(m, attention)]
    assert len(layers) == count
    assert all(m.loaded_as.startswith("models.common.") for m in layers)


@pytest.mark.parametrize("name", ["v5-ema-best.pt", "v5-se-best.pt", "v5-psa-best.pt", "v5-c3ema-best.pt"])
def test_yolov5_attention_maps_are_captured(name):
    model = load_model(FIXTURES / name)
    maps, inputs = {}, {}
    with torch.no_grad(), capture_gates(model, maps, inputs):
        model(expected(name)["input"])
    gated = {k.split(".")[1] for k in maps}
    assert gated == {str(m.i) for m in model.model if getattr(m, "loaded_as", "")}


def test_yolov5_detects_on_a_bccd_image_in_the_app(bccd_test_images):
    from attention_lens.app.compare_handlers import run_compare
    from attention_lens.modeling.catalog import ModelStore

    store = ModelStore([])
    uploads = [str(FIXTURES / "v5-baseline-best.pt"), str(FIXTURES / "v5-ema-best.pt")]
    _items, table, payload, _by_model, names = run_compare(store, str(bccd_test_images[0]), [], uploads, 0.001,
                                                           0.7, 320, None)
    assert names == ["v5-baseline (yolov5, no attention)", "v5-ema (yolov5, EMA)"]
    h, w = payload["image_size"]
    boxes = [d["box"] for d in payload["detections"] if d["confidence"] is not None]
    assert boxes and all(0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h for x1, y1, x2, y2 in boxes)
    assert {d["class"] for d in payload["detections"]} <= {"Platelets", "RBC", "WBC"}


def test_c3_ema_blocks_become_our_in_csp_placements():
    from attention_lens.modeling.integration import CSP_ATTENTION

    model = load_model(FIXTURES / "v5-c3ema-best.pt")
    rows = model.yaml["backbone"]
    assert [(rows[i][2], rows[i][3][4]) for i in (2, 4, 6)] == [(CSP_ATTENTION, "main"), (CSP_ATTENTION, "shortcut"),
                                                                (CSP_ATTENTION, "concat")]
    assert isinstance(model.model[2].cv1[1], EMA) and isinstance(model.model[4].cv2[0], EMA)
    assert isinstance(model.model[6].cv3[0], EMA)
