"""The ONNX Runtime fast path: exports match PyTorch (maps included), fall back with a reason, cache."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attention_lens.runtime import onnx_backend, onnx_check
from attention_lens.runtime.capture import capture_gates
from attention_lens.runtime.detect import detect
from attention_lens.attention import ATTENTION_MODULES
from attention_lens.modeling.catalog import prepare
from attention_lens.modeling.models import build_model
from attention_lens.modeling.variants import make_variant

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fast(monkeypatch, tmp_path):
    """ONNX Runtime on, a fresh registry, exports cached under this test's folder."""
    monkeypatch.setenv(onnx_backend.BACKEND_ENV, "onnxruntime")
    monkeypatch.setenv(onnx_backend.CACHE_ENV, str(tmp_path / "onnx"))
    registry = onnx_backend.Registry()
    monkeypatch.setattr(onnx_backend, "REGISTRY", registry)
    return registry


def variant(base="yolov8n", attention=None, placement="neck_outputs", seed=0):
    torch.manual_seed(seed)
    return prepare(build_model(make_variant(base, attention, placement if attention else None, nc=3)))


def smear(h=240, w=320, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("attention", [None, *ATTENTION_MODULES])
def test_each_module_exports_with_its_maps_equal_to_pytorch(attention, fast):
    model = variant(attention=attention)
    exported = onnx_backend.build(model)
    x = torch.rand(1, 3, 288, 384, generator=torch.Generator().manual_seed(3))  # a shape the check did not use
    maps, inputs = {}, {}
    with torch.no_grad(), capture_gates(model, maps, inputs):
        ref = model(x)[0]
    pred, gates, ins = exported.run(x)
    # Independent of the exporter's own check: every hooked map is an output, and agrees.
    assert set(gates) == set(maps) and set(ins) == set(inputs)
    assert (attention is None) == (not gates)
    torch.testing.assert_close(pred, ref, rtol=0, atol=1e-3)
    for name in maps:
        torch.testing.assert_close(gates[name], maps[name], rtol=0, atol=1e-4)
    alone, no_gates, no_inputs = exported.run(x, capture=False)  # detection only: the maps not fetched
    assert not no_gates and not no_inputs
    torch.testing.assert_close(alone, pred, rtol=0, atol=0)


@pytest.mark.parametrize("base, attention, placement", [("yolo11n", "EMA", "neck_outputs"),
                                                         ("yolov5n", "EMA", "in_csp"),
                                                         ("yolov8n", "CoordAtt", "backbone_outputs")])
def test_the_zoos_other_bases_and_placements_export(base, attention, placement, fast):
    assert onnx_backend.build(variant(base, attention, placement)).gates


def shipped(name: str):
    from attention_lens.modeling.catalog import ModelStore, read_manifest

    store = ModelStore(read_manifest(ROOT / "weights"))
    if name not in store.entries:
        pytest.skip("the shipped zoo is not here")
    return store.get(name)


def test_detect_goes_fast_once_the_export_is_ready_with_the_same_boxes(fast):
    from attention_lens.analysis.images import load_image

    model = shipped("yolov8n-cbam-neck-s0")
    image = load_image(ROOT / "assets" / "examples" / "synthetic_smear_1.jpg")
    first = detect(model, image, conf=0.25, imgsz=320, capture=True)
    assert first.backend == "pytorch"  # the export is queued, not waited for
    fast.join()
    second = detect(model, image, conf=0.25, imgsz=320, capture=True)
    assert second.backend == "onnxruntime" and fast.backend(model) == "onnxruntime"
    assert second.classes == first.classes and len(first.classes) > 0
    np.testing.assert_allclose(second.boxes, first.boxes, atol=0.05)
    np.testing.assert_allclose(second.scores, first.scores, atol=1e-4)
    assert set(second.maps) == set(first.maps) and first.maps
    for name, m in first.maps.items():
        torch.testing.assert_close(second.maps[name], m, rtol=0, atol=1e-4)


def test_an_export_that_does_not_match_falls_back_with_its_reason(fast, monkeypatch):
    model = variant(attention="SE")
    reference = onnx_check._reference
    monkeypatch.setattr(onnx_check, "_reference", lambda *a: reference(*a) + 1)  # PyTorch "says" +1
    fast.prepare([model], wait=True)
    assert fast.backend(model) == "pytorch (export failed)"
    assert fast.failure(model) == "does not match PyTorch: predictions differ by 1 at 320x256"
    assert detect(model, smear(), imgsz=320).backend == "pytorch"
    assert not list((onnx_backend.cache_dir()).glob("*.onnx"))  # a refused graph is not kept


def test_a_session_stops_spinning_when_a_run_returns():
    """ONNX Runtime's threads otherwise spin on after a run and slow the PyTorch work that follows
    (bench section 9 measures it); each session gets its own pool, as many threads as PyTorch."""
    import onnx

    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    session = onnx_backend.open_session(onnx.helper.make_model(graph).SerializeToString())
    options = session.get_session_options()
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert options.intra_op_num_threads == torch.get_num_threads()
    np.testing.assert_array_equal(session.run(None, {"x": np.array([-1.0], np.float32)})[0], [0.0])


def test_an_export_that_raises_falls_back(fast, monkeypatch):
    model = variant(attention="ECA")

    def broken(_model):
        raise RuntimeError("Unsupported: ONNX export of operator foo\nmore detail")

    monkeypatch.setattr(onnx_backend, "export_bytes", broken)
    fast.prepare([model], wait=True)
    assert fast.failure(model) == "RuntimeError: Unsupported: ONNX export of operator foo"
    assert detect(model, smear(), imgsz=320).backend == "pytorch"


def test_a_second_process_loads_the_cached_graph_without_exporting(fast, monkeypatch):
    model = variant(attention="EMA")
    first = onnx_backend.build(model)
    assert list(onnx_backend.cache_dir().glob("*.onnx")) == [first.path]  # the session says which graph it runs

    def no_export(_model):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_backend, "export_bytes", no_export)
    assert onnx_backend.build(model).path == first.path  # same weights: loaded from the cache
    other = variant(attention="EMA", seed=9)  # other weights: another key
    assert onnx_backend.model_key(other) != onnx_backend.model_key(model)


def test_the_shared_model_is_left_as_it_was(fast):
    model = variant(attention="PolarizedSA")
    head = model.model[-1]
    before = (model.training, head.export, getattr(head, "dynamic", None), getattr(head, "format", None))
    onnx_backend.build(model)
    assert (model.training, head.export, getattr(head, "dynamic", None), getattr(head, "format", None)) == before
    assert isinstance(model(torch.zeros(1, 3, 64, 64)), tuple)  # still ultralytics' eval output


def test_turned_off_it_never_exports(monkeypatch, tmp_path):
    monkeypatch.setenv(onnx_backend.BACKEND_ENV, "pytorch")
    monkeypatch.setenv(onnx_backend.CACHE_ENV, str(tmp_path))
    registry = onnx_backend.Registry()
    monkeypatch.setattr(onnx_backend, "REGISTRY", registry)
    model = variant()
    assert detect(model, smear(), imgsz=320).backend == "pytorch"
    registry.join()
    assert registry.backend(model) == "pytorch" and not list(tmp_path.glob("*.onnx"))


def test_boxes_on_the_bccd_test_split_match_pytorch(fast, bccd_test_images):
    """Issue 19's exactness bar, on real images and a shipped model: the same boxes after NMS."""
    from attention_lens.analysis.images import load_image

    model = shipped("yolov8n-ema-neck-s0")
    exported = onnx_backend.build(model)
    worst = 0.0
    for path in bccd_test_images:
        rgb = load_image(path)
        torch_det = detect(model, rgb, conf=0.25, imgsz=320)
        fast.prepare([model], wait=True)
        assert fast.session(model) is not None
        fast_det = detect(model, rgb, conf=0.25, imgsz=320)
        fast._ready.pop(model)  # back to PyTorch for the next image's reference
        assert fast_det.backend == "onnxruntime"
        assert fast_det.classes == torch_det.classes, path.name
        worst = max(worst, float(np.abs(fast_det.boxes - torch_det.boxes).max(initial=0)))
    assert worst < 0.05  # image pixels
    assert exported.gates


def test_a_cache_folder_others_can_write_to_is_not_used(monkeypatch, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could plant a graph under a model's hash
    monkeypatch.setenv(onnx_backend.CACHE_ENV, str(shared))
    assert onnx_backend.cache_dir() != shared
    own = tmp_path / "own"
    monkeypatch.setenv(onnx_backend.CACHE_ENV, str(own))
    assert onnx_backend.cache_dir() == own and not own.stat().st_mode & 0o077


@pytest.mark.parametrize("fixture", ["yolov5/v5-c3ema-best.pt", "yolox/yolox-cbam.pth", "yolox/yolox-eca.pth",
                                     "yolox/yolox-se.pth"])
def test_other_code_bases_export_and_match(fixture, fast):
    """Files written by yolov5 7.0 and YOLOX 0.3.0 export, pass the two-shape check and give
    PyTorch's predictions and maps. (YOLOX's ECA and SE graphs once kept the first input's
    shape in a Concat, when the export wrapper hooked modules its own way: the check refused them.)"""
    from attention_lens.modeling.load import load_model

    model = prepare(load_model(ROOT / "tests" / "fixtures" / fixture))
    fast.prepare([model], wait=True)
    assert fast.backend(model) == "onnxruntime", fast.failure(model)
    assert detect(model, smear(), conf=0.25, imgsz=320, capture=True).backend == "onnxruntime"
    # Raw outputs on shapes the exporter's check did not use (these untrained heads' scores tie,
    # so boxes after NMS could differ by which of two equal boxes survives).
    for h, w in ((320, 416), (416, 288)):
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h))
        maps, inputs = {}, {}
        with torch.no_grad(), capture_gates(model, maps, inputs):
            ref = model(x)
        ref = ref[0] if isinstance(ref, (list, tuple)) else ref
        pred, gates, _ = fast.session(model).run(x)
        torch.testing.assert_close(pred, ref, rtol=0, atol=1e-3)
        assert set(gates) == set(maps) and gates
        for name in maps:
            torch.testing.assert_close(gates[name], maps[name], rtol=0, atol=1e-4)


class _Runs:
    """An ONNX Runtime session that counts its runs and the images each was given."""

    def __init__(self, session):
        self.session, self.images = session, []

    def run(self, names, feed):
        self.images.append(len(feed["images"]))
        return self.session.run(names, feed)

    def __getattr__(self, name):
        return getattr(self.session, name)


def _letterboxed(paths, imgsz=320):
    from attention_lens.analysis.images import load_image
    from attention_lens.runtime.letterbox import letterbox

    rgbs = [load_image(p) for p in paths]
    return rgbs, torch.cat([letterbox(rgb, imgsz, 32) for rgb in rgbs])


def test_a_pass_feeds_a_graph_several_images_a_run_with_each_images_own_boxes(fast, bccd_test_images, monkeypatch):
    from attention_lens.runtime.detect import detect_batch

    model = shipped("yolov8n-cbam-neck-s0")
    fast.prepare([model], wait=True)
    exported = fast.session(model)
    assert exported.batched  # checked on a batch of two at build time
    rgbs, x = _letterboxed(bccd_test_images[:3])
    counted = _Runs(exported.session)
    exported.session = counted
    dets = detect_batch(model, rgbs, x, conf=0.001, max_det=300)
    assert counted.images == [3]  # one run for the three images
    monkeypatch.setenv(onnx_backend.BACKEND_ENV, "pytorch")  # the reference: PyTorch, one image a forward
    for k, (rgb, det) in enumerate(zip(rgbs, dets)):
        alone = detect(model, rgb, conf=0.001, max_det=300, x=x[k:k + 1])
        assert det.backend == "onnxruntime" and alone.backend == "pytorch"
        top = alone.scores > 0.25  # the boxes a user sees; the low-score tail may reorder at ties
        assert det.classes[:top.sum()] == [c for c, t in zip(alone.classes, top) if t]
        assert float(np.abs(det.boxes[:top.sum()] - alone.boxes[top]).max(initial=0)) < 0.05


class _OneAtATime(torch.nn.Module):
    """A layer whose output is reshaped to batch 1, as some code bases hard-code the batch size:
    the exported graph then folds the batch in as a constant."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.f, self.i, self.type, self.np = layer.f, layer.i, layer.type, getattr(layer, "np", 0)

    def forward(self, x):
        y = self.layer(x)
        return y.reshape(1, *y.shape[1:])


def test_a_graph_that_folds_in_the_batch_size_runs_one_image_at_a_time(fast, bccd_test_images):
    from attention_lens.runtime.detect import detect_batch

    model = variant(attention="SE")
    model.model[0] = _OneAtATime(model.model[0])
    fast.prepare([model], wait=True)
    exported = fast.session(model)
    assert exported is not None and not exported.batched  # one image a run still matches PyTorch
    rgbs, x = _letterboxed(bccd_test_images[:2])
    counted = _Runs(exported.session)
    exported.session = counted
    dets = detect_batch(model, rgbs, x, conf=0.25)
    assert counted.images == [1, 1]
    for k, rgb in enumerate(rgbs):
        alone = detect(model, rgb, conf=0.25, x=x[k:k + 1])
        np.testing.assert_array_equal(dets[k].boxes, alone.boxes)
