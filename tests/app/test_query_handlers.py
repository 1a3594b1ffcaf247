"""The query view's handler on real models: a shipped yolo11n (C2PSA) and a yolo12n written by
ultralytics (area attention), through the same calls the Attention tab makes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attention_lens.app.errors import UserError
from attention_lens.app.attention_handlers import run_attention
from attention_lens.app.query_handlers import NO_SELF_ATTENTION, attention_query, click_point
from attention_lens.modeling.catalog import ModelStore, read_manifest
from ultralytics_checkpoints import ultralytics_checkpoint

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "assets" / "examples" / "synthetic_smear_1.jpg"


@pytest.fixture(scope="module")
def inspected(tmp_path_factory):
    store = ModelStore(read_manifest(ROOT / "weights"))
    if "yolo11n-baseline-s0" not in store.names or "yolov8n-baseline-s0" not in store.names:
        pytest.skip("the shipped zoo is not here")
    yolo12 = ultralytics_checkpoint(tmp_path_factory.mktemp("yolo12"), "yolo12n.yaml", nc=3)
    *_, ins = run_attention(store, str(EXAMPLE), ["yolo11n-baseline-s0"], "jet", 0.5, 0.25, 320, [str(yolo12)])
    *_, plain = run_attention(store, str(EXAMPLE), ["yolov8n-baseline-s0"], "jet", 0.5, 0.25, 320)
    return ins, plain


def test_every_self_attention_layer_answers_a_point_with_a_softmax_row(inspected):
    from attention_lens.analysis.query_view import query

    ins, _ = inspected
    answers = query(ins, (200.0, 150.0))
    kinds = {(a.model.split(" ")[0], a.layer.module) for a in answers}
    assert ("yolo11n-baseline-s0", "SelfAttention") in kinds and any(k == "AreaAttention" for _, k in kinds)
    for a in answers:
        keys = int(a.area_mask.sum())
        # Times the keys it sees, a softmax row sums to that number of keys in every head.
        assert np.allclose(a.heads.reshape(len(a.heads), -1).sum(1), keys, rtol=1e-4)
        assert (a.heads[:, ~a.area_mask] == 0).all()
    yolo12_p4 = [a for a in answers if a.layer.module == "AreaAttention" and a.layer.stride == 16]
    assert yolo12_p4 and all(a.cell.areas == 4 for a in yolo12_p4)  # YOLO12's P4 layers cut 4 areas


def test_the_handler_defaults_to_the_top_detection_and_checks_the_point(inspected):
    ins, plain = inspected
    view = attention_query(ins)
    assert view.figure is not None and view.figure.ndim == 3
    assert 0 <= view.x <= ins.original_hw[1] and 0 <= view.y <= ins.original_hw[0]
    assert view.image.shape == ins.image.shape and "self-attention layer(s)" in view.note
    again = attention_query(ins, 20, 30)
    assert (again.x, again.y) == (20.0, 30.0) and "(20, 30)" in again.note
    with pytest.raises(UserError, match="outside the image"):
        attention_query(ins, 10_000, 5)
    with pytest.raises(UserError, match="Show attention first"):
        attention_query(None, 1, 1)
    none = attention_query(plain)
    assert none.figure is None and none.note == NO_SELF_ATTENTION


def test_a_click_on_the_shown_copy_is_read_in_the_image_own_pixels(inspected):
    ins, _ = inspected
    shown_w = ins.image.shape[1]
    x, y = click_point(ins, [shown_w // 2, 10])
    assert x == pytest.approx(ins.original_hw[1] / 2, abs=ins.original_hw[1] / shown_w)
    assert y == pytest.approx(10 * ins.original_hw[1] / shown_w)
