"""RT-DETR through every view, on the checkpoint ultralytics' own trainer wrote
(tests/fixtures/builtin/detr-best.pt): the stretched input, the encoder's attention captured and
equal to a recomputation from its queries and keys, the query view, Explain on the decoder's
class scores, the attention from a box, and the evaluation pass."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attention_lens.analysis.attention_view import inspect
from attention_lens.modeling.load import load_model
from attention_lens.runtime.detect import detect

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "builtin" / "detr-best.pt"


@pytest.fixture(scope="module")
def detr():
    return load_model(FIXTURE)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).integers(0, 256, (240, 400, 3), dtype=np.uint8)


def test_the_encoder_attention_is_captured_and_equals_a_recomputation_from_q_and_k(detr, image):
    from ultralytics.nn.modules.transformer import AIFI

    det = detect(detr, image, imgsz=256, capture=True, conf=0.01)
    assert det.stretched and det.input_shape == (256, 256)
    [(name, attn)] = list(det.maps.items())
    [x] = list(det.inputs.values())  # the encoder layer's input, (1, c, 8, 8)
    layer = detr.get_submodule(name.rsplit(".ma.tap", 1)[0])
    c, h, w = x.shape[1:]
    assert attn.shape == (1, layer.num_heads, h * w, h * w)
    # Independent: torch's own multi-head attention with the layer's weights, asked for its weights.
    mha = torch.nn.MultiheadAttention(c, layer.num_heads, batch_first=True)
    mha.load_state_dict(layer.ma.state_dict(), strict=False)
    src = x.flatten(2).permute(0, 2, 1)
    pos = AIFI.build_2d_sincos_position_embedding(w, h, c, like=x)
    with torch.no_grad():
        _, weights = mha(src + pos, src + pos, src, need_weights=True, average_attn_weights=False)
    assert torch.allclose(attn, weights, atol=1e-5)


def test_the_attention_tab_shows_the_encoder_at_p5_and_answers_a_query(detr, image):
    from attention_lens.analysis.query_view import query, render_queries

    ins = inspect(image, {"detr": detr}, imgsz=256, conf=0.01)
    [mm] = ins.models
    assert mm.stretched and [lm.module for lm in mm.layers] == ["EncoderSelfAttention"]
    [lm] = mm.layers
    assert lm.stride == 32 and lm.feature_hw == (8, 8) and lm.head_stats is not None
    [answer] = query(ins, (399.0, 0.0))  # the top-right corner: the last column of the first row
    assert (answer.cell.row, answer.cell.col) == (0, 7)
    figure, caption = render_queries(ins, [answer])[0]
    assert figure.ndim == 3 and "P5" in caption


def test_explain_targets_a_decoder_query_and_brings_its_box_back_through_the_stretch(detr, image):
    from attention_lens.analysis.explain import explain_box

    det = detect(detr, image, imgsz=256, conf=0.0, max_det=5)
    box, cls = det.boxes[0], det.classes[0]
    e = explain_box(detr, "detr", image, box, cls, method="Grad-CAM", imgsz=256)
    # The best-matching query is the detection itself (the decoder's top-ranked box for its class).
    assert e.iou == pytest.approx(1.0, abs=1e-3) and e.confidence == pytest.approx(float(det.scores[0]), abs=1e-4)
    assert np.allclose(e.matched, np.clip(box, 0, [400, 240, 400, 240]), atol=0.05)
    assert e.cam.shape == image.shape[:2] and e.level == "decoder query"
    assert all(p.grad is None for p in detr.parameters())


def test_the_attention_from_a_box_covers_its_cells(detr, image):
    from attention_lens.analysis.box_attention import box_attention

    [one] = box_attention(detr, "detr", image, (0, 0, 100, 60), imgsz=256)
    # 400 x 240 stretched to 256: a cell is 50 x 30 image pixels; the box holds 2 x 2 cell centres.
    assert one.cells == 4 and one.stride == 32


def test_the_evaluation_pass_detects_as_the_predictor_at_the_validators_settings(detr, tmp_path):
    """The validator's input for RT-DETR is the predictor's stretch (no rect, no padding), and its
    decoding the predictor's: the pass's rows equal ``detect`` at confidence 0.001."""
    from coco_cases import noise_split

    from attention_lens.analysis.images import load_image
    from attention_lens.evaluation.coco import MAX_DETS
    from attention_lens.evaluation.predict import predict_models

    split = noise_split(tmp_path, [detr.names[0], detr.names[1]], ((200, 300), (320, 180)), seed=5)
    [(rows, _)] = predict_models({"detr": detr}, split, 256).values()
    for path, got in zip(split.paths, rows):
        det = detect(detr, load_image(path), imgsz=256, conf=0.001, max_det=MAX_DETS)
        assert len(got) == len(det.boxes) > 0
        assert np.allclose(got[:, :4], det.boxes, atol=1e-3) and np.allclose(got[:, 4], det.scores)


@pytest.mark.parametrize("fixture", ["detr-best.pt", "y12-best.pt"])
def test_the_box_attention_recorded_during_the_cams_forward_is_a_forward_of_its_own(fixture, image):
    """Explain records the taps during Grad-CAM's own forward (no second forward): the same maps as
    a separate forward with capture gives, on RT-DETR and on a YOLO12 (area attention)."""
    from attention_lens.analysis.box_attention import box_attention, box_attention_from
    from attention_lens.analysis.explain import explain_box

    model = load_model(FIXTURE.parent / fixture)
    det = detect(model, image, imgsz=256, conf=0.0, max_det=1)
    box = det.boxes[0]
    e = explain_box(model, "m", image, box, det.classes[0], imgsz=256, capture=True)
    from_cam = box_attention_from(model, "m", e.captured, image.shape[:2], box)
    alone = box_attention(model, "m", image, box, imgsz=256)
    assert [a.layer for a in from_cam] == [b.layer for b in alone] and from_cam
    for a, b in zip(from_cam, alone):
        assert np.allclose(a.kept, b.kept, atol=1e-5) and np.allclose(a.heat, b.heat, atol=1e-5)
    assert explain_box(model, "m", image, box, det.classes[0], imgsz=256).captured is None  # only when asked
