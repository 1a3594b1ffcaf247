"""TIDE's error types and their dAP (evaluation/error_types.py), on hand-made cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from attention_lens.evaluation.error_types import error_analysis
from attention_lens.data.datasets import Split

A, B = 0, 1
OBJECT = [10, 10, 110, 110]  # 100 x 100


def case(gt: list, dets: list) -> tuple[Split, list[np.ndarray]]:
    """One 400 x 400 image, classes a and b."""
    split = Split("case", "test", ["a", "b"], ["x.jpg"], [(400, 400)], [np.asarray(gt, dtype=float).reshape(-1, 5)])
    return split, [np.asarray(dets, dtype=float).reshape(-1, 6)]


def only(kind: str, counts: dict) -> bool:
    return all(v == (1 if k == kind else 0) for k, v in counts.items())


def test_a_prediction_equal_to_its_object_is_a_true_positive_not_missed():
    # tidecv's tracker reports "missed" on exactly this case
    e = error_analysis(*case([[A, *OBJECT]], [[*OBJECT, 0.9, A]]))
    assert e.ap == pytest.approx(1.0) and sum(e.counts.values()) == 0 and max(e.dap.values()) == 0


def test_a_background_box_and_a_both_error_each_cost_half_the_ap_and_their_fix_restores_it():
    tp = [*OBJECT, 0.5, A]
    # class a: a false positive above the true positive, so precision is 1/2 at every recall: AP 0.5
    e = error_analysis(*case([[A, *OBJECT]], [[300, 300, 340, 340, 0.9, A], tp]))
    assert only("background", e.counts) and e.ap == pytest.approx(0.5) and e.dap["background"] == pytest.approx(0.5)
    # other class, IoU 100x100 / (100x290) = 0.34: class a AP 1, class b (a detection, no object) AP 0
    e = error_analysis(*case([[A, *OBJECT]], [[10, 10, 110, 300, 0.9, B], tp]))
    assert only("both", e.counts) and e.ap == pytest.approx(0.5) and e.dap["both"] == pytest.approx(0.5)


def test_a_duplicate_between_two_true_positives_costs_precision_after_half_recall():
    # object 1 found at 0.9, found again at 0.7 (IoU 0.96), object 2 found at 0.5:
    # precision 1 up to recall 1/2 (51 of COCO's 101 points), 2/3 after (50 points)
    second = [200, 200, 300, 300]
    dets = [[*OBJECT, 0.9, A], [12, 12, 110, 110, 0.7, A], [*second, 0.5, A]]
    e = error_analysis(*case([[A, *OBJECT], [A, *second]], dets))
    assert only("duplicate", e.counts)
    assert e.ap == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert e.ap + e.dap["duplicate"] == pytest.approx(1.0)


def test_a_poorly_placed_box_is_a_localisation_error_that_its_fix_turns_into_the_true_positive():
    loose = [10, 10, 160, 160, 0.9, A]  # IoU 100x100 / 150x150 = 0.44: in [0.1, 0.5]
    e = error_analysis(*case([[A, *OBJECT]], [loose]))
    assert only("localisation", e.counts) and e.ap == 0.0
    assert e.dap["localisation"] == pytest.approx(1.0)
    assert e.counts["missed"] == 0  # the fix claims the object: not missed as well


def test_a_wrong_class_is_a_classification_error_fixed_by_its_class():
    e = error_analysis(*case([[A, *OBJECT]], [[*OBJECT, 0.9, B]]))
    assert only("classification", e.counts)
    # fixed, it is class a's true positive; class b keeps no detection and no object, so only a counts
    assert e.ap == 0.0 and e.dap["classification"] == pytest.approx(1.0)


def test_an_object_nobody_found_is_missed_and_its_fix_lowers_the_count_to_find():
    e = error_analysis(*case([[A, *OBJECT], [A, 200, 200, 300, 300]], [[*OBJECT, 0.9, A]]))
    assert only("missed", e.counts)
    assert e.ap == pytest.approx(0.5, abs=0.01)  # recall stops at 1/2: 51 of 101 points at precision 1
    assert e.ap + e.dap["missed"] == pytest.approx(1.0)


def test_two_fixes_claiming_one_object_make_one_true_positive():
    # two loose boxes on one object: fixed, the higher-scoring one finds it, the other is dropped
    dets = [[10, 10, 160, 160, 0.9, A], [10, 10, 165, 165, 0.8, A]]
    e = error_analysis(*case([[A, *OBJECT]], dets))
    assert e.counts["localisation"] == 2 and e.dap["localisation"] == pytest.approx(1.0)


def test_agrees_with_tidecv_on_a_zoo_model():
    """tidecv 1.0.1 (side venv, numpy 1.23) on the stored BCCD test detections of
    yolov8n-baseline-s0 (tests/fixtures/tidecv: the numbers and the script that made them): the
    same AP50 and counts of every type; dAP within 0.01 AP points (tidecv re-inserts fixed errors
    before the true positives, so tied scores rank differently after a fix)."""
    import json
    from pathlib import Path

    from attention_lens.evaluation.stored import load_detections

    root = Path(__file__).resolve().parents[2]
    tide = json.loads((root / "tests" / "fixtures" / "tidecv" / "reference.json").read_text())
    split, _, dets, _ = load_detections(root / "weights" / "evaluation" / "bccd-test.json.gz")
    e = error_analysis(split, dets[tide["model"]])
    names = {"Cls": "classification", "Loc": "localisation", "Both": "both", "Dupe": "duplicate",
             "Bkg": "background", "Miss": "missed"}
    assert e.ap * 100 == pytest.approx(tide["ap"], abs=1e-6)
    assert e.counts == {names[k]: v for k, v in tide["counts"].items()}
    for kind, dap in tide["dap"].items():
        assert e.dap[names[kind]] * 100 == pytest.approx(dap, abs=0.01), kind


def test_per_class_dap_charges_each_class_with_its_own_errors():
    # class a: a background box above its true positive (AP 0.5); class b: found cleanly (AP 1)
    gt = [[A, *OBJECT], [B, 200, 200, 300, 300]]
    dets = [[300, 300, 340, 340, 0.9, A], [*OBJECT, 0.5, A], [200, 200, 300, 300, 0.8, B]]
    e = error_analysis(*case(gt, dets))
    assert e.ap == pytest.approx(0.75) and e.dap["background"] == pytest.approx(0.25)
    assert e.dap_by_class["a"]["background"] == pytest.approx(0.5)
    assert e.dap_by_class["b"]["background"] == 0.0


def test_each_objects_outcome_in_tides_terms():
    from attention_lens.evaluation.error_types import object_outcomes

    gt = [[A, *OBJECT], [A, 10, 200, 60, 250], [A, 300, 10, 390, 100], [A, 330, 330, 390, 390]]
    dets = [[*OBJECT, 0.9, A],  # object 1: found (COCO's matching says so: the flags passed in)
            [10, 200, 60, 250, 0.7, B],  # object 2: the right box, another class
            [300, 10, 390, 180, 0.6, B],  # object 3: another class at IoU 90x90 / (90x170) = 0.53
            [0, 0, 1, 1, 0.05, A]]  # under the confidence of 0.5: not counted
    split, d = case(gt, dets)
    assert object_outcomes(split, d, 0.5, [True, False, False, False]) == "FCCM"  # object 4: nothing near
    # a box of its class at IoU 100x50 / (200x50 + 100x100 - 100x50) = 0.33: a localisation error;
    # the same box of another class: both
    split, d = case([[A, *OBJECT]], [[10, 10, 210, 60, 0.9, A]])
    assert object_outcomes(split, d, 0.5, [False]) == "L"
    split, d = case([[A, *OBJECT]], [[10, 10, 210, 60, 0.9, B]])
    assert object_outcomes(split, d, 0.5, [False]) == "B"


def test_dap_over_the_coco_thresholds_averages_each_one():
    from attention_lens.evaluation.error_types import FG_RANGE, dap_50_95

    # a box at IoU 0.833 with its object is a true positive up to 0.80 and a localisation error
    # above: at 0.85, 0.90, 0.95 fixing localisation restores the whole AP
    split, dets = case([[A, *OBJECT]], [[10, 10, 130, 110, 0.9, A]])
    assert dap_50_95(split, dets)["localisation"] == pytest.approx(3 / len(FG_RANGE))


def test_dap_by_size_follows_cocos_area_rule():
    # a small object (20 x 20) found by a box of 22 x 22 and a small background box scoring above it;
    # two large objects (200 x 200), one found, one missed
    small, large, other = [10, 10, 30, 30], [150, 150, 350, 350], [0, 150, 140, 390]
    dets = [[8, 8, 30, 30, 0.5, A], [360, 10, 380, 30, 0.9, A], [*large, 0.8, A]]
    e = error_analysis(*case([[A, *small], [A, *large], [A, *other]], dets))
    assert set(e.dap_by_size) == {"small", "large"}  # no medium object: no medium row
    # small: precision 1/2 at recall 1 -> AP 0.5; dropping the background box gives 1
    assert e.dap_by_size["small"]["background"] == pytest.approx(0.5)
    assert e.dap_by_size["small"]["missed"] == 0.0
    # large: recall stops at 1/2 (AP 51/101); leaving the missed object out gives 1; the small
    # background box is not charged to the large objects
    assert e.dap_by_size["large"]["missed"] == pytest.approx(1 - 51 / 101)
    assert e.dap_by_size["large"]["background"] == 0.0
