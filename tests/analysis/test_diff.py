"""Box matching between a model and the reference: constructed cases with known answers."""
from __future__ import annotations

import numpy as np

from attention_lens.analysis.diff import match


def test_known_case_matched_only_here_and_missed():
    ref = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], dtype=float)
    ref_cls = ["RBC", "WBC", "RBC"]
    boxes = np.array([[1, 1, 10, 10],  # overlaps ref 0, same class -> matched
                      [20, 20, 30, 30],  # same place as ref 1 but another class -> only here
                      [80, 80, 90, 90]], dtype=float)  # nothing there -> only here
    status, missed = match(boxes, ["RBC", "RBC", "WBC"], ref, ref_cls, iou=0.5)
    assert status == ["matched", "only here", "only here"]
    assert missed == [1, 2]


def test_one_reference_box_matches_only_once_most_confident_first():
    ref = np.array([[0, 0, 10, 10]], dtype=float)
    boxes = np.array([[0, 0, 10, 9], [0, 0, 10, 10]], dtype=float)
    status, missed = match(boxes, ["a", "a"], ref, ["a"], iou=0.5, scores=np.array([0.2, 0.9]))
    assert status == ["only here", "matched"] and missed == []


def test_iou_threshold_is_respected_and_empty_sides_work():
    ref = np.array([[0, 0, 10, 10]], dtype=float)
    half = np.array([[5, 0, 15, 10]], dtype=float)  # IoU 1/3
    assert match(half, ["a"], ref, ["a"], iou=0.3)[0] == ["matched"]
    assert match(half, ["a"], ref, ["a"], iou=0.5)[0] == ["only here"]
    assert match(np.zeros((0, 4)), [], ref, ["a"]) == ([], [0])
    assert match(half, ["a"], np.zeros((0, 4)), []) == (["only here"], [])
