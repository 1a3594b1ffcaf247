"""Every model's detections on one image, as one grid figure that fits the page.

One cell per model, the image at display size with the boxes drawn as shapes in class colours
(dashed: found only by this model; grey dotted: a reference box it missed). No text on the
image: class, confidence and diff status show on hover over a box's centre, so crowded boxes
stay readable, and a drag zooms into one cell.
"""
from __future__ import annotations

import math

import numpy as np

from attention_lens.analysis.images import jpeg_data_uri

#: Cells per row: nine models fit a 1440 px page in three rows with no inner scroll.
COLUMNS = 3
MISSED_RGB = "rgb(150,150,150)"
#: Line style by a box's status: missed boxes grey dotted, boxes found only here (or false
#: positives, in the Evaluate review) dashed, anything else solid.
DASHES = {"missed": "dot", "only here": "dash", "false positive": "dash"}



#: Characters of a model name that fit over one cell of a three-column grid on a 1440 px page.
TITLE_CHARS = 44


def _title(name: str, subtitle: str, budget: int) -> str:
    """A cell's title on two lines: the model's name (cut to ``budget`` characters, an ellipsis
    where cut, so it never runs into the next cell's) over its subtitle."""
    name = name if len(name) <= budget else name[:budget - 1] + "…"
    return f"{name}<br>{subtitle}" if subtitle else name


def _rgb(bgr: tuple) -> str:
    b, g, r = (int(v) for v in bgr)
    return f"rgb({r},{g},{b})"


def results_grid(view: np.ndarray, scale: float, detections: list[dict], models: list[str],
                 subtitles: dict | None = None, columns: int = COLUMNS, cell_px: int = 280):
    """A plotly figure: ``models`` in a grid, each with its boxes from ``detections`` (the
    /compare records: model, class, confidence, box in original pixels, diff), titled by its name
    over its line of ``subtitles`` (model -> text: its counts, its time)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from attention_lens.analysis.render import class_colors

    n = max(1, len(models))
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    h, w = view.shape[:2]
    titles = [_title(m, (subtitles or {}).get(m, ""), TITLE_CHARS * COLUMNS // cols) for m in models]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.012,
                        vertical_spacing=min(0.08, 0.16 / rows))
    classes = sorted({str(d["class"]) for d in detections})
    palette = {c: _rgb(v) for c, v in class_colors(classes).items()}
    source = jpeg_data_uri(view)
    shapes, traces, places = [], [], []
    for k, model in enumerate(models):
        row, col = divmod(k, cols)
        axis = "" if k == 0 else str(k + 1)
        traces.append(go.Image(source=source, hoverinfo="skip"))
        places.append((row + 1, col + 1))
        mine = [d for d in detections if d["model"] == model]
        for d in mine:
            x1, y1, x2, y2 = (float(v) * scale for v in d["box"])
            missed = d.get("diff") == "missed"
            color = MISSED_RGB if missed else palette.get(str(d["class"]), "rgb(255,0,0)")
            dash = DASHES.get(d.get("diff") or "", "solid")
            shapes.append(dict(type="rect", x0=x1, y0=y1, x1=x2, y1=y2, xref=f"x{axis}", yref=f"y{axis}",
                               line=dict(color=color, width=1.5, dash=dash)))
        if mine:
            centres = np.array([[(d["box"][0] + d["box"][2]) / 2, (d["box"][1] + d["box"][3]) / 2] for d in mine])
            text = [f"{d['class']} {d['confidence']:.2f}" if d["confidence"] is not None
                    else f"{d.get('diff') or 'missed'} {d['class']}"
                    for d in mine]
            status = [d.get("diff") or "" for d in mine]
            traces.append(go.Scatter(x=centres[:, 0] * scale, y=centres[:, 1] * scale, mode="markers",
                                     marker=dict(size=10, color="rgba(0,0,0,0)"), text=text, customdata=status,
                                     hovertemplate="%{text}<br>%{customdata}<extra>" + model[:40] + "</extra>",
                                     showlegend=False))
            places.append((row + 1, col + 1))
    for c in classes:  # a legend of the class colours (no data of their own)
        traces.append(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=palette[c], width=3), name=c))
        places.append((1, 1))
    fig.add_traces(traces, rows=[p[0] for p in places], cols=[p[1] for p in places])
    fig.update_layout(shapes=shapes)
    fig.update_xaxes(visible=False, range=[0, w])
    fig.update_yaxes(visible=False, range=[h, 0])
    for a in fig.layout.annotations:  # subplot titles
        a.font = dict(size=11)
    cell_h = cell_px * h / w
    fig.update_layout(height=int(rows * (cell_h + 40) + 86), margin=dict(l=4, r=4, t=64, b=30),
                      legend=dict(orientation="h", yanchor="top", y=-0.005, xanchor="right", x=1,
                                  title=dict(text="classes")),
                      hovermode="closest", plot_bgcolor="white")
    return fig
