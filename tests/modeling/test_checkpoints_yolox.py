"""Megvii YOLOX checkpoints (state dicts), written by YOLOX 0.3.0's own model code (tests/fixtures/yolox)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attention_lens.runtime.capture import capture_gates
from attention_lens.attention import CBAM, ECA, SE, CoordAtt
from attention_lens.modeling.load import load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "yolox"
CASES = [("yolox-base", None), ("yolox-nano-cam", CoordAtt), ("yolox-se", SE), ("yolox-eca", ECA),
         ("yolox-cbam", CBAM)]


@pytest.mark.parametrize("name, attention", CASES)
def test_yolox_checkpoint_loads_and_equals_the_original_forward(name, attention):
    model = load_model(FIXTURES / f"{name}.pth")
    exp = torch.load(FIXTURES / f"{name}.expected.pt", weights_only=True)
    maps, inputs = {}, {}
    with torch.no_grad(), capture_gates(model, maps, inputs):
        got = model(exp["input"])
    z = exp["output"]  # YOLOX's own (1, n, 5 + nc): xywh, objectness, class probabilities
    want = torch.cat([z[..., :4], z[..., 5:] * z[..., 4:5]], -1).permute(0, 2, 1)  # as YOLOX scores a box
    assert torch.isfinite(want).all() and torch.allclose(got, want, atol=1e-4, rtol=1e-5)
    layers = [m for m in model.modules() if attention and isinstance(m, attention)]
    assert len(layers) == (3 if attention else 0)
    assert all(m.loaded_as.startswith("YOLOX tutorial") for m in layers)
    assert len(maps) == sum(len([g for g in m.modules() if type(g).__name__ == "Gate"]) for m in layers)


def test_yolox_models_work_in_the_compare_and_attention_views(bccd_test_images):
    from attention_lens.app.attention_handlers import run_attention
    from attention_lens.app.compare_handlers import run_compare
    from attention_lens.modeling.catalog import ModelStore

    store = ModelStore([])
    uploads = [str(FIXTURES / "yolox-base.pth"), str(FIXTURES / "yolox-nano-cam.pth")]
    names = run_compare(store, str(bccd_test_images[0]), [], uploads, 0.001, 0.7, 320, None)[4]
    assert names == ["yolox-base (yolox-w4, no attention)", "yolox-nano-cam (yolox-nano, CoordAtt)"]
    notice, table, _matrix, summary, ins = run_attention(store, str(bccd_test_images[0]), [], "jet", 0.5, 0.25, 320,
                                                         uploads)
    assert "LayerCAM" in notice  # the plain YOLOX gets LayerCAM on its head inputs
    assert len(summary[names[1]]) == 3 and {lm["stride"] for lm in summary[names[1]]} == {8, 16, 32}
    assert all("YOLOX tutorial CAM" in v for v in table[table["model"] == names[1]]["loaded from"])
