"""YOLO26 and YOLOv10 (one-to-one heads) and YOLO12 load as ultralytics writes them, and detect
what ultralytics' own predict detects on the same image and settings (issue 33, part 1)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attention_lens.analysis.images import load_image
from attention_lens.attention import AreaAttention, SelfAttention
from attention_lens.modeling.load import load_model
from attention_lens.runtime.detect import detect
from ultralytics_checkpoints import rtdetr_checkpoint, ultralytics_checkpoint

EXAMPLE = Path(__file__).resolve().parents[2] / "assets" / "examples" / "synthetic_smear_1.jpg"


@pytest.mark.parametrize("yaml, end2end, kinds", [
    ("yolo26n.yaml", True, {SelfAttention}), ("yolo26n.yaml", False, {SelfAttention}),
    ("yolov10n.yaml", True, {SelfAttention}), ("yolo12n.yaml", None, {AreaAttention}),
])
def test_detections_equal_ultralytics_predict(tmp_path, yaml, end2end, kinds):
    from ultralytics import YOLO

    path = ultralytics_checkpoint(tmp_path, yaml, end2end)
    ours = load_model(path)
    assert {type(m) for m in ours.modules() if isinstance(m, (SelfAttention, AreaAttention))} == kinds
    rgb = load_image(EXAMPLE)
    theirs = YOLO(path).predict(rgb[..., ::-1].copy(), imgsz=320, conf=0.25, iou=0.7, verbose=False)[0]
    got = detect(ours, rgb, conf=0.25, iou=0.7, imgsz=320)
    boxes, scores = theirs.boxes.xyxy.numpy(), theirs.boxes.conf.numpy()
    assert len(boxes) == len(got.boxes) > 0
    a, b = np.argsort(-scores, kind="stable"), np.argsort(-got.scores, kind="stable")
    assert np.allclose(got.scores[b], scores[a], atol=1e-4)
    assert np.allclose(got.boxes[b], boxes[a], atol=0.05)


def test_the_base_is_named_for_what_was_built(tmp_path):
    names = {yaml: load_model(ultralytics_checkpoint(tmp_path, yaml, None)).base_name
             for yaml in ("yolo26n.yaml", "yolov10n.yaml", "yolo12n.yaml")}
    assert names == {"yolo26n.yaml": "yolo26n", "yolov10n.yaml": "yolov10n", "yolo12n.yaml": "yolo12n"}


@pytest.mark.parametrize("imgsz", [320, 256])
def test_rtdetr_detections_equal_ultralytics_predict(tmp_path, imgsz):
    from ultralytics import RTDETR

    from attention_lens.attention import EncoderSelfAttention

    path = rtdetr_checkpoint(tmp_path)
    ours = load_model(path)
    assert ours.base_name == "rtdetr-l" and any(isinstance(m, EncoderSelfAttention) for m in ours.modules())
    # Noise, not a drawn image: an untrained decoder scores the cells of a flat region alike, and
    # ultralytics' predictor runs a fused copy whose last-digit differences then break ties otherwise.
    rgb = np.random.default_rng(0).integers(0, 256, (300, 520, 3), dtype=np.uint8)  # a stretch, not a letterbox
    theirs = RTDETR(path).predict(rgb[..., ::-1].copy(), imgsz=imgsz, conf=0.4, verbose=False)[0]
    got = detect(ours, rgb, conf=0.4, imgsz=imgsz)
    assert got.stretched and got.input_shape == (imgsz, imgsz)
    boxes, scores = theirs.boxes.xyxy.numpy(), theirs.boxes.conf.numpy()
    assert len(boxes) == len(got.boxes) > 0
    # The untrained decoder scores many queries alike: near-ties may swap places, so each row
    # (score, box, class) is compared after sorting both sets the same way.
    mine = sorted(zip(np.round(got.scores, 3), *np.round(got.boxes, 1).T, got.classes))
    their = sorted(zip(np.round(scores, 3), *np.round(boxes, 1).T, [theirs.names[int(c)] for c in theirs.boxes.cls]))
    assert mine == their
