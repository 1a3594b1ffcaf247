"""The paired bootstrap: known answers, coverage, and equality with pycocotools' accumulate."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from coco_cases import dets_from, found_or_missed, pycocotools_resampled, split_of, stored_bccd

from attention_lens.evaluation.bootstrap import Resampler, paired_bootstrap, verdict
from attention_lens.evaluation.coco import coco_eval, coco_matches, metrics_of


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
        split, ref, model = found_or_missed(rng)
        ci = paired_bootstrap(coco_matches(split, ref), coco_matches(split, model), n=200, seed=draw)["mAP50"]
        misses += not (ci["low"] <= 0.2 <= ci["high"])
    assert misses <= 6, misses


def test_verdicts_in_plain_words():
    assert verdict(0.02, -0.01, 0.05, 0.01) == "within image sampling noise"
    assert verdict(0.02, 0.005, 0.035, 0.028) == "within seed noise"
    assert verdict(0.08, 0.05, 0.11, 0.028) == "beyond image sampling and seed noise"
    assert verdict(0.08, 0.05, 0.11, 0.028, same_variant=True) == "another seed of the reference (its Δ is seed noise)"
    assert verdict(0.08, 0.05, 0.11, None) == "beyond image sampling noise (seed noise unknown)"


def test_resampled_ap_equals_pycocotools_accumulate_on_the_stored_bccd_detections():
    """Real detections (the zoo's stored BCCD test-split numbers, confidence 0.001, up to 300 per
    image): the vectorised accumulation gives pycocotools' AP for the whole split, for resamples
    with repeats, and for an image set with a class missing."""
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
    split = split_of([[(0, 10, 10, 110, 110), (1, 200, 200, 300, 300)], [(0, 50, 50, 150, 150)]])
    e = coco_matches(split, [dets_from([(0, 10, 10, 110, 110)]), dets_from([(0, 50, 50, 150, 150)])])  # class b never detected
    assert Resampler(e)(np.array([0, 1])) == pytest.approx(pycocotools_resampled(e, np.array([0, 1])), abs=1e-12)
    assert Resampler(e)(np.array([0, 1])) == pytest.approx((0.5, 0.5))  # a: 1.0, b: 0.0
    assert Resampler(e)(np.array([1, 1])) == pytest.approx((1.0, 1.0))  # no b object in these images: b not averaged


def test_resampled_ap_equals_pycocotools_with_ignored_detections_and_tied_scores():
    """Detections on a crowd region are ignored by pycocotools (neither true nor false
    positives), and equal scores keep the order the images were drawn in: the resampled AP still
    equals pycocotools' accumulate, for random resamples of random detections."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from attention_lens.evaluation.coco import MAX_DETS

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

