"""The GPU path (issue 37), run only where torch sees a CUDA device (the ``cuda`` fixture skips
elsewhere): every view's forward on the GPU gives the CPU's detections and maps within float32
tolerances, two threads sharing a GPU model never see each other's maps, and the evaluation pass
(batched, prefetched; float16 on request) gives the CPU's detections."""
from __future__ import annotations

import copy
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from attention_lens.modeling.catalog import prepare
from attention_lens.modeling.load import load_model
from attention_lens.runtime.detect import detect

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "tests" / "fixtures" / "builtin"
#: Boxes may move this much (pixels) between the CPU's and a GPU's float32 kernels; scores this much.
BOX_PX, SCORE = 0.05, 1e-3


def _models():
    weights = ROOT / "weights"
    paths = [weights / n / "best.pt" for n in ("yolov8n-ema-neck-s0", "yolo11n-baseline-s0", "yolo12n-baseline-s0")]
    return {p.parent.name: p for p in paths if p.is_file()} | {"rtdetr": BUILTIN / "detr-bccd-best.pt"}


@pytest.fixture(scope="module")
def image():
    from attention_lens.analysis.images import load_image

    return load_image(ROOT / "assets" / "examples" / "synthetic_smear_1.jpg")


def _pair(path, cuda):
    model = load_model(path)
    return prepare(copy.deepcopy(model), device=torch.device("cpu")), prepare(model, device=cuda)


def _same(a, b):
    assert a.classes == b.classes and len(a.boxes) == len(b.boxes)
    assert np.allclose(a.boxes, b.boxes, atol=BOX_PX) and np.allclose(a.scores, b.scores, atol=SCORE)


@pytest.mark.parametrize("name", list(_models()))
def test_a_gpu_forward_detects_and_captures_what_the_cpu_does(cuda, image, name, monkeypatch):
    monkeypatch.setenv("ATTENTION_LENS_BACKEND", "pytorch")  # the CPU reference on PyTorch too
    cpu, gpu = _pair(_models()[name], cuda)
    a, b = detect(cpu, image, imgsz=320, capture=True), detect(gpu, image, imgsz=320, capture=True)
    _same(a, b)
    assert b.backend.startswith("pytorch (cuda:0")
    assert set(a.maps) == set(b.maps)
    for k in a.maps:
        assert b.maps[k].device.type == "cpu" and torch.allclose(a.maps[k], b.maps[k], atol=1e-4)


def test_two_threads_on_one_gpu_model_see_only_their_own_maps(cuda, image):
    from attention_lens.analysis.images import load_image

    _, gpu = _pair(_models()["rtdetr"], cuda)
    other = load_image(ROOT / "assets" / "examples" / sorted(p.name for p in (ROOT / "assets" / "examples").iterdir())[-1])
    alone = {k: detect(gpu, im, imgsz=320, capture=True).maps for k, im in (("a", image), ("b", other))}
    got, start = {}, threading.Barrier(2)

    def run(key, im):
        start.wait()
        got[key] = [detect(gpu, im, imgsz=320, capture=True).maps for _ in range(5)]

    threads = [threading.Thread(target=run, args=(k, im)) for k, im in (("a", image), ("b", other))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for key in ("a", "b"):
        for maps in got[key]:
            assert all(torch.allclose(maps[n], alone[key][n], atol=1e-5) for n in alone[key])


def test_explain_on_the_gpu_explains_the_candidate_the_cpu_explains(cuda, image, monkeypatch):
    from attention_lens.analysis.explain import explain_box

    monkeypatch.setenv("ATTENTION_LENS_BACKEND", "pytorch")
    for path in list(_models().values())[:1] + [_models()["rtdetr"]]:
        cpu, gpu = _pair(path, cuda)
        det = detect(cpu, image, imgsz=320)
        a = explain_box(cpu, "m", image, det.boxes[0], det.classes[0])
        b = explain_box(gpu, "m", image, det.boxes[0], det.classes[0])
        assert np.allclose(a.matched, b.matched, atol=BOX_PX) and abs(a.confidence - b.confidence) < SCORE
        assert np.abs(a.cam - b.cam).max() < 0.02


def test_the_evaluation_pass_on_the_gpu_gives_the_cpus_detections_and_half_precision_stays_close(cuda, tiny_bccd):
    from attention_lens.data.datasets import read_split
    from attention_lens.evaluation.predict import predict_models
    from attention_lens.evaluation.ultralytics_metrics import ultralytics_metrics

    split = read_split(tiny_bccd, "test")
    paths = {n: p for n, p in _models().items() if n != "yolo12n-baseline-s0"}
    pairs = {n: _pair(p, cuda) for n, p in paths.items()}
    on_cpu = predict_models({n: c for n, (c, _) in pairs.items()}, split, 320)
    on_gpu = predict_models({n: g for n, (_, g) in pairs.items()}, split, 320)
    halves = predict_models({n: g for n, (_, g) in pairs.items()}, split, 320, half=True)
    for n in paths:
        for a, b in zip(on_cpu[n][0], on_gpu[n][0]):
            assert a.shape == b.shape and np.allclose(a, b, atol=BOX_PX)
        full, half = (ultralytics_metrics(split, r[n][0], 320)["mAP50-95"] for r in (on_gpu, halves))
        assert abs(full - half) < 0.01, (n, full, half)
