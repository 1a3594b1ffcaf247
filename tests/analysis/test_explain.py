"""Explaining one detection: box-targeted CAMs from pytorch-grad-cam, un-letterboxed, energy in box."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from attention_lens.analysis.explain import METHOD_NAMES, energy_in_box, explain_box, to_input_box
from attention_lens.analysis.images import load_image
from attention_lens.runtime.detect import detect
from attention_lens.runtime.letterbox import letterbox
from attention_lens.modeling.catalog import ModelStore, read_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped():
    store = ModelStore(read_manifest(ROOT / "weights"))
    if not store.baseline_name():
        pytest.skip("no shipped baseline")
    return store


@pytest.fixture(scope="module")
def smear():
    return load_image(ROOT / "assets" / "examples" / "synthetic_smear_1.jpg")


def test_energy_in_box_on_a_constructed_map():
    cam = np.zeros((10, 20))
    cam[2:4, 5:10] = 1.0  # 10 units inside the box below
    cam[8, 18] = 10.0  # 10 units outside
    assert energy_in_box(cam, [5, 2, 10, 4]) == pytest.approx(0.5)
    assert energy_in_box(np.zeros((4, 4)), [0, 0, 2, 2]) == 0.0


def test_a_box_maps_into_the_letterbox_the_way_scale_boxes_maps_it_back():
    from ultralytics.utils.ops import scale_boxes

    original = (290, 520)
    x = letterbox(np.zeros((*original, 3), np.uint8), 320)
    box = [100.0, 50.0, 300.0, 200.0]
    there = to_input_box(box, tuple(x.shape[2:]), original)
    back = scale_boxes(tuple(x.shape[2:]), there[None].clone(), original)[0]
    assert torch.allclose(back, torch.tensor(box), atol=1e-3)


def test_each_box_gets_its_own_map_and_most_of_its_energy(shipped, smear):
    name = shipped.baseline_name()
    model = shipped.get(name)
    det = detect(model, smear)
    wbc, rbc = det.boxes[det.classes.index("WBC")], det.boxes[det.classes.index("RBC")]
    for_wbc = explain_box(model, name, smear, wbc, "WBC", method="Grad-CAM")
    for_rbc = explain_box(model, name, smear, rbc, "RBC", method="Grad-CAM")
    assert for_wbc.cam.shape == smear.shape[:2] and np.abs(for_wbc.cam - for_rbc.cam).mean() > 0.05
    # The map for a box puts more of its energy in that box than the other box's map does, and
    # more than a uniform map would (the box's share of the image).
    assert for_wbc.energy_in_box > energy_in_box(for_rbc.cam, wbc) and for_wbc.energy_in_box > 3 * for_wbc.box_share
    assert for_rbc.energy_in_box > energy_in_box(for_wbc.cam, rbc)
    # The explained candidate is the model's own detection of that box.
    assert for_wbc.iou > 0.9 and for_wbc.confidence == pytest.approx(float(det.scores[det.classes.index("WBC")]),
                                                                     abs=0.02)


def test_every_method_runs_and_leaves_the_shared_model_as_it_was(shipped, smear):
    name = [n for n in shipped.names if shipped.entries[n].attention][0]
    model = shipped.get(name)
    box = detect(model, smear).boxes[0]
    cls = detect(model, smear).classes[0]
    for method in METHOD_NAMES:
        e = explain_box(model, name, smear, box, cls, method=method, display_hw=(240, 320))
        assert e.cam.shape == (240, 320) and np.isfinite(e.cam).all() and e.cam.max() > 0, method
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())  # pytorch-grad-cam's hooks are gone


def test_another_threads_forward_is_not_recorded_while_explaining(shipped, smear):
    """The CAM hooks exist only under the model's forward lock: a concurrent detection waits."""
    name = shipped.baseline_name()
    model = shipped.get(name)
    det = detect(model, smear)
    alone = explain_box(model, name, smear, det.boxes[0], det.classes[0])
    other = load_image(ROOT / "assets" / "examples" / "synthetic_smear_2.jpg")
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            detect(model, other, imgsz=416)

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        together = [explain_box(model, name, smear, det.boxes[0], det.classes[0]) for _ in range(3)]
    finally:
        stop.set()
        worker.join()
    assert all(np.allclose(t.cam, alone.cam, atol=1e-5) for t in together)


def test_levels_after_the_candidates_own_get_no_gradient(shipped, smear):
    """In YOLOv8's neck, P4 and P5 outputs are computed from P3's: a P3 candidate's score does not
    depend on them, so a gradient CAM there is empty, and the table says which level it came from."""
    name = shipped.baseline_name()
    model = shipped.get(name)
    det = detect(model, smear)
    wbc = det.boxes[det.classes.index("WBC")]
    at_p3 = explain_box(model, name, smear, wbc, "WBC", levels=("P3",))
    assert at_p3.level == "P3" and at_p3.cam.max() > 0
    assert explain_box(model, name, smear, wbc, "WBC", levels=("P5",)).cam.max() == 0


def _explanation(cam, energy, share, confidence=0.8, method="Grad-CAM"):
    from attention_lens.analysis.explain import Explanation

    return Explanation("m", np.asarray(cam, dtype=float), np.zeros(4), "RBC", method, None, confidence, 0.9, "P3",
                       energy, share, 1.0)


def test_the_notes_say_when_an_explanation_cannot_be_trusted():
    """Issue 35: LayerCAM and friends read 'energy in box 1.00' for every model; a flat EigenGradCAM
    map, EigenCAM's missing target and a 0.004 candidate went without a word."""
    from attention_lens.analysis.explain import energy_ratio, explanation_notes

    spread = np.linspace(0, 1, 100).reshape(10, 10)
    assert explanation_notes(_explanation(spread, 0.4, 0.1)) == []
    assert energy_ratio(_explanation(spread, 0.4, 0.1)) == pytest.approx(4.0)
    assert explanation_notes(_explanation(np.full((10, 10), 0.11), 0.11, 0.11))[0].startswith("flat map")
    assert explanation_notes(_explanation(spread, 0.99, 0.1))[0].startswith("the map never leaves the box")
    assert "not class-targeted" in explanation_notes(_explanation(spread, 0.4, 0.1, None, "EigenCAM"))[0]
    assert "scores 0.004, below the 0.25" in explanation_notes(_explanation(spread, 0.4, 0.1, 0.004))[0]
