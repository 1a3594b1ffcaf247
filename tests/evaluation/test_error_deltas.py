"""A model's dAP against a reference's (evaluation/error_deltas.py): the bootstrap series, its
paired intervals and the sentence."""
from __future__ import annotations

import numpy as np
import pytest


def test_the_bootstrap_of_dap_is_paired_and_its_first_row_is_the_whole_split():
    from pathlib import Path

    from attention_lens.evaluation.stored import load_detections
    from attention_lens.evaluation.error_deltas import dap_series, errors_against, why_sentence
    from attention_lens.evaluation.error_types import TYPES, classify, error_analysis

    split, _, dets, _ = load_detections(Path(__file__).resolve().parents[2] / "weights" / "evaluation" /
                                        "bccd-test.json.gz")
    ref, ema = (classify(split, dets[n]) for n in ("yolov8n-baseline-s0", "yolov8n-ema-neck-s0"))
    s_ref, s_ema = dap_series(ref, 100), dap_series(ema, 100)
    whole = error_analysis(split, dets["yolov8n-ema-neck-s0"]).dap
    assert s_ema.shape == (101, len(TYPES)) and list(s_ema[0]) == pytest.approx([whole[t] for t in TYPES])
    # a model against itself: every round's difference is exactly zero (the same images each round)
    same = errors_against(s_ref, s_ref)
    assert all(a["delta"] == a["low"] == a["high"] == 0 for a in same.values())
    assert why_sentence("x", same) == "x: every error type within image sampling noise"
    # a resample weights images: counting every image twice gives the whole split's numbers again
    assert ema.daps(np.full(len(split.images), 2.0)) == pytest.approx(ema.daps())


def test_the_sentence_names_only_the_types_whose_interval_excludes_zero():
    from attention_lens.evaluation.error_deltas import why_sentence

    against = {t: {"delta": 0.0, "low": -0.01, "high": 0.01, "verdict": "within image sampling noise"}
               for t in ("classification", "localisation", "both", "duplicate", "background")}
    against["missed"] = {"delta": -0.021, "low": -0.034, "high": -0.008, "verdict": "beyond image sampling noise"}
    assert why_sentence("EMA s0", against) == ("EMA s0: fewer missed objects, dAP -0.021 [-0.034, -0.008]; "
                                               "other error types within image sampling noise")


def test_the_fast_series_equals_the_daps_of_each_resample():
    from pathlib import Path

    from attention_lens.evaluation.stored import load_detections
    from attention_lens.evaluation.error_deltas import dap_series
    from attention_lens.evaluation.error_types import TYPES, classify

    split, _, dets, _ = load_detections(Path(__file__).resolve().parents[2] / "weights" / "evaluation" /
                                        "bccd-test.json.gz")
    c = classify(split, dets["yolov8n-ema-neck-s0"])
    series = dap_series(c, 5, seed=3)
    rng = np.random.default_rng(3)
    n = len(split.images)
    for row in series[1:]:  # the same draws, through the plain per-resample computation
        want = c.daps(np.bincount(rng.integers(0, n, n), minlength=n))
        assert list(row) == pytest.approx([want[t] for t in TYPES], abs=1e-12)


def test_the_delta_dap_interval_covers_the_true_difference_about_as_often_as_it_says():
    """Synthetic population (issue 36): each image holds one object, found exactly (one score) by
    the reference with probability 0.5 and by the model with 0.7, independently, nothing else
    detected. Fixing the missed objects makes AP50 1, so missed dAP = 1 - AP50 and the true Δ is
    -(0.7 - 0.5) on COCO's 101-point recall grid: -0.2 x 100/101. 40 draws of 40 images: a 95%
    interval should miss it in about 2; more than 6 misses is implausible (binomial p < 0.01)."""
    from coco_cases import found_or_missed

    from attention_lens.evaluation.error_deltas import dap_series, errors_against
    from attention_lens.evaluation.error_types import TYPES, classify

    truth = -0.2 * 100 / 101
    rng = np.random.default_rng(0)
    misses = 0
    for draw in range(40):
        split, ref, model = found_or_missed(rng)
        ref_series = dap_series(classify(split, ref), 200, seed=draw)
        model_series = dap_series(classify(split, model), 200, seed=draw)
        missed = errors_against(ref_series, model_series)["missed"]
        misses += not (missed["low"] <= truth <= missed["high"])
        assert all(errors_against(ref_series, model_series)[t]["delta"] == 0 for t in TYPES if t != "missed")
    assert misses <= 6, misses
