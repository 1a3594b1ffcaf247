"""The attention matrix: rows = models, columns = attention layers by stride (P3, P4, P5).

The same layer position of different models lines up in one column. Each cell is the layer's
main map on its feature grid, placed over the image in image pixels (the letterbox undone), with
the detections outlined. Maps of one kind (a spatial gate, EMA's group gates, CoordAtt's h x w
gates, a channel-weighted activation, LayerCAM) share one colour scale across all models in
view, shown as a colour bar with its values; ``stretch=True`` instead stretches each map to its
own range (labelled so on the bar). CoordAtt's 1-D gates are drawn as line plots along the
cell's left (h) and top (w) edges.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_lens.analysis.heatmaps import LAYERCAM_KIND, LEVEL_NAMES, layer_labels, main_view, normalize
from attention_lens.analysis.images import display_copy, jpeg_data_uri

#: JPEG quality of the image under the maps: it is context under a translucent heatmap, and
#: every cell carries its own copy (75 halves the bytes of 85 on the BCCD-like examples).
BACKGROUND_QUALITY = 75
#: Where a model has extra layers at a stride, at least this many cells a row (they fill rows of it).
MIN_COLUMNS = 3
#: The width the matrix gets on a 1440 px page, and a title character's width at 11 px: how many
#: characters a cell's title may take (the figure itself stretches to its container).
PAGE_PX, TITLE_CHAR_PX = 980, 7.2
PLOTLY_SCALES = {"jet": "Jet", "turbo": "Turbo", "inferno": "Inferno", "viridis": "Viridis", "magma": "Magma"}


@dataclass
class Cell:
    model: str
    column: tuple[int, int]  # (stride, k-th layer of this model at that stride)
    title: str
    kind: str
    grid: np.ndarray  # the map on the feature grid
    input_hw: tuple[int, int]
    stride: int
    profiles: dict | None = None  # CoordAtt: "h", "w" 1-D gates
    stretched: bool = False  # the input is RT-DETR's stretch of the image, not a letterbox


def layer_columns(layers) -> list[tuple[int, int]]:
    """The matrix column of each of a model's layers (anything with a ``stride``, or dicts with
    one): (stride, how many of its layers at that stride came before it)."""
    seen: dict[int, int] = {}
    out = []
    for lm in layers:
        stride = lm["stride"] if isinstance(lm, dict) else lm.stride
        seen[stride] = seen.get(stride, -1) + 1
        out.append((stride, seen[stride]))
    return out


def cells(ins) -> list[Cell]:
    """One cell per attention layer (or LayerCAM level, for a model without attention)."""
    out = []
    for mm in ins.models:
        for column, label, lm in zip(layer_columns(mm.layers), layer_labels(mm.layers), mm.layers):
            view, kind = main_view(lm)
            if view is not None:
                out.append(Cell(mm.model, column, label, kind, lm.views[view], mm.input_hw,
                                lm.stride, lm.profiles or None, mm.stretched))
        for column, cam in zip(layer_columns(mm.layercam), mm.layercam):
            out.append(Cell(mm.model, column, f"L{cam['layer']} LayerCAM", LAYERCAM_KIND, cam["grid"],
                            mm.input_hw, cam["stride"], stretched=mm.stretched))
    return out


def kind_ranges(all_cells: list[Cell]) -> dict[str, tuple[float, float]]:
    """The shared colour range of each kind: min and max over every map of that kind in view."""
    ranges: dict[str, tuple[float, float]] = {}
    for c in all_cells:
        lo, hi = float(np.nanmin(c.grid)), float(np.nanmax(c.grid))
        old = ranges.get(c.kind)
        ranges[c.kind] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return {k: (lo, hi if hi > lo else lo + 1e-6) for k, (lo, hi) in ranges.items()}


def cell_axes(c: Cell, original_hw: tuple[int, int], view_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """x and y of each feature cell's centre in display pixels: the letterbox (scale, centred
    padding, as ultralytics' LetterBox and scale_boxes compute it) undone."""
    from attention_lens.runtime.letterbox import letterbox_geometry

    gain_x, gain_y, pad_x, pad_y = letterbox_geometry(c.input_hw, original_hw, c.stretched)
    fh, fw = c.grid.shape
    sy, sx = c.input_hw[0] / fh, c.input_hw[1] / fw
    xs = ((np.arange(fw) + 0.5) * sx - pad_x) / gain_x * view_scale
    ys = ((np.arange(fh) + 0.5) * sy - pad_y) / gain_y * view_scale
    return xs, ys


def matrix_spec(ins, *, opacity: float = 0.5, colormap: str = "jet", stretch: bool = False,
                cell_px: int = 260) -> dict | None:
    """The matrix as a plotly figure's plain data (``{"data": [...], "layout": {...}}``), encoded
    as it is (``app.plots.plot_payload``) without building plotly objects; None when no model has a map."""
    all_cells = cells(ins)
    if not all_cells:
        return None
    models = [mm.model for mm in ins.models if any(c.model == mm.model for c in all_cells)]
    kinds = list(dict.fromkeys(c.kind for c in all_cells))
    ranges = kind_ranges(all_cells)
    h, w = ins.image.shape[:2]
    view_scale = w / ins.original_hw[1] if ins.original_hw[1] else 1.0
    by_place = {(c.model, c.column): c for c in all_cells}
    # The columns are each stride's first layer, so the same position of different models lines up.
    # A model with more layers at a stride (YOLO12's area attention, EMA in every C3) shows the rest
    # in rows of its own under its main row, each cell naming its level.
    main = sorted({c.column for c in all_cells if c.column[1] == 0})
    n_cols = max(len(main), MIN_COLUMNS if any(c.column[1] for c in all_cells) else 1)
    grid_rows: list[tuple[str, list, bool]] = []  # (model, the columns of its cells in this row, an extra row)
    for m in models:
        grid_rows.append((m, main, False))
        extra = sorted(c.column for c in all_cells if c.model == m and c.column[1] > 0)
        grid_rows += [(m, extra[i:i + n_cols], True) for i in range(0, len(extra), n_cols)]
    v_space = min(0.09, 0.2 / len(grid_rows))
    # The colour bars first: the lanes they need narrow the cells, and so the titles' room.
    rows_of = {kind: [r for r, (m, row_columns, _) in enumerate(grid_rows)
                      if any(by_place.get((m, col)) and by_place[(m, col)].kind == kind for col in row_columns)]
               for kind in kinds}
    places = colorbar_places(rows_of, row_domains(len(grid_rows), v_space))
    lanes = 1 + max((lane for *_, lane in places), default=0)
    right = 20 + 70 * lanes
    budget = max(12, int((PAGE_PX - right) / n_cols / TITLE_CHAR_PX))  # characters a title line may take
    titles = []
    for m, row_columns, extra_row in grid_rows:
        named = False  # the model's name once a row, over its first cell
        for k in range(n_cols):
            c = by_place.get((m, row_columns[k])) if k < len(row_columns) else None
            if c is None:
                titles.append("")
                continue
            what = (short_level(row_columns[k]) + " · " if extra_row else "") + c.title
            titles.append(f"{_fit(m, budget) if not named else ''}<br>{_fit(what, budget)}")
            named = True
    # Plain dicts, built into one figure without plotly's per-property validation (with it, the
    # figure cost more than the two forwards it shows on ONNX Runtime).
    layout = grid_layout(len(grid_rows), n_cols, titles, 0.01, v_space)
    # Every cell repeats the image as its own trace's source: a big image goes as a copy at twice
    # the cell's width (sharp on a high-density screen), which keeps the figure small; dx, dy
    # stretch it over the axes. A copy of a small one would cost more than it saves.
    small, shrink = display_copy(ins.image, 2 * cell_px) if max(ins.image.shape[:2]) > 3 * cell_px else (ins.image, 1.0)
    source = jpeg_data_uri(small, quality=BACKGROUND_QUALITY)
    pixel = dict(dx=w / small.shape[1], dy=h / small.shape[0]) if shrink != 1.0 else {}
    scale = PLOTLY_SCALES.get(colormap, "Jet")
    traces, shapes = [], []
    for r, (m, row_columns, _) in enumerate(grid_rows):
        mm = next(x for x in ins.models if x.model == m)
        for k, col in enumerate(row_columns):
            c = by_place.get((m, col))
            if c is None:
                continue
            axis = r * n_cols + k + 1
            ref = "" if axis == 1 else str(axis)
            on_axes = dict(xaxis=f"x{ref}", yaxis=f"y{ref}")
            xs, ys = cell_axes(c, ins.original_hw, view_scale)
            z = normalize(c.grid) if stretch else c.grid
            axis_name = "coloraxis" if kinds.index(c.kind) == 0 else f"coloraxis{kinds.index(c.kind) + 1}"
            traces += [dict(type="image", source=source, hoverinfo="skip", **pixel, **on_axes),
                       dict(type="heatmap", z=np.round(z, 4), x=xs, y=ys, coloraxis=axis_name, opacity=float(opacity),
                            zsmooth="best", hovertemplate=c.kind + ": %{z:.3f}<extra>" + m[:40] + "</extra>",
                            **on_axes)]
            if c.profiles:
                traces += [dict(t, **on_axes) for t in _profile_lines(c, xs, ys, w, h)]
            shapes += [dict(type="rect", x0=float(b[0]), y0=float(b[1]), x1=float(b[2]), y1=float(b[3]),
                            xref=f"x{ref}", yref=f"y{ref}", line=dict(color="white", width=1)) for b in mm.boxes]
    for kind, (y0, y1), lane in places:
        lo, hi = (0.0, 1.0) if stretch else ranges[kind]
        title = f"{kind}<br>(each map stretched)" if stretch else kind
        layout["coloraxis" if kinds.index(kind) == 0 else f"coloraxis{kinds.index(kind) + 1}"] = dict(
            colorscale=scale, cmin=lo, cmax=hi,
            colorbar=dict(title=dict(text=title, side="right", font=dict(size=10)), len=y1 - y0, thickness=12,
                          y=(y0 + y1) / 2, yanchor="middle", x=1.01 + COLORBAR_LANE * lane, tickfont=dict(size=10)))
    layout["shapes"] = shapes
    for key in [k for k in layout if k.startswith(("xaxis", "yaxis"))]:
        layout[key].update(visible=False, range=[0, w] if key.startswith("x") else [h, 0])
    for a in layout.get("annotations", []):
        a["font"] = dict(size=11)
    for k, col in enumerate(main):  # column headers: the level and stride
        layout.setdefault("annotations", []).append(dict(
            text=f"<b>{level_title(col)}</b>", xref=f"x{k + 1 if k else ''} domain", yref="paper", x=0.5, y=1.0,
            yshift=46, showarrow=False, font=dict(size=12)))
    cell_h = cell_px * h / w
    layout.update(height=int(len(grid_rows) * (cell_h + 44) + 80), margin=dict(l=4, r=right, t=74, b=8),
                  plot_bgcolor="white", hovermode="closest")
    return dict(data=traces, layout=layout)


#: How far apart (paper width) colour bars stand when their rows overlap.
COLORBAR_LANE = 0.075


def colorbar_places(rows_of: dict[str, list[int]], domains: list[tuple[float, float]]) -> list[tuple[str, tuple, int]]:
    """(kind, (bottom, top) in paper coordinates, lane) for each kind's colour bar: beside the rows
    that hold maps of that kind, from its first row's top to its last row's bottom; a bar whose rows
    overlap another's stands in the next lane to the right."""
    places, taken = [], []  # taken: (lane, bottom, top)
    for kind, rows in rows_of.items():
        if not rows:
            continue
        y0, y1 = domains[max(rows)][0], domains[min(rows)][1]
        lane = 0
        while any(ln == lane and b < y1 and y0 < t for ln, b, t in taken):
            lane += 1
        taken.append((lane, y0, y1))
        places.append((kind, (y0, y1), lane))
    return places


def short_level(column: tuple[int, int]) -> str:
    """A level in a cell's title, where the column header already gives the stride: "P4 #3"."""
    stride, nth = column
    return LEVEL_NAMES.get(stride, f"stride {stride}") + (f" #{nth + 1}" if nth else "")


def level_title(column: tuple[int, int]) -> str:
    """A matrix column's name: "P4 · stride 16", "#2" for a model's second layer there."""
    stride, nth = column
    return f"{LEVEL_NAMES.get(stride, 'stride')} · stride {stride}" + (f" #{nth + 1}" if nth else "")


def _fit(text: str, budget: int) -> str:
    """``text`` cut to ``budget`` characters (an ellipsis where cut): titles never run into the next."""
    return text if len(text) <= budget else text[: budget - 1] + "…"


def row_domains(rows: int, v_space: float) -> list[tuple[float, float]]:
    """(bottom, top) in paper coordinates of each row of the grid, row 1 first."""
    height = (1 - v_space * (rows - 1)) / rows
    return [tuple(_unit([1 - r * (height + v_space) - height, 1 - r * (height + v_space)])) for r in range(rows)]


def grid_layout(rows: int, cols: int, titles: list[str], h_space: float, v_space: float) -> dict:
    """Axes laid out as a rows x cols grid (row 1 at the top), axis n = (row - 1) * cols + col, and
    each cell's title centred above it: the layout plotly's make_subplots writes, as a dict."""
    width = (1 - h_space * (cols - 1)) / cols
    layout, annotations = {}, []
    for r, (y0, y1) in enumerate(row_domains(rows, v_space)):
        for c in range(cols):
            n = r * cols + c + 1
            sfx = "" if n == 1 else str(n)
            x0 = c * (width + h_space)
            layout[f"xaxis{sfx}"] = dict(anchor=f"y{sfx}", domain=_unit([x0, x0 + width]))
            layout[f"yaxis{sfx}"] = dict(anchor=f"x{sfx}", domain=[y0, y1])
            if titles[n - 1]:
                annotations.append(dict(text=titles[n - 1], x=x0 + width / 2, y=y1, xref="paper", yref="paper",
                                        xanchor="center", yanchor="bottom", showarrow=False))
    layout["annotations"] = annotations
    return layout


def _unit(domain: list[float]) -> list[float]:
    return [min(max(v, 0.0), 1.0) for v in domain]  # float rounding can leave -3e-17


def _profile_lines(c: Cell, xs: np.ndarray, ys: np.ndarray, w: int, h: int) -> list:
    """CoordAtt's h gate as a line along the left edge and its w gate along the top edge, each
    over a band of 12% of the image, 0 at the edge and the layer's max value at the band's end."""
    band_x, band_y = 0.12 * w, 0.12 * h
    ph, pw = np.asarray(c.profiles["h"], float), np.asarray(c.profiles["w"], float)
    top = max(float(ph.max()), float(pw.max()), 1e-6)
    style = dict(type="scatter", mode="lines", line=dict(color="white", width=2), showlegend=False)
    hover = "%s gate %%{customdata:.3f}<extra></extra>"
    return [dict(x=ph / top * band_x, y=ys, customdata=ph, hovertemplate=hover % "h", **style),
            dict(x=xs, y=pw / top * band_y, customdata=pw, hovertemplate=hover % "w", **style)]
