"""COCO's 101-point AP of ranked detections (evaluation/ranked_ap.py), on cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from attention_lens.evaluation.ranked_ap import ap, class_aps, class_aps_of_rounds, mean_aps


def test_true_false_true_over_two_objects():
    """Ranked TP, FP, TP over two objects: precision 1 up to recall 0.5 (51 of COCO's recall
    points, 0.00-0.50), 2/3 above it (50 points)."""
    correct = np.array([True, False, True])
    assert ap(np.ones(3), correct, 2.0) == pytest.approx((51 + 50 * 2 / 3) / 101)
    # an image drawn twice counts its detections and its objects twice: the same curve
    assert ap(np.full(3, 2.0), correct, 4.0) == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert ap(np.ones(3), np.zeros(3, bool), 2.0) == 0.0


def test_the_rounds_give_each_rows_ap_and_a_tail_of_false_positives_changes_nothing():
    """Many weightings at once equal one at a time, to the bit, with twenty false positives ranked
    after the last true positive (they lower no precision a recall point reads)."""
    rng = np.random.default_rng(1)
    images = np.r_[rng.integers(0, 6, 12), rng.integers(0, 6, 20)]
    correct = np.r_[rng.random(12) < 0.6, np.zeros(20, bool)]
    correct[11] = True
    objects = np.bincount(images[:12][correct[:12]], minlength=6)[:, None] + 1  # (images, one class)
    plan = ([(images, correct)], objects)
    weights = np.vstack([np.ones(6), rng.integers(0, 3, (40, 6)).astype(float)])
    fast = class_aps_of_rounds(plan, weights)
    slow = np.array([class_aps(plan, w) for w in weights])
    assert np.array_equal(fast, slow, equal_nan=True)
    head = ([(images[:12], correct[:12])], objects)
    assert np.array_equal(fast, class_aps_of_rounds(head, weights), equal_nan=True)  # the tail counts for nothing


def test_a_class_with_neither_objects_nor_detections_does_not_count():
    plan = ([(np.array([0]), np.array([True])), (np.array([], int), np.array([], bool))], np.array([[1, 0]]))
    aps = class_aps(plan, None)
    assert aps[0] == pytest.approx(1.0) and np.isnan(aps[1])
    assert mean_aps(aps[None]) == pytest.approx([1.0])
