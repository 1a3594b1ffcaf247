"""Data-set evaluation: constructed cases with known answers, and agreement with ultralytics' val."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from components.analysis.evaluation import (
    EvaluationError,
    class_map,
    coco_eval,
    coco_matches,
    compare_objects,
    disagreement,
    metrics_of,
    paired_bootstrap,
    size_of,
    verdict,
)
from components.experiments.datasets import Split


def split_of(boxes_per_image, classes=("a", "b"), size=(400, 400)):
    boxes = [np.asarray(b, dtype=float).reshape(-1, 5) for b in boxes_per_image]
    return Split("t", "test", list(classes), [f"{i}.jpg" for i in range(len(boxes))], [size] * len(boxes), boxes)


def dets_from(gt_rows, score=0.9, shift=0.0):
    """Detections equal to ground-truth rows (class, x1, y1, x2, y2), optionally shifted in x."""
    return np.array([[r[1] + shift, r[2], r[3] + shift, r[4], score, r[0]] for r in gt_rows], dtype=float).reshape(-1, 6)


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


def test_bootstrap_of_identical_models_is_zero_and_of_a_uniformly_better_one_excludes_zero():
    rng = np.random.default_rng(1)
    images, good, bad = [], [], []
    for _ in range(20):
        x = rng.uniform(0, 250)
        rows = [(0, x, x, x + 100, x + 100)]
        images.append(rows)
        good.append(dets_from(rows))
        bad.append(dets_from(rows, shift=30))  # IoU 0.54: found at 0.5 only
    split = split_of(images, classes=("a",))
    e_bad, e_good = coco_matches(split, bad), coco_matches(split, good)
    same = paired_bootstrap(e_bad, e_bad, n=50)
    assert same["mAP50-95"] == {"delta": 0.0, "low": 0.0, "high": 0.0, "rounds": 50, "level": 0.95}
    better = paired_bootstrap(e_bad, e_good, n=50)["mAP50-95"]
    assert better["delta"] == pytest.approx(0.9) and better["low"] > 0


def test_bootstrap_interval_covers_the_true_difference_about_as_often_as_it_says():
    """Synthetic population: each image holds one object the model finds with probability 0.7
    and the reference with 0.5 (independently), so the expected Δ mAP50 (one class, one object
    per image, all at one score) is the difference of recalls. 40 draws of 40 images: a 95%
    interval should miss the truth in about 2 of them; more than 6 misses is implausible."""
    rng = np.random.default_rng(0)
    misses = 0
    for draw in range(40):
        images, ref, model = [], [], []
        for _ in range(40):
            rows = [(0, 10, 10, 110, 110)]
            images.append(rows)
            ref.append(dets_from(rows) if rng.random() < 0.5 else np.zeros((0, 6)))
            model.append(dets_from(rows) if rng.random() < 0.7 else np.zeros((0, 6)))
        split = split_of(images, classes=("a",))
        ci = paired_bootstrap(coco_matches(split, ref), coco_matches(split, model), n=200, seed=draw)["mAP50"]
        misses += not (ci["low"] <= 0.2 <= ci["high"])
    assert misses <= 6, misses


def test_verdicts_in_plain_words():
    assert verdict(0.02, -0.01, 0.05, 0.01) == "within image sampling noise"
    assert verdict(0.02, 0.005, 0.035, 0.028) == "within seed noise"
    assert verdict(0.08, 0.05, 0.11, 0.028) == "larger than both"
    assert verdict(0.08, 0.05, 0.11, None) == "beyond image sampling noise (seed noise unknown)"


def test_a_model_predicting_other_classes_is_refused_by_name():
    assert class_map({0: "RBC", 1: "WBC", 2: "Platelets"}, ["Platelets", "RBC", "WBC"], "m") == {2: 0, 0: 1, 1: 2}
    with pytest.raises(EvaluationError, match="kangaroo.*not the data set's classes"):
        class_map({0: "kangaroo"}, ["RBC"], "m")


def test_map_agrees_with_ultralytics_val_on_the_bccd_test_split(bccd_yolo):
    """The same shipped model, split and image size through pycocotools here and ultralytics'
    own validator. They differ in letterboxing (one image vs rect batches) and AP interpolation;
    measured here 0.514 vs 0.501 for the baseline."""
    from pathlib import Path

    from components.analysis.evaluation import predict_split
    from components.experiments.datasets import read_split
    from components.experiments.evaluate import validate
    from components.modeling.checkpoints import load_model

    model = load_model(Path(__file__).resolve().parents[2] / "weights" / "yolov8n-baseline-s0" / "best.pt")
    split = read_split(bccd_yolo, "test")
    ours = metrics_of(coco_eval(split, predict_split(model, split, 320)[0]), split)
    theirs = validate(model, bccd_yolo, "test", 320)
    assert ours["mAP50-95"] == pytest.approx(theirs["mAP50-95"], abs=0.02)
    assert ours["mAP50"] == pytest.approx(theirs["mAP50"], abs=0.03)


def pycocotools_resampled(e, idx):
    """The independent reference: pycocotools' own accumulate over the images ``idx`` (with
    repeats), at area "all" and the largest maxDets, from the per-image matches it made."""
    import copy

    k_n, a_n, i_n = len(e.params.catIds), len(e.params.areaRng), len(e.params.imgIds)
    r, p = copy.copy(e), copy.copy(e.params)
    p.imgIds = [e.params.imgIds[i] for i in idx]
    p.areaRng, p.areaRngLbl, p.maxDets = [e.params.areaRng[0]], ["all"], [e.params.maxDets[-1]]
    r.params = r._paramsEval = p
    r.evalImgs = [e.evalImgs[k * a_n * i_n + i] for k in range(k_n) for i in idx]
    r.accumulate()
    prec = r.eval["precision"][:, :, :, 0, 0]
    valid, valid50 = prec[prec > -1], prec[0][prec[0] > -1]
    return (float(valid.mean()) if valid.size else float("nan"), float(valid50.mean()) if valid50.size else float("nan"))


def test_resampled_ap_equals_pycocotools_accumulate_on_the_stored_bccd_detections():
    """Real detections (the zoo's stored BCCD test-split numbers, confidence 0.001, up to 300 per
    image): the vectorised accumulation gives pycocotools' AP for the whole split, for resamples
    with repeats, and for an image set with a class missing."""
    from components.analysis.evaluation import Resampler

    split, _, dets, _ = stored_bccd()
    e = coco_matches(split, dets["yolov8n-ema-neck-s0"])
    ours = Resampler(e)
    rng = np.random.default_rng(0)
    no_platelets = [i for i, b in enumerate(split.boxes) if not (b[:, 0] == split.classes.index("Platelets")).any()]
    cases = [np.arange(len(split.images)), *(rng.integers(0, len(split.images), len(split.images)) for _ in range(8)),
             np.asarray(no_platelets[:5] * 3)]
    for idx in cases:
        with contextlib.redirect_stdout(io.StringIO()):
            want = pycocotools_resampled(e, idx)
        assert ours(idx) == pytest.approx(want, abs=1e-12)
    # The whole split: the metrics' own mAP (faster-coco-eval, another implementation).
    assert ours(cases[0])[0] == pytest.approx(metrics_of(coco_eval(split, dets["yolov8n-ema-neck-s0"]), split)["mAP50-95"],
                                             abs=1e-12)


def test_resampled_ap_of_a_class_without_detections_is_zero_and_without_objects_is_left_out():
    from components.analysis.evaluation import Resampler

    split = split_of([[(0, 10, 10, 110, 110), (1, 200, 200, 300, 300)], [(0, 50, 50, 150, 150)]])
    e = coco_matches(split, [dets_from([(0, 10, 10, 110, 110)]), dets_from([(0, 50, 50, 150, 150)])])  # class b never detected
    assert Resampler(e)(np.array([0, 1])) == pytest.approx(pycocotools_resampled(e, np.array([0, 1])), abs=1e-12)
    assert Resampler(e)(np.array([0, 1])) == pytest.approx((0.5, 0.5))  # a: 1.0, b: 0.0
    assert Resampler(e)(np.array([1, 1])) == pytest.approx((1.0, 1.0))  # no b object in these images: b not averaged


def stored_bccd():
    from pathlib import Path

    from components.analysis.dataset_report import load_detections

    stored = Path(__file__).resolve().parents[2] / "weights" / "evaluation" / "bccd-test.json.gz"
    if not stored.is_file():
        pytest.skip("the zoo's stored detections are not here")
    return load_detections(stored)


@pytest.mark.parametrize("min_score", [0.0, 0.25])
def test_metrics_equal_pycocotools_own_evaluation_on_the_stored_bccd_detections(min_score):
    """The metrics come from faster-coco-eval; pycocotools' own evaluate + accumulate of the same
    detections (at the same areas and maxDets) is the independent reference: every precision and
    recall value, hence every AP by size and class, agrees."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from components.analysis.evaluation import AREAS, MAX_DETS, _dataset

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


def test_several_models_in_one_pass_read_each_image_once_and_detect_as_each_alone(tiny_bccd, monkeypatch):
    """Two shipped models over a split in one pass: every image is decoded once (not once per
    model), and each model's rows are its own detections on that image (``detect`` called
    directly, at the pass's settings), mapped to the split's classes."""
    from pathlib import Path

    from components.analysis import images
    from components.analysis.evaluation import MAX_DETS, predict_models
    from components.analysis.inference import detect
    from components.experiments.datasets import read_split
    from components.modeling.checkpoints import load_model

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
            want = detect(model, real(path), conf=0.001, iou=0.7, imgsz=320, max_det=MAX_DETS)
            np.testing.assert_allclose(rows[:, :5], np.column_stack([want.boxes, want.scores]), atol=1e-4)
            assert [split.classes[int(c)] for c in rows[:, 5]] == want.classes


def test_resampled_ap_equals_pycocotools_with_ignored_detections_and_tied_scores():
    """Detections on a crowd region are ignored by pycocotools (neither true nor false
    positives), and equal scores keep the order the images were drawn in: the resampled AP still
    equals pycocotools' accumulate, for random resamples of random detections."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from components.analysis.evaluation import MAX_DETS, Resampler

    rng = np.random.default_rng(3)
    images, gt_anns, dt_anns = [], [], []
    for i in range(1, 13):
        images.append({"id": i, "height": 400, "width": 400})
        for crowd in (0, 0, 0, 1):
            x, y = rng.uniform(0, 300, 2)
            gt_anns.append({"id": len(gt_anns) + 1, "image_id": i, "category_id": 1, "iscrowd": crowd,
                            "bbox": [x, y, 80, 80], "area": 6400.0})
            for _ in range(3):  # near, shifted and far copies, scores on a coarse grid (many ties)
                dx, dy = rng.normal(0, 15, 2)
                dt_anns.append({"id": len(dt_anns) + 1, "image_id": i, "category_id": 1,
                                "bbox": [x + dx, y + dy, 80, 80], "area": 6400.0,
                                "score": float(rng.integers(1, 6)) / 5})
    gt, dt = COCO(), COCO()
    gt.dataset = {"images": images, "categories": [{"id": 1, "name": "a"}], "annotations": gt_anns}
    dt.dataset = {"images": images, "categories": [{"id": 1, "name": "a"}], "annotations": dt_anns}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt.createIndex()
        e = COCOeval(gt, dt, "bbox")
        e.params.maxDets, e.params.areaRng, e.params.areaRngLbl = [MAX_DETS], [[0, 1e10]], ["all"]
        e.evaluate()
    assert any(np.asarray(x["dtIgnore"]).any() for x in e.evalImgs if x)  # the case is what it claims
    ours = Resampler(e)
    for idx in [np.arange(12), *(rng.integers(0, 12, 12) for _ in range(20))]:
        with contextlib.redirect_stdout(io.StringIO()):
            want = pycocotools_resampled(e, idx)
        assert ours(idx) == pytest.approx(want, abs=1e-12)
