"""Chart objects: traces follow the selected runs; the Pareto front on a constructed case."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from attention_lens.views.charts import (
    curves_figure,
    pareto_figure,
    pareto_front,
    per_class_figure,
    point_labels,
)
from attention_lens.experiments.runs import find_runs


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

    from attention_lens.experiments.metrics import collect_runs, metrics_table

    for i, v in enumerate([0.50, 0.52, 0.48]):
        fake_run(tmp_path, f"base-s{i}", None, v, seed=i)
    fake_run(tmp_path, "ema", "EMA", 0.51)
    fake_run(tmp_path, "other", None, 0.9, dataset="kangaroos")
    fake_run(tmp_path, "other-ema", "EMA", 0.2, dataset="kangaroos")
    fig = pareto_figure(metrics_table(collect_runs([tmp_path])[0]), "GFLOPs (thop)")
    bands = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(bands) == 1  # only the baseline with seeds has a spread
    assert (bands[0].y0, bands[0].y1) == pytest.approx((0.50 - 2 * 0.02, 0.50 + 2 * 0.02))
    assert bands[0].showlegend and "± 2σ" in bands[0].name and "flag" in bands[0].name  # named in the legend
    fronts = [t for t in fig.data if t.name.startswith("Pareto front")]
    assert len(fronts) == 2 and any("kangaroos" in t.name for t in fronts)
    # Equal costs: within each data set the better score alone is on the front.
    assert sorted(y for t in fronts for y in t.y) == [0.51, 0.9]


def test_each_base_gets_its_own_front_and_only_its_own_baselines_band(tmp_path):
    from run_dirs import fake_run

    from attention_lens.experiments.metrics import collect_runs, metrics_table

    for i, v in enumerate([0.50, 0.52, 0.48]):
        fake_run(tmp_path, f"v8-s{i}", None, v, seed=i)
    fake_run(tmp_path, "v8-ema", "EMA", 0.51)
    fake_run(tmp_path, "v5", None, 0.45, base="yolov5n")
    fake_run(tmp_path, "v5-ema", "EMA", 0.60, base="yolov5n")  # would dominate the yolov8n front if pooled
    table = metrics_table(collect_runs([tmp_path])[0])
    # named as the pickers name it (issue 35: the legend said yolov5n, the picker yolov5nu)
    table.loc[table["base"] == "yolov5nu", "GFLOPs (thop)"] = 1.5  # the smaller base costs less
    fig = pareto_figure(table, "GFLOPs (thop)")
    fronts = {t.name: sorted(t.y) for t in fig.data if t.name.startswith("Pareto front")}
    assert fronts == {"Pareto front · yolov8n": [0.51], "Pareto front · yolov5nu": [0.60]}
    bands = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(bands) == 1 and bands[0].name.startswith("yolov8n baseline")
    # The band spans yolov8n's points (at 2.0) and stops short of yolov5n's (at 1.5), in yolov8n's colour.
    assert bands[0].xref == "x" and 1.5 < bands[0].x0 < 2.0 < bands[0].x1
    v8 = [t for t in fig.data if t.name == "models (bars: ±1 std over seeds) · yolov8n"][0]
    v5 = [t for t in fig.data if t.name == "models (bars: ±1 std over seeds) · yolov5nu"][0]
    assert bands[0].line.color == v8.marker.color != v5.marker.color


def _boxes(xs, ys, text, where, char=0.012 * 1.3, h=0.06, gap=(0.012, 0.03)):
    """Each shown label's box, worked out here from the slot names (x, y already fractions)."""
    out = []
    for x, y, t, slot in zip(xs, ys, text, where):
        if not t:
            continue
        w = char * len(t)
        v, hz = slot.split()
        if v == "middle":
            x0, y0 = (x + gap[0], y - h / 2) if hz == "right" else (x - gap[0] - w, y - h / 2)
        else:
            y0 = y + gap[1] if v == "top" else y - gap[1] - h
            x0 = x - w / 2 if hz == "center" else x
        out.append((x0, y0, x0 + w, y0 + h))
    return out


def _disjoint(boxes):
    return all(min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
               for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_labels_of_a_cluster_take_free_slots_and_the_crowded_others_are_left_out():
    from attention_lens.views.charts import place_labels

    unit = dict(x_extent=(0, 1), y_extent=(0, 1))
    # Two far-apart points: both labelled above.
    assert place_labels([0.1, 0.9], [0.1, 0.9], ["a", "b"], [], **unit) == (["a", "b"], ["top center"] * 2)
    # The front's two long labels at one spot (EMA and CBAM @ neck_outputs, as on the yolov8n chart)
    # take different slots, without overlapping.
    xs, ys = [0.5, 0.5], [0.5, 0.51]
    long = ["EMA @ neck_outputs", "CBAM @ neck_outputs"]
    text, where = place_labels(xs, ys, long, [0, 1], **unit)
    assert text == long and where[0] != where[1] and _disjoint(_boxes(xs, ys, text, where))
    # Six front labels fill every slot around one spot: a seventh point there, not on the front, is
    # left unlabelled; on the front it is labelled all the same.
    xs, ys = [0.5] * 7, [0.5] * 7
    labels = [f"module {k} @ neck_outputs" for k in range(7)]
    text, where = place_labels(xs, ys, labels, list(range(6)), **unit)
    assert text[:6] == labels[:6] and text[6] == "" and len(set(where[:6])) == 6
    assert place_labels(xs, ys, labels, list(range(7)), **unit)[0] == labels


def test_labels_stay_inside_the_padded_axis_and_clear_of_other_traces_labels():
    from attention_lens.views.charts import place_labels

    unit = dict(x_extent=(0, 1), y_extent=(0, 1))
    # At the right edge a long label goes to the point's left, not off the chart.
    text, where = place_labels([1.0], [0.5], ["CBAM @ backbone_outputs"], [0], **unit)
    assert where == ["middle left"]
    # Another trace (another base) already holds the box above and below a spot: this trace's
    # point there is labelled beside it, and its own box joins the shared record.
    taken = []
    place_labels([0.3, 0.3], [0.5, 0.5], ["baseline", "EMA"], [0, 1], taken=taken, **unit)
    held = list(taken)
    text, where = place_labels([0.3], [0.5], ["SE"], [], taken=taken, **unit)
    assert text == ["SE"] and where[0] not in ("top center", "bottom center")
    assert len(taken) == len(held) + 1 and _disjoint(taken)


def test_pareto_labels_are_short_unless_that_makes_them_ambiguous():
    df = pd.DataFrame({"model": ["yolov8n baseline", "yolov8n + EMA @ neck_outputs"], "attention": ["none", "EMA"]})
    assert point_labels(df) == ["baseline", "EMA"]
    two_placements = pd.DataFrame({"model": ["v5 baseline", "v5 + EMA @ neck", "v5 + EMA @ in_csp (main)"],
                                   "attention": ["none", "EMA", "EMA"], "placement": [None, "neck", "in_csp (main)"]})
    assert point_labels(two_placements) == ["baseline", "EMA @ neck", "EMA @ in_csp (main)"]
    per_run = pd.DataFrame({"model": ["base-s0", "base-s1"], "attention": ["none", "none"]})
    assert point_labels(per_run) == ["base-s0", "base-s1"]


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
