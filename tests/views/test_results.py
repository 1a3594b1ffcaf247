"""The Evaluate view's filters on a constructed case with known answers."""
from __future__ import annotations

import numpy as np
from coco_cases import BIG_A, MID_B, SMALL_A, SMALL_B, dets_from, disagreeing_results, split_of

from attention_lens.evaluation.report import evaluate_detections
from attention_lens.views.results import filter_choices, group_key, object_counts, ranked_images


def test_filters_count_only_the_objects_of_that_class_and_size():
    r = disagreeing_results()
    assert filter_choices(r) == (["all", "a", "b"], ["all", "small", "medium", "large"])
    assert object_counts(r, "model") == {"both": 1, "only reference": 1, "only model": 1, "neither": 1}
    assert object_counts(r, "model", cls="a") == {"both": 1, "only reference": 0, "only model": 1, "neither": 0}
    assert object_counts(r, "model", size="small") == {"both": 1, "only reference": 1, "only model": 0,
                                                        "neither": 0}
    assert object_counts(r, "model", cls="b", size="medium") == {"both": 0, "only reference": 0, "only model": 0,
                                                                 "neither": 1}


def test_ranked_images_follow_the_filter():
    r = disagreeing_results()
    # Unfiltered: image 0 has two one-sided objects; image 1 none, but two added false positives.
    assert [(x["image"], x["only reference"], x["only model"], x["FP added"], x["score"])
            for x in ranked_images(r, "model")] == [("0.jpg", 1, 1, 0, 2), ("1.jpg", 0, 0, 2, 2)]
    # Class "b": only image 0's small "b" is one-sided; false positives do not rank a filtered view.
    assert [(x["image"], x["only reference"], x["only model"]) for x in ranked_images(r, "model", cls="b")] == \
        [("0.jpg", 1, 0)]
    assert ranked_images(r, "model", size="medium") == []  # the medium "b" is missed by both: no disagreement
    assert group_key("b", "small") == "class b" and group_key("all", "small") == "size small"
    assert group_key(None, "all") == "all"


def test_each_link_of_the_sankey_carries_its_flow_as_the_picker_values_it():
    """A click in the page hands the clicked link's customdata to the flow picker's handler."""
    from attention_lens.evaluation.error_types import OUTCOMES
    from attention_lens.views.results import outcomes_figure

    link = outcomes_figure(disagreeing_results()).data[0].link
    letters = list(OUTCOMES)
    pairs = [(letters[s], letters[t - len(letters)]) for s, t in zip(link.source, link.target)]
    assert list(link.customdata) == [f"model|{a}|{b}" for a, b in pairs]


def test_the_object_flows_agree_with_the_found_counts_and_follow_the_filter():
    """The Sankey's flows (issue 36) count the same objects as the found-by bars: found by both is
    found -> found, only the reference found -> anything else, and so on; filters apply alike."""
    from attention_lens.views.results import outcome_flows, outcomes_figure

    r = disagreeing_results()
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

    r = disagreeing_results()
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

    r = disagreeing_results()
    assert sum(outcome_flows(r, "model").values()) == len(r["objects"]["class"]) == 4
    split = split_of([[SMALL_A, BIG_A, SMALL_B], [MID_B]])
    same = [np.vstack([dets_from([SMALL_A, SMALL_B])]), np.zeros((0, 6))]
    twin = evaluate_detections(split, {"ref": same, "twin": [d.copy() for d in same]}, "ref", rounds=20)
    flows = outcome_flows(twin, "twin")
    assert sum(flows.values()) == 4 and all(a == b for a, b in flows)

