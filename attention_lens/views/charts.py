"""Plotly charts for the Metrics tab: Pareto fronts, training curves, per-class AP."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, qualitative

from attention_lens.experiments.metrics import NOISE_SIGMAS
from attention_lens.experiments.runs import Run


def pareto_front(cost: list[float], score: list[float]) -> list[int]:
    """Indices of the points no other point beats (lower or equal cost and higher or equal score,
    strictly better in one), ordered by cost."""
    idx = [i for i in range(len(cost)) if not (math.isnan(cost[i]) or math.isnan(score[i]))]
    front = []
    for i in idx:
        dominated = any((cost[j] <= cost[i] and score[j] >= score[i]) and (cost[j] < cost[i] or score[j] > score[i])
                        for j in idx if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (cost[i], -score[i]))


#: Where a point's label can go, tried in this order.
LABEL_SLOTS = ("top center", "bottom center", "middle right", "middle left", "top right", "bottom right")
#: A label's size as fractions of a Metrics chart's plot area (12 px text: ~6.5 px a character of
#: ~540 px plot width, a line ~17 px of ~290 px plot height), and its gap from the marker.
CHAR_WIDTH, LINE_HEIGHT, GAP = 0.012, 0.06, (0.012, 0.03)
#: The x axis is padded by this fraction of the costs' span each side (room for edge labels).
X_PAD = 0.15
#: A noise band reaches this far (a fraction of the costs' span) past its group's outermost points.
BAND_PAD = 0.04


def point_labels(df) -> list[str]:
    """Short labels: the attention module (or "baseline"); where those repeat, module @ placement;
    the full model name where those repeat too."""
    short = ["baseline" if a in (None, "none", "") else str(a) for a in df.get("attention", df["model"])]
    if len(set(short)) == len(short):
        return short
    if "placement" in df.columns:
        placed = [s if s == "baseline" or p in (None, "") or p != p else f"{s} @ {p}"
                  for s, p in zip(short, df["placement"])]
        if len(set(placed)) == len(placed):
            return placed
    return df["model"].astype(str).tolist()


def _label_box(slot: str, x: float, y: float, w: float) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a label of width ``w`` at ``slot`` around the point (x, y), in fractions."""
    h, (gx, gy) = LINE_HEIGHT, GAP
    vertical, horizontal = slot.split()
    if vertical == "middle":
        y0 = y - h / 2
        x0 = x + gx if horizontal == "right" else x - gx - w
    else:
        y0 = y + gy if vertical == "top" else y - gy - h
        x0 = x - w / 2 if horizontal == "center" else x
    return x0, y0, x0 + w, y0 + h


def _overlap(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place_labels(xs: list[float], ys: list[float], labels: list[str], first: list[int],
                 x_extent: tuple[float, float] | None, y_extent: tuple[float, float] | None,
                 taken: list | None = None) -> tuple[list[str], list[str]]:
    """(text, text position) per point. Points in ``first`` (the front, the baselines) are labelled
    first, each at the first slot whose box overlaps no label placed yet (the least-covered slot
    when none is free); every other point only where a slot is free, else its label is left out
    (the point keeps its hover text). Boxes stay inside the padded x axis. ``taken`` holds the
    boxes other traces placed on the same chart; this trace's are added to it."""
    def frac(v, extent):
        lo, hi = extent or (0.0, 1.0)
        return (v - lo) / ((hi - lo) or 1.0)

    taken = [] if taken is None else taken
    text, where = [""] * len(xs), [LABEL_SLOTS[0]] * len(xs)
    for i in list(dict.fromkeys(first)) + [i for i in range(len(xs)) if i not in first]:
        if xs[i] != xs[i] or ys[i] != ys[i] or not labels[i]:
            continue
        x, y = frac(xs[i], x_extent), frac(ys[i], y_extent)
        w = CHAR_WIDTH * len(labels[i]) * (1 + 2 * X_PAD)  # in fractions of the costs' span, as x
        boxes = {slot: _label_box(slot, x, y, w) for slot in LABEL_SLOTS}
        inside = [s for s, b in boxes.items() if b[0] >= -X_PAD and b[2] <= 1 + X_PAD] or list(LABEL_SLOTS)
        cover = {s: sum(_overlap(boxes[s], t) for t in taken) for s in inside}
        slot = min(inside, key=lambda s: (cover[s] > 0, cover[s] if i in first else 0, inside.index(s)))
        if cover[slot] > 0 and i not in first:
            continue
        text[i], where[i] = labels[i], slot
        taken.append(boxes[slot])
    return text, where


#: A Pareto chart's height: the plot area and axes, and one line per legend entry below it.
PLOT_HEIGHT, LEGEND_LINE = 346, 19
#: One colour per group (data set, setting, base) in a Pareto chart.
GROUP_COLOURS = qualitative.Plotly


def pareto_figure(df, cost_column: str, score_column: str = "test mAP50-95",
                  sigmas: float = NOISE_SIGMAS) -> go.Figure:
    """Score against cost, one trace and one Pareto front per data set, setting and base model
    (never mixed: a yolov5nu variant is not on the yolov8n front, nor in its baseline's band).

    Error bars are ±1 standard deviation over seeds. The shaded band around each baseline is
    the noise band the table's flag uses: its mean ± ``sigmas`` seed standard deviations. Each
    group has one colour (its points, front and band), and the bands are named in the legend
    rather than on the plot, where several bases' labels would cover each other and the points."""
    fig = go.Figure()
    if df.empty:
        return fig
    keys = [k for k in ("data set", "setting", "base") if k in df.columns]
    groups = list(df.groupby(keys, sort=False)) if keys else [((), df)]
    finite_x = [v for v in df[cost_column].tolist() if v == v]
    x_extent = (min(finite_x), max(finite_x)) if finite_x else None  # the chart's span: groups share it
    x_span = ((x_extent[1] - x_extent[0]) or abs(x_extent[0]) or 1.0) if x_extent else 1.0
    std_all = df.get(f"{score_column} std")
    spread = [(v - (b if b == b else 0.0), v + (b if b == b else 0.0)) for v, b in
              zip(df[score_column], std_all if std_all is not None else [0.0] * len(df)) if v == v]
    y_extent = (min(lo for lo, _ in spread), max(hi for _, hi in spread)) if spread else None
    # A legend suffix names only what differs between the groups (the base, when one data set).
    differs = [i for i in range(len(keys)) if len({k[i] for k, _ in groups}) > 1]
    entries = 2 * len(groups)  # legend lines: each group's points and front, and each band
    taken: list = []  # labels placed so far, over every group: one base's labels must not cover another's
    for g, (key, part) in enumerate(groups):
        suffix = "".join(f" · {key[i]}" for i in differs)
        colour = GROUP_COLOURS[g % len(GROUP_COLOURS)]
        cost, score = part[cost_column].tolist(), part[score_column].tolist()
        std = part.get(f"{score_column} std")
        bars = [0.0 if s is None or math.isnan(s) else s for s in (std if std is not None else [0.0] * len(score))]
        front = pareto_front(cost, score)
        baselines = [i for i, a in enumerate(part.get("attention", [None] * len(part))) if a == "none"]
        text, slots = place_labels(cost, score, point_labels(part), front + baselines, x_extent, y_extent, taken)
        fig.add_trace(go.Scatter(x=cost, y=score, mode="markers+text", text=text,
                                 textposition=slots,
                                 customdata=part["model"], hovertemplate="%{customdata}<br>%{x}, %{y:.3f}<extra></extra>",
                                 name="models (bars: ±1 std over seeds)" + suffix, marker=dict(size=10, color=colour),
                                 error_y=dict(type="data", array=bars, color=colour) if std is not None else None))
        fig.add_trace(go.Scatter(x=[cost[i] for i in front], y=[score[i] for i in front], mode="lines+markers",
                                 name="Pareto front" + suffix, line=dict(dash="dash", color=colour),
                                 marker=dict(symbol="star", size=14, color=colour)))
        xs = [c for c in cost if c == c]
        for lo, hi, base in noise_bands(part, sigmas):
            # Over this group's own cost range only: another base's points are not judged by it.
            pad = BAND_PAD * x_span
            span = dict(x0=min(xs) - pad, x1=max(xs) + pad, xref="x") if xs else dict(x0=0, x1=1, xref="paper")
            fig.add_shape(type="rect", y0=lo, y1=hi, yref="y", **span, layer="below",
                          fillcolor=_translucent(colour, 0.12), line=dict(color=colour, width=1.5, dash="dot"),
                          showlegend=True,
                          name=f"{base} baseline ± {sigmas:g}σ (seed noise; the flag's band)"
                               + "".join(f" · {key[i]}" for i in differs if keys[i] != "base"))
            entries += 1
    if x_extent:  # room for the outermost points' labels inside the plot
        pad = X_PAD * x_span
        fig.update_xaxes(range=[x_extent[0] - pad, x_extent[1] + pad])
    fig.update_layout(xaxis_title=cost_column, yaxis_title=score_column, height=PLOT_HEIGHT + LEGEND_LINE * entries,
                      margin=dict(t=30, b=40, l=50, r=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    return fig


def _translucent(hex_colour: str, alpha: float) -> str:
    return "rgba({}, {}, {}, {})".format(*hex_to_rgb(hex_colour), alpha)


def noise_bands(df, sigmas: float) -> list[tuple[float, float, str]]:
    """(low, high, base) for each baseline row with a seed spread: mean ± sigmas x std."""
    if "baseline std" not in df.columns or "attention" not in df.columns:
        return []
    out, seen = [], set()
    for _, row in df[df["attention"] == "none"].iterrows():
        mean, std = row["baseline mean"], row["baseline std"]
        if math.isnan(std) or row.get("base") in seen:
            continue
        seen.add(row.get("base"))
        out.append((mean - sigmas * std, mean + sigmas * std, str(row.get("base", ""))))
    return out


#: Points per curve sent to the browser; longer curves are thinned evenly (the last point kept).
MAX_CURVE_POINTS = 1000


def curves_figure(runs: list[Run], column: str) -> go.Figure:
    fig = go.Figure()
    for run in runs:
        if run.results is not None and column in run.results.columns:
            df = thin(run.results, MAX_CURVE_POINTS)
            x = df["epoch"] if "epoch" in df.columns else df.index
            fig.add_trace(go.Scatter(x=x, y=df[column], mode="lines", name=run.name))
    fig.update_layout(xaxis_title="epoch", yaxis_title=column, height=400, margin=dict(t=30, b=40, l=50, r=10))
    return fig


def thin(df, limit: int):
    """At most ``limit`` rows, evenly spaced, first and last kept."""
    if len(df) <= limit:
        return df
    idx = np.unique(np.linspace(0, len(df) - 1, limit).round().astype(int))
    return df.iloc[idx]


def per_class_figure(runs: list[Run], metric: str = "mAP50-95", split: str = "test") -> go.Figure:
    fig = go.Figure()
    for run in runs:
        per_class = ((run.summary.get("metrics") or {}).get(split) or {}).get("per_class") or {}
        if per_class:
            names = list(per_class)
            fig.add_trace(go.Bar(x=names, y=[per_class[n].get(metric, np.nan) for n in names], name=run.name))
    fig.update_layout(barmode="group", yaxis_title=f"{split} {metric}", height=380, margin=dict(t=30, b=40, l=50, r=10))
    return fig


def curve_columns(runs: list[Run]) -> list[str]:
    cols = []
    for run in runs:
        if run.results is not None:
            cols += [c for c in run.results.columns if c != "epoch" and c not in cols]
    return cols


def message_figure(text: str) -> go.Figure:
    """An empty chart that says why it is empty."""
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(height=160, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      margin=dict(t=10, b=10, l=10, r=10))
    return fig
