"""Predict: every model over a split in one pass, mapped to the split's classes."""
from __future__ import annotations

import numpy as np
import pytest
from coco_cases import noise_split

#: Three shapes, two images sharing one (a batch) beside images of their own.
NOISE_SHAPES = ((200, 300), (320, 180), (200, 300), (240, 240), (200, 300))

from attention_lens.evaluation.coco import EvaluationError
from attention_lens.evaluation.predict import class_map


def test_a_model_predicting_other_classes_is_refused_by_name():
    assert class_map({0: "RBC", 1: "WBC", 2: "Platelets"}, ["Platelets", "RBC", "WBC"], "m") == {2: 0, 0: 1, 1: 2}
    with pytest.raises(EvaluationError, match="kangaroo.*not the data set's classes"):
        class_map({0: "kangaroo"}, ["RBC"], "m")


def test_several_models_in_one_pass_read_each_image_once_and_detect_as_each_alone(tiny_bccd, monkeypatch):
    """Two shipped models over a split in one pass: every image is decoded once (not once per
    model), and each model's rows are its own detections on that image (``detect`` called
    directly, at the pass's settings: the validator's letterbox), mapped to the split's classes
    (a row and its partner may differ by float rounding: the pass runs a batch)."""
    from pathlib import Path

    from attention_lens.analysis import images
    from attention_lens.evaluation.coco import MAX_DETS
    from attention_lens.evaluation.predict import predict_models
    from attention_lens.data.datasets import read_split
    from attention_lens.modeling.load import load_model
    from attention_lens.runtime.detect import detect
    from attention_lens.runtime.letterbox import model_stride, val_letterbox

    weights = Path(__file__).resolve().parents[2] / "weights"
    models = {n: load_model(weights / n / "best.pt") for n in ("yolov8n-baseline-s0", "yolov8n-cbam-neck-s0")}
    split = read_split(tiny_bccd, "test")
    reads, real = [], images.load_image
    monkeypatch.setattr(images, "load_image", lambda p: reads.append(p) or real(p))
    steps = []
    out = predict_models(models, split, 320, progress=lambda i, n: steps.append((i, n)))
    assert sorted(reads) == sorted(split.paths) and steps[-1] == (len(split.paths), len(split.paths))
    for name, model in models.items():
        dets, scores = out[name]
        assert scores is None and len(dets) == len(split.paths)
        for path, rows in zip(split.paths, dets):
            x, ratio_pad = val_letterbox(real(path), 320, model_stride(model))
            want = detect(model, real(path), conf=0.001, iou=0.7, max_det=MAX_DETS, x=x, ratio_pad=ratio_pad)
            # The pass runs the six images in one batch, ``detect`` one alone: the same detections up
            # to float rounding, so two near-tied ones may swap ranks. Each row has its own partner.
            assert len(rows) == len(want.boxes)
            alone = np.column_stack([want.boxes, want.scores])
            names = np.array([split.classes.index(c) for c in want.classes])
            for row in rows:
                gap = np.abs(alone - row[:5]).max(1) + 1e9 * (names != row[5])
                assert gap.min() < 1e-3, (row, gap.min())


def test_localisation_scores_the_maps_of_the_pass_own_batched_forward(tiny_bccd, monkeypatch):
    """On the CPU without ONNX Runtime the pass runs a split's same-shape images in one PyTorch
    forward. With localisation a model with attention layers captures its maps in that same forward
    (CBAM's gates; YOLO12's area attention, whose taps hold batch x areas runs): no forward more,
    detections those of the plain pass, and every image's scores those of a forward of that image
    alone (``detect_and_score``). The plain model's LayerCAM runs the same batch in one forward and
    backward (its memory bound allows six images at 320), and that forward gives its detections:
    the plain pass's rows."""
    from pathlib import Path

    from attention_lens.analysis.images import load_image
    from attention_lens.analysis.localisation import detect_and_score, groups_of
    from attention_lens.data.datasets import read_split
    from attention_lens.evaluation.coco import MAX_DETS, size_of
    from attention_lens.evaluation.predict import predict_models
    from attention_lens.modeling.load import load_model
    from attention_lens.runtime.letterbox import val_input

    monkeypatch.setenv("ATTENTION_LENS_BACKEND", "pytorch")
    weights = Path(__file__).resolve().parents[2] / "weights"
    names = ("yolov8n-baseline-s0", "yolov8n-cbam-neck-s0", "yolo12n-baseline-s0")
    models = {n: load_model(weights / n / "best.pt") for n in names}
    split = read_split(tiny_bccd, "test")
    n_images = len(split.paths)
    calls = {n: 0 for n in models}
    for n, m in models.items():
        m.register_forward_hook(lambda *_, n=n: calls.__setitem__(n, calls[n] + 1))
    plain = predict_models(models, split, 320)
    assert calls == {n: 1 for n in models}  # BCCD's six images letterbox to one shape: one batch
    located = predict_models(models, split, 320, localise=True)
    assert calls == {n: 2 for n in names}
    for n in names:
        assert all(np.array_equal(a, b) for a, b in zip(plain[n][0], located[n][0]))
    for i, path in enumerate(split.paths):
        rgb = load_image(path)
        groups = groups_of(split.boxes[i], split.classes, size_of)
        for n in names:
            x, ratio_pad = val_input(models[n], rgb, 320)
            alone = detect_and_score(models[n], rgb, groups, split.boxes[i], max_det=MAX_DETS, x=x, ratio_pad=ratio_pad)[1]
            got = located[n][1][i]
            assert list(got) == list(alone) and len(got) > 0
            for label in got:
                assert got[label]["kind"] == alone[label]["kind"]
                for g, (ratio, hit) in alone[label]["groups"].items():
                    assert got[label]["groups"][g][0] == pytest.approx(ratio, abs=2e-3)
                if "in_box" in alone[label]:
                    for g, (k, heads) in alone[label]["in_box"].items():
                        assert got[label]["in_box"][g][0] == k
                        assert got[label]["in_box"][g][1] == pytest.approx(heads, abs=2e-3)
    assert "L6 AreaAttention #2" in located[names[2]][1][0] and "in_box" in located[names[2]][1][0]["L6 AreaAttention"]


@pytest.fixture
def detr():
    from pathlib import Path

    from attention_lens.modeling.load import load_model

    return load_model(Path(__file__).resolve().parents[1] / "fixtures" / "builtin" / "detr-bccd-best.pt")


def test_reading_ahead_and_one_forward_a_batch_change_no_detection(detr, tmp_path, monkeypatch):
    """The GPU's pass (issue 37) on the CPU: images read by a worker thread one group ahead, and a
    group of one shape in one PyTorch forward, give the rows of the plain pass."""
    from attention_lens.evaluation.predict import predict_models
    from attention_lens.runtime import detect as detect_module

    monkeypatch.setenv("ATTENTION_LENS_BACKEND", "pytorch")
    split = noise_split(tmp_path, detr.names.values(), NOISE_SHAPES, seed=7)
    plain = predict_models({"m": detr}, split, 256, prefetch=False)["m"][0]
    monkeypatch.setattr(detect_module, "batches_on_torch", lambda model: True)
    ahead = predict_models({"m": detr}, split, 256, prefetch=True)["m"][0]
    assert len(plain) == len(ahead) == 5
    for a, b in zip(plain, ahead):
        assert a.shape == b.shape and len(a) > 0 and np.allclose(a, b, atol=1e-3)


def test_half_precision_is_refused_for_a_model_on_the_cpu(detr, tmp_path):
    from attention_lens.evaluation.predict import predict_models

    with pytest.raises(EvaluationError, match="half precision is for models on a GPU"):
        predict_models({"m": detr}, noise_split(tmp_path, detr.names.values(), NOISE_SHAPES[:1], seed=7), 256, half=True)


def test_with_onnx_runtime_a_layercam_model_detects_in_the_forward_that_made_its_maps(tiny_bccd, tmp_path,
                                                                                        monkeypatch):
    """ONNX Runtime on, localisation on: the model without attention runs LayerCAM on PyTorch, and
    that forward's detections are its pass's (its graph never runs; the rows are exactly the plain
    PyTorch pass's, the same batch in one forward), labelled so; the attention model's detections
    and maps come from its graph."""
    from pathlib import Path

    from attention_lens.data.datasets import read_split
    from attention_lens.evaluation.predict import predict_models, ran_on
    from attention_lens.modeling.load import load_model
    from attention_lens.runtime import onnx_backend

    monkeypatch.setenv(onnx_backend.BACKEND_ENV, "pytorch")
    weights = Path(__file__).resolve().parents[2] / "weights"
    names = ("yolov8n-baseline-s0", "yolov8n-ema-neck-s0")
    models = {n: load_model(weights / n / "best.pt") for n in names}
    split = read_split(tiny_bccd, "test")
    on_torch = predict_models(models, split, 320)
    monkeypatch.setenv(onnx_backend.BACKEND_ENV, "onnxruntime")
    monkeypatch.setenv(onnx_backend.CACHE_ENV, str(tmp_path / "onnx"))
    registry = onnx_backend.Registry()
    monkeypatch.setattr(onnx_backend, "REGISTRY", registry)
    registry.prepare(list(models.values()), wait=True)
    runs = {n: 0 for n in names}
    for n, m in models.items():
        exported = registry.session(m)
        assert exported is not None
        real = exported.run
        monkeypatch.setattr(exported, "run", lambda *a, n=n, real=real, **k: runs.__setitem__(n, runs[n] + 1) or real(*a, **k))
    located = predict_models(models, split, 320, localise=True)
    assert runs == {names[0]: 0, names[1]: 1}  # six images of one shape: one batch
    assert all(np.array_equal(a, b) for a, b in zip(on_torch[names[0]][0], located[names[0]][0]))
    assert all(s is not None for s in located[names[0]][1])
    assert ran_on(models[names[0]], True) == "pytorch (LayerCAM needs gradients)"
    assert ran_on(models[names[0]], False) == ran_on(models[names[1]], True) == "onnxruntime"
