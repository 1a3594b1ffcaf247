"""ultralytics' definition of mAP from the evaluation pass's detections (analysis/ultralytics_metrics.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attention_lens.evaluation.ultralytics_metrics import ultralytics_metrics
from attention_lens.data.datasets import Split

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def one_image(gt: list, dets: list) -> tuple[Split, list[np.ndarray]]:
    split = Split("case", "test", ["a", "b"], ["x.jpg"], [(320, 320)], [np.asarray(gt, dtype=float).reshape(-1, 5)])
    return split, [np.asarray(dets, dtype=float).reshape(-1, 6)]


def test_a_perfect_detection_scores_ultralytics_ceiling_and_a_loose_one_only_its_thresholds():
    # ultralytics integrates a precision envelope that ends at recall 1 with a 101-point trapezoid:
    # a perfect result is 0.995, its known ceiling.
    split, dets = one_image([[0, 10, 10, 110, 110]], [[10, 10, 110, 110, 0.9, 0]])
    m = ultralytics_metrics(split, dets, 320)
    assert m["mAP50"] == pytest.approx(0.995) and m["mAP50-95"] == pytest.approx(0.995)
    # IoU 100*100 / (100*120) = 0.833: a match at 0.50 ... 0.80, seven thresholds of ten
    split, dets = one_image([[0, 10, 10, 110, 110]], [[10, 10, 130, 110, 0.9, 0]])
    m = ultralytics_metrics(split, dets, 320)
    assert m["mAP50"] == pytest.approx(0.995) and m["mAP50-95"] == pytest.approx(0.7 * 0.995)


def test_a_wrong_class_and_a_duplicate_are_false_positives():
    split, dets = one_image([[0, 10, 10, 110, 110]], [[10, 10, 110, 110, 0.9, 1]])
    assert ultralytics_metrics(split, dets, 320)["mAP50"] == 0.0
    # the duplicate scores lower: precision 1 until recall 1, the duplicate comes after
    split, dets = one_image([[0, 10, 10, 110, 110]], [[10, 10, 110, 110, 0.9, 0], [12, 12, 110, 110, 0.5, 0]])
    m = ultralytics_metrics(split, dets, 320)
    assert m["mAP50"] == pytest.approx(0.995) and m["P"] <= 1.0


def test_equal_to_yolo_val_on_the_same_checkpoints_split_and_size(bccd_yolo):
    """Issues 34 and 35: the Evaluate tab's mAP and ultralytics' differed by 0.01-0.02 (and by 0.03
    on a user's data set). ``yolo val`` on the checkpoint file is the reference a user has."""
    from ultralytics import YOLO

    from attention_lens.evaluation.predict import predict_models
    from attention_lens.data.datasets import read_split
    from attention_lens.experiments.evaluate import validate
    from attention_lens.modeling.load import load_model

    split = read_split(bccd_yolo, "test")
    names = ["yolov5nu-baseline-s0", "yolov8n-cbam-neck-s2"]  # the two furthest apart before
    models = {n: load_model(WEIGHTS / n / "best.pt") for n in names}
    ours = predict_models(models, split, 320)
    for n in names:
        mine = ultralytics_metrics(split, ours[n][0], 320)
        theirs = YOLO(WEIGHTS / n / "best.pt").val(data=str(bccd_yolo), split="test", imgsz=320, batch=1,
                                                    plots=False, verbose=False, device="cpu", workers=0).box
        assert mine["mAP50-95"] == pytest.approx(theirs.map, abs=5e-4), n
        assert mine["mAP50"] == pytest.approx(theirs.map50, abs=5e-4), n
        # the run summaries' validator gives the same (a model object, as train and evaluate hand it over)
        assert validate(models[n], bccd_yolo, "test", 320)["mAP50-95"] == pytest.approx(theirs.map, abs=5e-4)


def test_rtdetr_equal_to_its_own_validator_on_the_same_checkpoint_split_and_size(bccd_yolo):
    """RT-DETR's validator stretches each image to the square and reads the decoder's ranking (no
    NMS): the pass's detections reproduce its mAP (a narrow RT-DETR trained on BCCD by
    tests/fixtures/builtin/make_fixtures.py detr-bccd)."""
    from ultralytics import RTDETR

    from attention_lens.data.datasets import read_split
    from attention_lens.evaluation.predict import predict_models
    from attention_lens.modeling.load import load_model

    path = Path(__file__).resolve().parents[1] / "fixtures" / "builtin" / "detr-bccd-best.pt"
    split = read_split(bccd_yolo, "test")
    [(dets, _)] = predict_models({"detr": load_model(path)}, split, 320).values()
    mine = ultralytics_metrics(split, dets, 320)
    theirs = RTDETR(path).val(data=str(bccd_yolo), split="test", imgsz=320, batch=1, plots=False, verbose=False,
                              device="cpu", workers=0).box
    assert theirs.map > 0.1  # a model that finds the cells: the comparison means something
    assert mine["mAP50-95"] == pytest.approx(theirs.map, abs=5e-4)
    assert mine["mAP50"] == pytest.approx(theirs.map50, abs=5e-4)
