"""Where the maps fall over a data set, as a table and a chart (from the results dict's
"localisation" part: localisation.summarise per model). Plain functions of data."""
from __future__ import annotations

import numpy as np

def localisation_frame(results: dict, group: str = "all"):
    """One row per (model, scored layer): the mean energy ratio over images and the pointing-game
    hit rate for ``group``."""
    import pandas as pd

    rows = []
    for model, layers in (results.get("localisation") or {}).items():
        for layer in layers:
            g = layer["groups"].get(group)
            if g:
                heads = g.get("in-box share per head")
                rows.append({"model": model, "level": layer["level"], "layer": layer["layer"], "map": layer["kind"],
                             "energy ratio": g["energy ratio"], "pointing game": g["pointing game"],
                             "images": g["images"],
                             IN_BOX: float(np.mean(heads)) if heads else None,
                             IN_BOX_HEADS: " · ".join(f"h{i} {v:.2f}" for i, v in enumerate(heads)) if heads else None})
    return pd.DataFrame(rows, columns=["model", "level", "layer", "map", "energy ratio", "pointing game", "images",
                                       IN_BOX, IN_BOX_HEADS])


#: Self-attention layers only: the attention an object's cells keep on the object, over what no
#: preference would keep (1 = none), mean over heads and per head (localisation.in_box_scores).
IN_BOX = "self-attention kept in box (1 = no preference)"
IN_BOX_HEADS = "kept in box, per head"


def localisation_figure(results: dict, group: str = "all"):
    """Energy ratio (left) and pointing-game hit rate (right) per model at each level, for
    ``group``; 1.0 on the left is a map with no preference for the objects."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = localisation_frame(results, group)
    kept = not frame.empty and frame[IN_BOX].notna().any()
    titles = ("energy in boxes ÷ area of boxes<br>(1 = no preference)", "pointing game:<br>strongest cell in a box")
    fig = make_subplots(rows=1, cols=3 if kept else 2, subplot_titles=titles + (
        ("self-attention kept on the object<br>(1 = no preference)",) if kept else ()))
    if frame.empty:
        fig.update_layout(height=200, annotations=[dict(text="no localisation scores for this selection",
                                                        showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")])
        return fig
    for k, (model, rows) in enumerate(frame.groupby("model", sort=False)):
        seen: dict[str, int] = {}
        x = []
        for lv in rows["level"]:  # a second layer at one level (attention inside a block) gets "#2"
            seen[lv] = seen.get(lv, 0) + 1
            x.append(lv if seen[lv] == 1 else f"{lv} #{seen[lv]}")
        hover = [f"{model}<br>{layer}: {m}<br>{n} images" for layer, m, n in zip(rows["layer"], rows["map"],
                                                                                    rows["images"])]
        for col, metric in ((1, "energy ratio"), (2, "pointing game"), (3, IN_BOX))[:3 if kept else 2]:
            if col == 3 and rows[IN_BOX].isna().all():
                continue
            fig.add_trace(go.Bar(name=model, x=x, y=rows[metric], legendgroup=model, showlegend=col == 1,
                                 hovertext=hover if col < 3 else [f"{h}<br>{t}" for h, t in
                                                                  zip(hover, rows[IN_BOX_HEADS])],
                                 marker_color=_colour(k),
                                 marker_pattern_shape="/" if "LayerCAM" in rows["map"].iloc[0] else ""),
                          row=1, col=col)
    fig.add_hline(y=1.0, line_dash="dot", row=1, col=1)
    if kept:
        fig.add_hline(y=1.0, line_dash="dot", row=1, col=3)
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_xaxes(categoryorder="array", categoryarray=sorted(
        {v for d in fig.data for v in d.x}, key=lambda v: (int(v[1]) if v[1:2].isdigit() else 9, v)))
    for a in fig.layout.annotations:
        a.font = dict(size=12)
    fig.update_layout(barmode="group", height=420, margin=dict(t=80, b=40, l=50, r=10),
                      legend=dict(orientation="h", y=-0.15),
                      title=dict(text=f"Where the maps fall ({group}); hatched = LayerCAM (models without "
                                      "attention), plain = the attention layer's own map", font_size=13))
    return fig


def _colour(k: int) -> str:
    from plotly.colors import qualitative

    return qualitative.Plotly[k % len(qualitative.Plotly)]
