"""Per head of every self-attention layer: how far it looks and how spread its attention is.

The two statistics ViT analyses report (mean attention distance, Dosovitskiy et al. 2021, fig. 7;
attention entropy), from an inspection's per-head statistics (``LayerMaps.head_stats``): one row
of two small charts per layer position, the models overlaid as grouped bars.
"""
from __future__ import annotations

import numpy as np

from attention_lens.analysis.heatmaps import layer_labels
from attention_lens.views.attention_matrix import layer_columns, level_title


def head_rows(ins) -> dict[tuple[int, int], list[tuple[str, str, object, float, float]]]:
    """(stride, k-th self-attention layer at that stride) -> [(model, layer label, layer, image px per
    cell, keys a query sees)] for every model's self-attention layers."""
    rows: dict[tuple[int, int], list] = {}
    for mm in ins.models:
        labelled = [(label, lm) for label, lm in zip(layer_labels(mm.layers), mm.layers) if lm.head_stats is not None]
        for column, (label, lm) in zip(layer_columns([lm for _, lm in labelled]), labelled):
            rows.setdefault(column, []).append((mm.model, label, lm, lm.stride / ins.gain(mm), lm.head_stats[2]))
    return dict(sorted(rows.items()))


def head_figure(ins):
    """Grouped bars per head: mean attention distance in image pixels (left) and entropy in nats
    (right, the dotted line is uniform attention over the keys a query sees); None without
    self-attention."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    rows = head_rows(ins)
    if not rows:
        return None
    titles = []
    for (stride, k), entries in rows.items():
        level = level_title((stride, k))
        titles += [f"{level}: mean attention distance (image px)", f"{level}: entropy (nats)"]
    fig = make_subplots(rows=len(rows), cols=2, subplot_titles=titles, vertical_spacing=0.25 / len(rows),
                        horizontal_spacing=0.08)
    models = list(dict.fromkeys(m for entries in rows.values() for m, *_ in entries))
    colour = {m: qualitative.Plotly[i % len(qualitative.Plotly)] for i, m in enumerate(models)}
    shown: set[str] = set()  # a legend entry per model, at its first chart (not every model is in row 1)
    for r, entries in enumerate(rows.values(), start=1):
        for model, label, lm, px_per_cell, keys in entries:
            distance, entropy, _ = lm.head_stats
            heads = [f"h{i}" for i in range(len(distance))]
            hover = f"{model[:48]}<br>{label} ({lm.name.removeprefix('model.')})"
            for c, values in ((1, np.asarray(distance) * px_per_cell), (2, np.asarray(entropy))):
                fig.add_trace(go.Bar(x=heads, y=values, name=model, legendgroup=model, marker_color=colour[model],
                                     showlegend=model not in shown, hovertext=hover,
                                     hovertemplate="%{hovertext}<br>%{x}: %{y:.2f}<extra></extra>"), row=r, col=c)
                shown.add(model)
            fig.add_hline(y=float(np.log(keys)), line_dash="dot", line_color="#888", row=r, col=2)
    for a in fig.layout.annotations[:len(titles)]:
        a.font = dict(size=11)
    fig.update_layout(barmode="group", height=80 + 160 * len(rows), margin=dict(t=50, b=20, l=50, r=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0 + 0.12 / len(rows), x=0))
    return fig
