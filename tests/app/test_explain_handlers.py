"""The explain handlers: naming a detection, picking one by a click, one explanation per model."""
from __future__ import annotations

import pytest

from attention_lens.app.explain_handlers import detection_at, detection_choices, parse_detection
from attention_lens.app.errors import UserError

PAYLOAD = {"reference": "base", "detections": [
    {"model": "base", "class": "RBC", "confidence": 0.6, "box": [10, 10, 110, 110], "diff": "reference"},
    {"model": "base", "class": "WBC", "confidence": 0.9, "box": [40, 40, 60, 60], "diff": "reference"},
    {"model": "other", "class": "RBC", "confidence": 0.99, "box": [200, 200, 220, 220], "diff": "only here"},
    {"model": "other", "class": "RBC", "confidence": None, "box": [10, 10, 110, 110], "diff": "missed"}]}


def test_the_picker_lists_the_reference_detections_strongest_first():
    choices = detection_choices(PAYLOAD)
    assert [v for _label, v in choices] == ["WBC @ 40.0,40.0,60.0,60.0", "RBC @ 10.0,10.0,110.0,110.0"]
    assert choices[0][0].startswith("WBC 0.90")


def test_a_click_picks_the_smallest_box_under_it_else_the_nearest():
    assert detection_at(PAYLOAD, 50, 50) == "WBC @ 40.0,40.0,60.0,60.0"  # inside both: the smaller
    assert detection_at(PAYLOAD, 20, 100) == "RBC @ 10.0,10.0,110.0,110.0"
    assert detection_at(PAYLOAD, 400, 400) == "RBC @ 10.0,10.0,110.0,110.0"  # nearest centre (60, 60 vs 50, 50)
    assert detection_at({}, 1, 1) is None


@pytest.mark.parametrize("text", ["", None, "RBC", "RBC @ 1,2,3", "RBC @ 5,5,1,1", "RBC @ nan,1,2,3",
                                  "@ 1,2,3,4", "RBC @ 1,2,3,4,5"])
def test_a_malformed_detection_is_refused_with_a_message(text):
    with pytest.raises(UserError):
        parse_detection(text)


def test_a_detection_round_trips():
    assert parse_detection("Platelets @ 1.5, 2, 30.25,40") == ("Platelets", [1.5, 2.0, 30.25, 40.0])


def test_without_a_detection_the_first_models_strongest_is_explained_and_said_so(bccd_test_images):
    """Issue 35: /explain with only an image failed ("Pick a detection..."), against the README."""
    from pathlib import Path

    from attention_lens.analysis.images import load_image
    from attention_lens.app.explain_handlers import run_explain
    from attention_lens.modeling.catalog import ModelStore, read_manifest
    from attention_lens.runtime.detect import detect

    weights = Path(__file__).resolve().parents[2] / "weights"
    store = ModelStore(read_manifest(weights))
    picked = ["yolov8n-baseline-s0", "yolov8n-ema-neck-s0"]
    image = str(bccd_test_images[0])
    items, table = run_explain(store, image, picked, [], None, "Grad-CAM", ["P3", "P4", "P5"], 320)
    det = detect(store.get(picked[0]), load_image(image), conf=0.25, imgsz=320)  # independently: its top box
    top = int(det.scores.argmax())
    assert list(table["class"]) == [det.classes[top]] * 2
    assert set(table["detection"]) == {"yolov8n-baseline-s0's strongest detection (none was given)"}
    assert table["IoU with the chosen box"].iloc[0] == pytest.approx(1.0, abs=1e-3)  # its own candidate
    assert len(items) == 2


def test_a_model_with_self_attention_also_shows_where_the_box_cells_look(bccd_test_images):
    """Issue 33: beside yolo11n's CAM, its C2PSA's attention from the box's cells, with how much
    of it stays on the box; a model without self-attention says it has none."""
    import re
    from pathlib import Path

    from attention_lens.app.explain_handlers import run_explain
    from attention_lens.modeling.catalog import ModelStore, read_manifest

    weights = Path(__file__).resolve().parents[2] / "weights"
    store = ModelStore(read_manifest(weights))
    if "yolo11n-baseline-s0" not in store.names:
        pytest.skip("the shipped zoo is not here")
    picked = ["yolov8n-baseline-s0", "yolo11n-baseline-s0"]
    items, table = run_explain(store, str(bccd_test_images[0]), picked, [], None, "Grad-CAM", ["P3", "P4", "P5"], 320)
    captions = [c for _, c in items]
    assert len(items) == 3 and "self-attention from the box's" in captions[2] and "yolo11n" in captions[2]
    kept = dict(zip(table["model"], table["self-attention kept on the box (1 = none)"]))
    assert kept["yolov8n-baseline-s0"] == "—" and re.fullmatch(r"L10 SelfAttention \d+\.\d\dx", kept["yolo11n-baseline-s0"])


def test_each_models_explanation_is_let_go_before_the_next_model_runs(bccd_test_images, monkeypatch):
    """A request for many self-attention models at a large size must not hold two models' captured
    matrices at once: when the second model's explanation starts, the first one's is gone."""
    import weakref
    from pathlib import Path

    from attention_lens.analysis import explain
    from attention_lens.app.explain_handlers import run_explain
    from attention_lens.modeling.catalog import ModelStore, read_manifest

    store = ModelStore(read_manifest(Path(__file__).resolve().parents[2] / "weights"))
    if "yolo11n-baseline-s0" not in store.names:
        pytest.skip("the shipped zoo is not here")
    real, alive = explain.explain_box, []

    def watched(*args, **kwargs):
        alive.append(sum(ref() is not None for ref in refs))
        e = real(*args, **kwargs)
        refs.append(weakref.ref(e))
        return e

    refs = []
    monkeypatch.setattr(explain, "explain_box", watched)
    picked = ["yolo11n-baseline-s0", "yolo11n-baseline-s1"]
    items, table = run_explain(store, str(bccd_test_images[0]), picked, [], None, "Grad-CAM", ["P3", "P4", "P5"], 320)
    assert alive == [0, 0] and len(table) == 2
