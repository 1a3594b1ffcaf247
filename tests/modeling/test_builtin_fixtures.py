"""YOLO12, YOLO26, YOLOv10 and RT-DETR checkpoints written by ultralytics' own trainer (one epoch; see
tests/fixtures/builtin/make_fixtures.py): each loads with its self-attention rebuilt as ours and
computes what ultralytics' own model object computed on the stored input."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attention_lens.attention import AreaAttention, EncoderSelfAttention, SelfAttention
from attention_lens.modeling.load import load_model
from attention_lens.runtime.capture import raw_prediction

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "builtin"


@pytest.mark.parametrize("name, kind, base", [("y12", AreaAttention, "yolo12n"), ("y26", SelfAttention, "yolo26n"),
                                              ("v10", SelfAttention, "yolov10n"),
                                              ("detr", EncoderSelfAttention, "rtdetr-l")])
def test_a_trainer_written_checkpoint_computes_what_ultralytics_model_computed(name, kind, base):
    expected = torch.load(FIXTURES / f"{name}.expected.pt", weights_only=True)
    model = load_model(FIXTURES / f"{name}-best.pt")
    assert model.base_name == base
    assert any(isinstance(m, kind) for m in model.modules())
    with torch.no_grad():
        out = raw_prediction(model(expected["input"]))
    assert out.shape == expected["output"].shape
    assert torch.allclose(out, expected["output"], atol=1e-4, rtol=1e-4)
