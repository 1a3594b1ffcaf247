"""The Evaluate view's filters on a constructed case with known answers."""
from __future__ import annotations

import numpy as np
from coco_cases import dets_from, split_of

from attention_lens.evaluation.report import evaluate_detections
from attention_lens.views.results import filter_choices, group_key, object_counts, ranked_images

SMALL_A, BIG_A = (0, 0, 0, 20, 20), (0, 100, 100, 300, 300)
SMALL_B, MID_B = (1, 40, 0, 60, 20), (1, 0, 100, 50, 150)


def _results():
    # Image 0: a small "a" (both find it), a big "a" only the model finds, a small "b" only the
    # reference finds. Image 1: a medium "b" nobody finds; the model adds two false positives.
    split = split_of([[SMALL_A, BIG_A, SMALL_B], [MID_B]])
    ghost = np.array([[300, 300, 350, 350, 0.9, 0], [300, 0, 350, 50, 0.9, 1]], dtype=float)
    ref = [np.vstack([dets_from([SMALL_A, SMALL_B])]), np.zeros((0, 6))]
    model = [np.vstack([dets_from([SMALL_A, BIG_A])]), ghost]
    return evaluate_detections(split, {"ref": ref, "model": model}, "ref", rounds=20)


def test_filters_count_only_the_objects_of_that_class_and_size():
    r = _results()
    assert filter_choices(r) == (["all", "a", "b"], ["all", "small", "medium", "large"])
    assert object_counts(r, "model") == {"both": 1, "only reference": 1, "only model": 1, "neither": 1}
    assert object_counts(r, "model", cls="a") == {"both": 1, "only reference": 0, "only model": 1, "neither": 0}
    assert object_counts(r, "model", size="small") == {"both": 1, "only reference": 1, "only model": 0,
                                                        "neither": 0}
    assert object_counts(r, "model", cls="b", size="medium") == {"both": 0, "only reference": 0, "only model": 0,
                                                                 "neither": 1}


def test_ranked_images_follow_the_filter():
    r = _results()
    # Unfiltered: image 0 has two one-sided objects; image 1 none, but two added false positives.
    assert [(x["image"], x["only reference"], x["only model"], x["FP added"], x["score"])
            for x in ranked_images(r, "model")] == [("0.jpg", 1, 1, 0, 2), ("1.jpg", 0, 0, 2, 2)]
    # Class "b": only image 0's small "b" is one-sided; false positives do not rank a filtered view.
    assert [(x["image"], x["only reference"], x["only model"]) for x in ranked_images(r, "model", cls="b")] == \
        [("0.jpg", 1, 0)]
    assert ranked_images(r, "model", size="medium") == []  # the medium "b" is missed by both: no disagreement
    assert group_key("b", "small") == "class b" and group_key("all", "small") == "size small"
    assert group_key(None, "all") == "all"


def test_the_object_flows_agree_with_the_found_counts_and_follow_the_filter():
    """The Sankey's flows (issue 36) count the same objects as the found-by bars: found by both is
    found -> found, only the reference found -> anything else, and so on; filters apply alike."""
    from attention_lens.views.results import outcome_flows, outcomes_figure

    r = _results()
    flows = outcome_flows(r, "model")
    # small a: both found; big a: only the model; small b: only the reference; medium b: neither
    # (the model's ghost boxes are far from it: missed by both)
    assert flows == {("F", "F"): 1, ("M", "F"): 1, ("F", "M"): 1, ("M", "M"): 1}
    assert outcome_flows(r, "model", cls="a") == {("F", "F"): 1, ("M", "F"): 1}
    counts = object_counts(r, "model")
    assert flows[("F", "F")] == counts["both"] and flows[("M", "M")] == counts["neither"]
    fig = outcomes_figure(r)
    assert len(fig.data) == 1 and sum(fig.data[0].link.value) == 4


def test_a_flow_lists_its_images_and_follows_the_filter():
    from attention_lens.views.results import flow_choices, flow_images

    r = _results()
    choices = flow_choices(r)
    # the two flows where the reference and the model disagree: big a (only the model) and small b
    assert sorted(v for _, v in choices) == ["model|F|M", "model|M|F"]
    assert dict((v, label) for label, v in choices)["model|F|M"] == "model: reference found → missed (1)"
    table = flow_images(r, "model|F|M")
    assert list(table["image"]) == ["0.jpg"] and list(table["objects in this flow"]) == [1]
    assert flow_images(r, "model|F|M", cls="a").empty  # small b is of class b
    assert flow_images(r, None).empty and list(flow_images(r, None).columns)[1] == "image"


def test_the_flows_add_up_to_the_objects_and_two_identical_models_stay_on_the_diagonal():
    from attention_lens.views.results import outcome_flows

    r = _results()
    assert sum(outcome_flows(r, "model").values()) == len(r["objects"]["class"]) == 4
    split = split_of([[SMALL_A, BIG_A, SMALL_B], [MID_B]])
    same = [np.vstack([dets_from([SMALL_A, SMALL_B])]), np.zeros((0, 6))]
    twin = evaluate_detections(split, {"ref": same, "twin": [d.copy() for d in same]}, "ref", rounds=20)
    flows = outcome_flows(twin, "twin")
    assert sum(flows.values()) == 4 and all(a == b for a, b in flows)
