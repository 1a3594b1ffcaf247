"""Data-set evaluation: constructed cases with known answers, and agreement with ultralytics' val."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from coco_cases import dets_from, split_of, stored_bccd

from attention_lens.evaluation.coco import (
    coco_eval,
    coco_matches,
    compare_objects,
    disagreement,
    metrics_of,
    size_of,
)


def test_size_buckets_use_cocos_area_ranges_in_image_pixels():
    assert [size_of(a) for a in (31 * 31, 32 * 32 - 1, 32 * 32, 96 * 96 - 1, 96 * 96)] == \
        ["small", "small", "medium", "medium", "large"]
    # One object per bucket; the detector finds the small and large ones exactly and misses the medium.
    small, medium, large = (0, 10, 10, 30, 30), (0, 100, 100, 150, 150), (0, 200, 200, 350, 350)
    split = split_of([[small, medium, large]], classes=("a",))
    e = coco_eval(split, [dets_from([small, large])])
    m = metrics_of(e, split)
    assert m["AP small"] == pytest.approx(1.0) and m["AP large"] == pytest.approx(1.0)
    assert m["AP medium"] == pytest.approx(0.0)


def test_perfect_detections_score_one_and_shifted_ones_lose_the_strict_thresholds():
    rows = [(0, 10, 10, 110, 110), (1, 200, 200, 300, 300)]
    split = split_of([rows])
    assert metrics_of(coco_eval(split, [dets_from(rows)]), split)["mAP50-95"] == pytest.approx(1.0)
    # Shifted by 20 px of 100: IoU = 80*100 / (120*100) = 0.667, a hit at IoU 0.50..0.65 (4 of 10).
    m = metrics_of(coco_eval(split, [dets_from(rows, shift=20)]), split)
    assert m["mAP50"] == pytest.approx(1.0) and m["mAP50-95"] == pytest.approx(0.4)


def test_found_and_missed_objects_against_a_reference_and_false_positives():
    gt = [(0, 0, 0, 50, 50), (0, 100, 0, 150, 50), (0, 200, 0, 250, 50), (0, 300, 0, 350, 50)]
    split = split_of([gt], classes=("a",))
    ghost = np.array([[0, 300, 50, 350, 0.9, 0]])  # matches nothing
    ref = np.vstack([dets_from(gt[:2]), ghost, ghost + [0, 60, 0, 60, 0, 0]])  # objects 0, 1 and two FPs
    model = np.vstack([dets_from(gt[1:3]), dets_from([gt[3]], score=0.1)])  # 1, 2; object 3 below threshold
    against = compare_objects(split, coco_matches(split, [ref], 0.25), coco_matches(split, [model], 0.25))
    assert [o["category"] for o in against.objects] == ["only reference", "both", "only model", "neither"]
    assert against.counts == {"both": 1, "only reference": 1, "only model": 1, "neither": 1}
    assert against.fp_reference.tolist() == [2] and against.fp_model.tolist() == [0]
    row = disagreement(split, against)[0]
    assert (row["only reference"], row["only model"], row["FP removed"], row["score"]) == (1, 1, 2, 4)
    m = metrics_of(coco_eval(split, [ref], 0.25), split, coco_matches(split, [ref], 0.25))
    assert (m["P"], m["R"]) == (pytest.approx(2 / 4), pytest.approx(2 / 4))


def test_map_agrees_with_ultralytics_val_on_the_bccd_test_split(bccd_yolo):
    """The same shipped model, split and image size through pycocotools here and ultralytics'
    own validator: two definitions of mAP (interpolation, detections counted, where boxes are
    matched) on the same detections, within 0.02 of each other on the zoo (docs/PERFORMANCE.md,
    section 13). The validator leaves the process's torch thread count as it found it (its
    device selection lowers it to cores - 1 for the process)."""
    from pathlib import Path

    from attention_lens.evaluation.predict import predict_models
    from attention_lens.data.datasets import read_split
    from attention_lens.experiments.evaluate import validate
    from attention_lens.modeling.load import load_model
    from ultralytics.utils import NUM_THREADS

    model = load_model(Path(__file__).resolve().parents[2] / "weights" / "yolov8n-baseline-s0" / "best.pt")
    split = read_split(bccd_yolo, "test")
    ours = metrics_of(coco_eval(split, predict_models({"baseline": model}, split, 320)["baseline"][0]), split)
    threads = torch.get_num_threads()
    torch.set_num_threads(NUM_THREADS + 1)  # not the count its device selection sets
    try:
        theirs = validate(model, bccd_yolo, "test", 320)
        assert torch.get_num_threads() == NUM_THREADS + 1  # the process's setting, as it was
    finally:
        torch.set_num_threads(threads)
    assert ours["mAP50-95"] == pytest.approx(theirs["mAP50-95"], abs=0.02)
    assert ours["mAP50"] == pytest.approx(theirs["mAP50"], abs=0.03)


@pytest.mark.parametrize("min_score", [0.0, 0.25])
def test_metrics_equal_pycocotools_own_evaluation_on_the_stored_bccd_detections(min_score):
    """The metrics come from faster-coco-eval; pycocotools' own evaluate + accumulate of the same
    detections (at the same areas and maxDets) is the independent reference: every precision and
    recall value, hence every AP by size and class, agrees."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from attention_lens.evaluation.coco import AREAS, MAX_DETS, _dataset

    split, _, dets, _ = stored_bccd()
    for name in ("yolov8n-baseline-s0", "yolov5nu-baseline-s0", "yolov8n-ema-neck-s0"):
        gt, dt = COCO(), COCO()
        gt.dataset, dt.dataset = _dataset(split), _dataset(split, dets[name], min_score)
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            dt.createIndex()
            ref = COCOeval(gt, dt, "bbox")
            ref.params.maxDets = [1, 10, MAX_DETS]
            ref.params.areaRng = [[0, 1e10]] + [list(r) for r in AREAS.values()]
            ref.params.areaRngLbl = ["all", *AREAS]
            ref.evaluate()
            ref.accumulate()
        ours = coco_eval(split, dets[name], min_score)
        for key in ("precision", "recall"):
            np.testing.assert_allclose(np.asarray(ours.eval[key]), ref.eval[key], rtol=0, atol=1e-12)
