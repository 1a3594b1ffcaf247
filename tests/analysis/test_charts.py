"""Chart objects: traces follow the selected runs; the Pareto front on a constructed case."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from components.analysis.charts import (
    curves_figure,
    label_positions,
    pareto_figure,
    pareto_front,
    per_class_figure,
    point_labels,
)
from components.experiments.runs import find_runs


def test_pareto_front_on_a_constructed_case():
    cost = [1.0, 2.0, 3.0, 2.5, 4.0, math.nan]
    score = [0.40, 0.50, 0.45, 0.55, 0.55, 0.9]
    # (2, .50) beats (3, .45); (2.5, .55) beats (4, .55); nan is ignored
    assert pareto_front(cost, score) == [0, 1, 3]


def test_pareto_figure_marks_the_front():
    df = pd.DataFrame({"model": ["a", "b", "c"], "GFLOPs (thop)": [1.0, 2.0, 3.0],
                       "test mAP50-95": [0.5, 0.4, 0.6], "test mAP50-95 std": [0.01, math.nan, 0.02]})
    fig = pareto_figure(df, "GFLOPs (thop)")
    front = [t for t in fig.data if t.name == "Pareto front"][0]
    assert list(front.x) == [1.0, 3.0] and list(front.y) == [0.5, 0.6]


def test_the_noise_band_is_the_flags_band_and_data_sets_get_their_own_fronts(tmp_path):
    from run_dirs import fake_run

    from components.experiments.metrics import collect_runs, metrics_table

    for i, v in enumerate([0.50, 0.52, 0.48]):
        fake_run(tmp_path, f"base-s{i}", None, v, seed=i)
    fake_run(tmp_path, "ema", "EMA", 0.51)
    fake_run(tmp_path, "other", None, 0.9, dataset="kangaroos")
    fake_run(tmp_path, "other-ema", "EMA", 0.2, dataset="kangaroos")
    fig = pareto_figure(metrics_table(collect_runs([tmp_path])[0]), "GFLOPs (thop)")
    bands = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(bands) == 1  # only the baseline with seeds has a spread
    assert (bands[0].y0, bands[0].y1) == pytest.approx((0.50 - 2 * 0.02, 0.50 + 2 * 0.02))
    assert "± 2σ" in fig.layout.annotations[0].text and "flag" in fig.layout.annotations[0].text
    fronts = [t for t in fig.data if t.name.startswith("Pareto front")]
    assert len(fronts) == 2 and any("kangaroos" in t.name for t in fronts)
    # Equal costs: within each data set the better score alone is on the front.
    assert sorted(y for t in fronts for y in t.y) == [0.51, 0.9]


def test_each_base_gets_its_own_front_and_only_its_own_baselines_band(tmp_path):
    from run_dirs import fake_run

    from components.experiments.metrics import collect_runs, metrics_table

    for i, v in enumerate([0.50, 0.52, 0.48]):
        fake_run(tmp_path, f"v8-s{i}", None, v, seed=i)
    fake_run(tmp_path, "v8-ema", "EMA", 0.51)
    fake_run(tmp_path, "v5", None, 0.45, base="yolov5n")
    fake_run(tmp_path, "v5-ema", "EMA", 0.60, base="yolov5n")  # would dominate the yolov8n front if pooled
    fig = pareto_figure(metrics_table(collect_runs([tmp_path])[0]), "GFLOPs (thop)")
    fronts = {t.name: sorted(t.y) for t in fig.data if t.name.startswith("Pareto front")}
    assert fronts == {"Pareto front · yolov8n": [0.51], "Pareto front · yolov5n": [0.60]}
    bands = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(bands) == 1 and "yolov8n baseline" in fig.layout.annotations[0].text


def test_crowded_labels_are_blanked_but_the_front_and_baselines_keep_theirs():
    from components.analysis.charts import sparse_labels

    xs, ys = [0.0, 0.01, 0.02, 1.0, 0.5], [0.0, 0.01, 0.5, 1.0, 0.02]
    labels = ["base", "crowded", "apart", "front", "near-x-only"]
    # Point 1 sits within 8% of point 0 on both axes; 2 is near in x only; 4 near in y only.
    got = sparse_labels(xs, ys, labels, first=[3, 0], x_extent=(0, 1), y_extent=(0, 1))
    assert got == ["base", "", "apart", "front", "near-x-only"]
    assert sparse_labels(xs, ys, labels, first=[1, 0], x_extent=(0, 1), y_extent=(0, 1))[:2] == ["base", "crowded"]


def test_sparse_labels_allow_for_label_width_and_for_labels_another_trace_placed():
    from components.analysis.charts import CHAR_WIDTH, sparse_labels

    xs, ys = [0.0, 0.15], [0.5, 0.5]  # 0.15 apart in x: clear of 0.08 for one-letter labels only
    assert sparse_labels(xs, ys, ["a", "b"], first=[0], x_extent=(0, 1), y_extent=(0, 1)) == ["a", "b"]
    long = ["PolarizedSA @ neck_outputs", "SE @ neck_outputs"]  # 26 and 17 characters
    assert 0.15 < 0.08 + CHAR_WIDTH * (26 + 17) / 2
    assert sparse_labels(xs, ys, long, first=[0], x_extent=(0, 1), y_extent=(0, 1)) == [long[0], ""]
    # Another base's trace already put a label at (0.14, 0.5): this trace's point there stays
    # unlabelled unless it is on its own front; the one kept is added for the next trace.
    taken = [(0.14, 0.5, 8)]
    assert sparse_labels([0.15, 0.9], [0.5, 0.5], ["EMA", "SE"], first=[], x_extent=(0, 1), y_extent=(0, 1),
                         taken=taken) == ["", "SE"]
    assert taken[-1] == (0.9, 0.5, 2)
    assert sparse_labels([0.15], [0.5], ["EMA"], first=[0], x_extent=(0, 1), y_extent=(0, 1), taken=taken) == ["EMA"]


def test_pareto_labels_are_short_unless_that_makes_them_ambiguous():
    df = pd.DataFrame({"model": ["yolov8n baseline", "yolov8n + EMA @ neck_outputs"], "attention": ["none", "EMA"]})
    assert point_labels(df) == ["baseline", "EMA"]
    two_placements = pd.DataFrame({"model": ["v5 baseline", "v5 + EMA @ neck", "v5 + EMA @ in_csp (main)"],
                                   "attention": ["none", "EMA", "EMA"], "placement": [None, "neck", "in_csp (main)"]})
    assert point_labels(two_placements) == ["baseline", "EMA @ neck", "EMA @ in_csp (main)"]
    per_run = pd.DataFrame({"model": ["base-s0", "base-s1"], "attention": ["none", "none"]})
    assert point_labels(per_run) == ["base-s0", "base-s1"]


def test_clustered_points_get_labels_in_different_places():
    # The shipped zoo's shape: four models within 0.002 GFLOPs and 0.01 mAP, one far away; the
    # y axis spans the baseline's error bar (0.495 ± 0.028).
    xs, ys = [2.048, 2.0485, 2.049, 2.050, 2.062], [0.495, 0.499, 0.492, 0.494, 0.522]
    positions = label_positions(xs, ys, (0.467, 0.523))
    assert len(set(positions[:4])) == 4 and positions[4] == "top center"
    assert label_positions([1.0, 2.0], [0.1, 0.9]) == ["top center", "top center"]


def test_curves_and_per_class_follow_the_selected_runs(tiny_weights):
    runs = find_runs(tiny_weights)
    chosen = runs[:2]
    fig = curves_figure(chosen, "train/box_loss")
    assert [t.name for t in fig.data] == [r.name for r in chosen]
    for t, r in zip(fig.data, chosen):
        assert list(t.y) == r.results["train/box_loss"].tolist()
    bars = per_class_figure(chosen)
    assert [t.name for t in bars.data] == [r.name for r in chosen]
    per_class = chosen[0].summary["metrics"]["test"]["per_class"]
    assert list(bars.data[0].x) == list(per_class)
