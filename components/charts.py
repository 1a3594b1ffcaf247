"""Plotly charts for the Metrics tab: Pareto fronts, training curves, per-class AP."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .runs import Run


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


def pareto_figure(df, cost_column: str, score_column: str = "test mAP50-95") -> go.Figure:
    fig = go.Figure()
    if df.empty:
        return fig
    cost, score = df[cost_column].tolist(), df[score_column].tolist()
    std = df.get(f"{score_column} std")
    fig.add_trace(go.Scatter(x=cost, y=score, mode="markers+text", text=df["model"], textposition="top center",
                             name="variants", marker=dict(size=10),
                             error_y=dict(type="data", array=[0 if math.isnan(s) else s for s in std])
                             if std is not None else None))
    front = pareto_front(cost, score)
    fig.add_trace(go.Scatter(x=[cost[i] for i in front], y=[score[i] for i in front], mode="lines+markers",
                             name="Pareto front", line=dict(dash="dash"),
                             marker=dict(symbol="star", size=14)))
    fig.update_layout(xaxis_title=cost_column, yaxis_title=score_column, height=420,
                      margin=dict(t=30, b=40, l=50, r=10), legend=dict(orientation="h"))
    return fig


def curves_figure(runs: list[Run], column: str) -> go.Figure:
    fig = go.Figure()
    for run in runs:
        if run.results is not None and column in run.results.columns:
            fig.add_trace(go.Scatter(x=run.results["epoch"], y=run.results[column], mode="lines", name=run.name))
    fig.update_layout(xaxis_title="epoch", yaxis_title=column, height=400, margin=dict(t=30, b=40, l=50, r=10))
    return fig


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
