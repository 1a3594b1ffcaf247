"""Channel gates' weights, sorted: how peaked each gate is and which channels it favours."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from attention_lens.analysis.attention_view import Inspection
from attention_lens.analysis.heatmaps import layer_labels
from attention_lens.views.attention_matrix import layer_columns, level_title


def channel_figure(ins: Inspection, top_k: int = 5):
    """Sorted channel weights of every channel gate: one chart per layer position (P3, P4, P5...),
    the models overlaid in it; top-k channels labelled where a chart holds one model."""
    panels: dict[tuple, list] = {}
    for mm in ins.models:
        for column, label, lm in zip(layer_columns(mm.layers), layer_labels(mm.layers), mm.layers):
            if lm.channel_weights is not None:
                panels.setdefault(column, []).append((mm.model, label, lm))
    if not panels:
        return None
    order_models = list(dict.fromkeys(m for col in panels.values() for m, *_ in col))
    color = {m: qualitative.Plotly[i % len(qualitative.Plotly)] for i, m in enumerate(order_models)}
    columns = sorted(panels)
    titles = [f"{level_title((s, k))}: "
              + ", ".join(f"{m} {label}" for m, label, _ in panels[(s, k)]) for s, k in columns]
    fig = make_subplots(rows=len(columns), cols=1, subplot_titles=titles, vertical_spacing=0.3 / len(columns))
    bars, rows, labels = [], [], []
    for row, column in enumerate(columns, start=1):
        axis = "" if row == 1 else str(row)  # make_subplots names the axes x, x2, x3, ...
        for model, _label, lm in panels[column]:
            w = lm.channel_weights
            order = np.argsort(-w)
            bars.append(go.Scatter(x=np.arange(len(w)), y=w[order], name=model, legendgroup=model,
                                   showlegend=row == 1 or model not in {b.name for b in bars}, mode="lines",
                                   line=dict(color=color[model], width=2), customdata=order,
                                   hovertemplate=model[:40] + " channel %{customdata}: %{y:.3f}<extra></extra>"))
            rows.append(row)
            if len(panels[column]) > 1:
                continue
            # The labels hang in a column to the right of the top channels, one line each.
            labels += [dict(x=rank, y=float(w[order[rank]]), xref=f"x{axis}", yref=f"y{axis}",
                            text=f"ch{order[rank]}", showarrow=True, arrowhead=0, arrowwidth=1, ax=60,
                            ay=10 + 15 * rank, font=dict(size=10), xanchor="left", bgcolor="rgba(255,255,255,0.85)")
                       for rank in range(min(top_k, len(w)))]
    # In bulk: plotly validates and copies all annotations on every add_annotation call.
    fig.add_traces(bars, rows=rows, cols=[1] * len(rows))
    fig.update_layout(annotations=list(fig.layout.annotations) + labels)
    for a in fig.layout.annotations[:len(columns)]:
        a.font = dict(size=11)
    fig.update_layout(height=90 + 200 * len(columns), margin=dict(t=40, b=20, l=40, r=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.04, x=0))
    fig.update_yaxes(range=[0, 1.05], title_text="gate")  # gates are sigmoids
    fig.update_xaxes(title_text="channels, sorted by weight")
    return fig
