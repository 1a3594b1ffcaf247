"""The comparison handler on BCCD test images with small models trained by the pipeline."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attention_lens.analysis.compare import CompareError, compare
from attention_lens.analysis.images import ImageError
from attention_lens.app.errors import UserError
from attention_lens.app.compare_handlers import run_compare
from attention_lens.modeling.catalog import ModelStore, read_manifest

CONF = 0.001  # one-epoch fixtures are unsure of everything; a low threshold still gives real boxes


@pytest.fixture(scope="module")
def store(tiny_weights):
    s = ModelStore(read_manifest(tiny_weights))
    s.load_all()
    return s


def ultralytics_predict(checkpoint, image_path, imgsz, conf, iou):
    """Reference: ultralytics' own predictor on the same checkpoint (a trusted, locally made file)."""
    from ultralytics import YOLO

    import attention_lens.modeling.yolo  # noqa: F401
    from attention_lens.analysis.images import load_image

    bgr = np.ascontiguousarray(load_image(image_path)[..., ::-1])  # same pixels: JPEG decoders differ slightly
    r = YOLO(str(checkpoint)).predict(bgr, imgsz=imgsz, conf=conf, iou=iou, verbose=False, rect=True,
                                      device="cpu")[0]
    return r.boxes.xyxy.numpy(), r.boxes.conf.numpy()


def test_detections_are_in_original_pixels_inside_the_image(store, bccd_test_images):
    image = bccd_test_images[0]
    result = compare(image, {n: store.get(n) for n in store.names}, conf=CONF, iou=0.7, imgsz=320)
    w, h = Image.open(image).size
    for name in store.names:
        det = result.results[name]
        assert len(det.boxes) > 0 and det.image_shape == (h, w)
        assert (det.boxes[:, [0, 2]] >= 0).all() and (det.boxes[:, [0, 2]] <= w).all()
        assert (det.boxes[:, [1, 3]] >= 0).all() and (det.boxes[:, [1, 3]] <= h).all()


@pytest.fixture(scope="module")
def shipped_store():
    weights = Path(__file__).resolve().parents[2] / "weights"
    entries = read_manifest(weights)
    if not entries:
        pytest.skip("no shipped models in weights/")
    return ModelStore(entries)


def test_shipped_baseline_boxes_equal_ultralytics_predict_in_original_pixels(shipped_store, bccd_test_images):
    """A trained model has well separated scores, so its boxes can be compared one to one with
    ultralytics' own predictor (rect letterbox, same decoded pixels)."""
    name = shipped_store.baseline_name()
    for image in bccd_test_images[:3]:
        det = compare(image, {"a": shipped_store.get(name), "b": shipped_store.get(name)}, conf=0.25).results["a"]
        ref_boxes, ref_conf = ultralytics_predict(shipped_store.entries[name].checkpoint, image, 320, 0.25, 0.7)
        assert len(det.boxes) >= 5 and len(ref_boxes) == len(det.boxes)
        order, ref_order = np.argsort(-det.scores), np.argsort(-ref_conf)
        np.testing.assert_allclose(det.boxes[order], ref_boxes[ref_order], atol=0.5)
        np.testing.assert_allclose(det.scores[order], ref_conf[ref_order], atol=1e-3)


def test_diff_categories_are_consistent_and_exact_for_identical_models(store, bccd_test_images):
    baseline = store.get("baseline")
    same = compare(bccd_test_images[1], {"a": baseline, "b": baseline}, conf=CONF, reference="a")
    b_rows = [d for d in same.detections if d["model"] == "b"]
    assert b_rows and all(d["diff"] == "matched" for d in b_rows)

    models = {n: store.get(n) for n in store.names}
    result = compare(bccd_test_images[1], models, conf=CONF, reference="baseline")
    ref_n = len(result.results["baseline"].classes)
    for name in ("ema", "coordatt"):
        rows = [d for d in result.detections if d["model"] == name]
        matched = sum(d["diff"] == "matched" for d in rows)
        only = sum(d["diff"] == "only here" for d in rows)
        missed = sum(d["diff"] == "missed" for d in rows)
        assert matched + only == len(result.results[name].classes)
        assert matched + missed == ref_n
        row = result.table.set_index("model").loc[name]
        assert (row["only here"], row["missed vs reference"]) == (only, missed)


def test_every_model_gets_an_image_of_the_original_size_and_a_table_row(store, bccd_test_images):
    items, table, payload, by_model, names = run_compare(store, str(bccd_test_images[2]), store.names, None,
                                                         CONF, 0.7, 320, None)
    w, h = Image.open(bccd_test_images[2]).size
    assert names == store.names and list(table["model"]) == store.names
    assert all(im.shape == (h, w, 3) for im, _ in items)
    assert payload["reference"] == "baseline" and payload["image_size"] == [h, w]
    assert {d["model"] for d in payload["detections"]} >= set(store.names)
    for cls in ("Platelets", "RBC", "WBC"):
        assert cls in table.columns


def test_models_with_different_class_lists_compare(store, bccd_test_images):
    import copy

    other = copy.deepcopy(store.get("ema"))
    other.names = {0: "platelet", 1: "red", 2: "white"}
    result = compare(bccd_test_images[0], {"baseline": store.get("baseline"), "renamed": other}, conf=CONF)
    assert {"platelet", "red", "white", "Platelets", "RBC", "WBC"} <= set(result.table.columns)
    renamed = [d for d in result.detections if d["model"] == "renamed" and d["diff"] != "missed"]
    assert renamed and all(d["diff"] == "only here" for d in renamed)  # no class in common: nothing matches


def test_bad_requests_give_user_messages(store, bccd_test_images, tmp_path):
    with pytest.raises(CompareError, match="at least 2"):
        compare(bccd_test_images[0], {"baseline": store.get("baseline")})
    with pytest.raises(ImageError):
        compare(b"not an image", {n: store.get(n) for n in store.names})
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(UserError, match="Upload refused"):
        run_compare(store, str(bccd_test_images[0]), ["baseline"], [str(evil)], 0.25, 0.7, 320, None)
    with pytest.raises(UserError, match="at least 2"):
        run_compare(store, str(bccd_test_images[0]), ["baseline"], [], 0.25, 0.7, 320, None)


def test_uploaded_checkpoint_joins_the_comparison(store, tiny_weights, bccd_test_images):
    upload = tiny_weights / "ema" / "best.pt"
    items, table, payload, by_model, names = run_compare(store, str(bccd_test_images[0]), ["baseline"], [str(upload)],
                                                         CONF, 0.7, 320, None)
    assert names == ["baseline", "ema (yolov8n, EMA)"]  # the run name from its train args, base, attention


def test_two_uploads_called_best_pt_are_told_apart(store, tiny_weights, bccd_test_images, tmp_path):
    uploads = [tiny_weights / "baseline" / "best.pt", tiny_weights / "coordatt" / "best.pt"]
    names = run_compare(store, str(bccd_test_images[0]), [], [str(u) for u in uploads], CONF, 0.7, 320, None)[4]
    assert names == ["baseline (yolov8n, no attention)", "coordatt (yolov8n, CoordAtt)"]
    # the same bytes get the same name; the same run name in other bytes gets a short hash
    import hashlib

    import torch

    copy, other = tmp_path / "best.pt", tmp_path / "other" / "best.pt"
    copy.write_bytes(uploads[0].read_bytes())
    other.parent.mkdir()
    ckpt = torch.load(uploads[0], weights_only=False)  # the test's own trusted fixture
    with torch.no_grad():
        next(ckpt["model"].parameters()).add_(1.0)
    torch.save(ckpt, other)
    again = run_compare(store, str(bccd_test_images[0]), [], [str(copy), str(other)], CONF, 0.7, 320, None)[4]
    digest = hashlib.sha256(other.read_bytes()).hexdigest()[:6]
    assert again == ["baseline (yolov8n, no attention)", f"baseline #{digest} (yolov8n, no attention)"]


def test_exif_rotated_jpeg_is_compared_upright(store, bccd_test_images, tmp_path):
    upright = Image.open(bccd_test_images[0]).convert("RGB")
    stored = upright.rotate(90, expand=True)  # what a camera writes, with EXIF orientation 8 to undo it
    exif = Image.Exif()
    exif[0x0112] = 8
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif.tobytes(), quality=98)
    models = {"baseline": store.get("baseline"), "ema": store.get("ema")}
    rotated = compare(buf.getvalue(), models, conf=CONF)
    plain = compare(bccd_test_images[0], models, conf=CONF)
    assert rotated.results["baseline"].image_shape == plain.results["baseline"].image_shape
    a, b = rotated.results["baseline"], plain.results["baseline"]
    best_a, best_b = a.boxes[np.argmax(a.scores)], b.boxes[np.argmax(b.scores)]
    np.testing.assert_allclose(best_a, best_b, atol=8)  # same object, JPEG re-encoding aside


@pytest.mark.parametrize("make", [
    lambda: Image.new("RGB", (1, 1), (200, 30, 30)),
    lambda: Image.fromarray(np.full((40, 60), 50000, np.uint16)),
    lambda: Image.new("RGB", (60, 40), (200, 30, 30)).convert("CMYK"),
    lambda: Image.new("RGBA", (60, 40), (200, 30, 30, 128)),
    lambda: Image.new("L", (60, 40), 90),
], ids=["1x1", "16-bit", "cmyk", "rgba", "gray"])
def test_extreme_images_give_correct_output_in_their_own_size(store, make):
    im = make()
    buf = io.BytesIO()
    im.save(buf, "JPEG" if im.mode == "CMYK" else "PNG")
    result = compare(buf.getvalue(), {n: store.get(n) for n in store.names}, conf=CONF)
    h, w = im.size[1], im.size[0]
    for drawn, _ in result.images:
        assert drawn.shape == (h, w, 3)
    for det in result.results.values():
        assert det.image_shape == (h, w)
        if len(det.boxes):
            assert (det.boxes[:, [0, 2]] <= w).all() and (det.boxes[:, [1, 3]] <= h).all()


def test_non_detection_checkpoint_upload_is_refused(store, bccd_test_images, tmp_path):
    import torch
    from ultralytics.nn.tasks import ClassificationModel

    cls_model = ClassificationModel("yolov8n-cls.yaml", nc=3, verbose=False)
    path = tmp_path / "classifier.pt"
    torch.save({"model": cls_model}, path)
    with pytest.raises(UserError, match="not a detection model"):
        run_compare(store, str(bccd_test_images[0]), ["baseline"], [str(path)], 0.25, 0.7, 320, None)


def test_the_reference_defaults_to_a_model_without_attention_whatever_its_name():
    from pathlib import Path

    from attention_lens.app.compare_tab import reference_choices
    from attention_lens.modeling.catalog import Entry, ModelStore

    store = ModelStore([Entry("ema-x", Path("a.pt"), "yolov8n", "EMA", "neck_outputs"),
                        Entry("plain-model", Path("b.pt"), "yolov8n"),
                        Entry("my-baseline-with-se", Path("c.pt"), "yolov8n", "SE", "neck_outputs")])
    assert reference_choices(store, ["my-baseline-with-se", "ema-x", "plain-model"], None)["value"] == "plain-model"
    assert reference_choices(store, ["ema-x", "plain-model"], "ema-x")["value"] == "ema-x"  # a kept pick
    assert reference_choices(store, ["ema-x"], "gone")["value"] == "ema-x"


def test_an_image_where_nothing_is_found_gets_a_note(store, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), (128, 128, 128)).save(blank)
    payload = run_compare(store, str(blank), ["baseline", "ema"], [], 0.95, 0.7, 320, None)[2]
    assert not payload["detections"]
    assert "0.95" in payload["note"] and "Platelets" in payload["note"]


def test_the_header_names_the_shipped_models_classes():
    from pathlib import Path

    from attention_lens.app.compare_handlers import shipped_domain

    text = shipped_domain(ModelStore(read_manifest(Path(__file__).resolve().parents[2] / "weights")))
    assert "bccd-yolo" in text and "Platelets, RBC, WBC" in text
