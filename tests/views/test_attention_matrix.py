"""The attention matrix: shared colour scales per kind of map, columns by stride, exact placement."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_lens.views.attention_matrix import cell_axes, cells, matrix_spec
from attention_lens.analysis.attention_view import Inspection, ModelMaps
from attention_lens.analysis.heatmaps import LayerMaps


def layer(index, stride, spatial, hw=(64, 96)):
    lm = LayerMaps(index, f"model.{index}", "CBAM", spatial.shape, stride)
    lm.views["spatial"] = spatial
    return lm


def model(name, layers, input_hw=(64, 96)):
    return ModelMaps(name, "neck_outputs", np.zeros((0, 4)), np.zeros(0), [], input_hw, layers)


def matrix_figure(ins, **options):
    """The matrix as the browser builds it: plotly validates every property of the spec."""
    import plotly.graph_objects as go

    return go.Figure(matrix_spec(ins, **options))


def two_models():
    # Model a's gate spans 0.10..0.80, model b's 0.30..0.50: b is the weaker gate.
    a = np.linspace(0.1, 0.8, 8 * 12).reshape(8, 12)
    b = np.linspace(0.3, 0.5, 8 * 12).reshape(8, 12)
    image = np.zeros((48, 72, 3), np.uint8)
    return Inspection(image, [model("a", [layer(15, 8, a)]), model("b", [layer(15, 8, b)])], (48, 72))


def heatmaps(fig):
    return [t for t in fig.data if t.type == "heatmap"]


def test_one_colour_scale_per_kind_shared_by_all_models():
    fig = matrix_figure(two_models())
    a, b = heatmaps(fig)
    assert a.coloraxis == b.coloraxis  # one scale...
    axis = fig.layout[a.coloraxis]
    assert (axis.cmin, axis.cmax) == (0.1, 0.8)  # ...spanning both maps, so 0.5 is the same colour in both
    assert np.isclose(np.max(b.z), 0.5) and np.isclose(np.min(b.z), 0.3)  # values kept, not stretched
    assert axis.colorbar.title.text == "spatial gate"


def test_stretch_gives_each_map_its_own_full_range_and_says_so():
    fig = matrix_figure(two_models(), stretch=True)
    for h in heatmaps(fig):
        assert np.isclose(np.min(h.z), 0) and np.isclose(np.max(h.z), 1)
    assert "stretched" in fig.layout[heatmaps(fig)[0].coloraxis].colorbar.title.text


def test_layers_line_up_by_stride_and_kinds_get_separate_scales():
    p3, p5 = np.full((8, 12), 0.2), np.full((2, 3), 0.9)
    ins = Inspection(np.zeros((48, 72, 3), np.uint8),
                     [model("a", [layer(15, 8, p3), layer(21, 32, p5)]), model("b", [layer(21, 32, p5)])], (48, 72))
    ins.models[1].layers[0].views = {"channel-weighted activation": np.full((2, 3), 7.0)}
    got = {(c.model, c.column, c.kind) for c in cells(ins)}
    assert got == {("a", (8, 0), "spatial gate"), ("a", (32, 0), "spatial gate"),
                   ("b", (32, 0), "channel-weighted activation")}
    fig = matrix_figure(ins)
    assert len({h.coloraxis for h in heatmaps(fig)}) == 2
    # b's P5 layer sits in the P5 column (the 2nd of 2), row 2: subplot 4, not 3.
    assert [h.xaxis for h in heatmaps(fig)] == ["x", "x2", "x4"]


def test_cell_centres_land_where_ultralytics_scale_boxes_puts_them():
    from ultralytics.utils.ops import scale_boxes

    from attention_lens.views.attention_matrix import Cell
    from attention_lens.runtime.letterbox import letterbox

    original = (290, 520)
    x = letterbox(np.zeros((*original, 3), np.uint8), 320)  # (1, 3, 192, 320): 7 rows of padding
    c = Cell("m", (8, 0), "", "spatial gate", np.zeros((x.shape[2] // 8, x.shape[3] // 8)), tuple(x.shape[2:]), 8)
    xs, ys = cell_axes(c, original, view_scale=0.5)
    centres = torch.tensor([[(j + 0.5) * 8, (i + 0.5) * 8, (j + 0.5) * 8, (i + 0.5) * 8]
                            for i, j in [(0, 0), (5, 7), (23, 39)]], dtype=torch.float32)
    want = scale_boxes(tuple(x.shape[2:]), centres.clone(), original, padding=True)
    assert x.shape[2:] == (192, 320)
    for (i, j), w in zip([(0, 0), (5, 7), (23, 39)], want.numpy()):
        assert np.isclose(xs[j], w[0] * 0.5, atol=1e-3)
        if 0 < w[1] < original[0]:  # scale_boxes clips to the image: compare inside it
            assert np.isclose(ys[i], w[1] * 0.5, atol=1e-3)
    assert 0 < want[1, 1] < original[0]  # at least the middle cell was compared in y


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 3), (4, 2)])
def test_grid_layout_is_the_layout_plotly_make_subplots_writes(rows, cols):
    from plotly.subplots import make_subplots

    from attention_lens.views.attention_matrix import grid_layout

    titles = [f"cell {i}" for i in range(rows * cols)]
    want = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.01,
                         vertical_spacing=0.05).to_dict()["layout"]
    got = grid_layout(rows, cols, titles, 0.01, 0.05)
    for key in [k for k in want if k.startswith(("xaxis", "yaxis"))]:
        assert got[key]["anchor"] == want[key]["anchor"]
        assert got[key]["domain"] == pytest.approx(want[key]["domain"], abs=1e-9)
    for a, b in zip(got["annotations"], want["annotations"]):
        assert a["text"] == b["text"] and (a["x"], a["y"]) == pytest.approx((b["x"], b["y"]), abs=1e-9)


def test_the_background_is_a_small_copy_stretched_over_the_whole_image():
    import base64

    import cv2

    from attention_lens.views.attention_matrix import matrix_spec

    ins = two_models()
    ins.image = np.zeros((900, 1200, 3), np.uint8)
    ins.image[:, :600] = 255  # the left half white: the copy must keep the picture, not just its size
    ins.original_hw = (900, 1200)
    spec = matrix_spec(ins, cell_px=260)
    images = [t for t in spec["data"] if t["type"] == "image"]
    assert len(images) == 2
    for t in images:
        raw = base64.b64decode(t["source"].split(",", 1)[1])
        small = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        assert max(small.shape[:2]) == 520
        assert small.shape[1] * t["dx"] == pytest.approx(1200) and small.shape[0] * t["dy"] == pytest.approx(900)
        assert small[:, :250].min() > 240 and small[:, 270:].max() < 15
    for key in [k for k in spec["layout"] if k.startswith("xaxis")]:
        assert spec["layout"][key]["range"] == [0, 1200]


def test_a_model_with_many_layers_at_one_stride_gets_rows_of_its_own_and_no_title_overflows():
    """Issue 35: the in_csp EMA model's 8 columns shrank every model to thumbnails and the titles
    overprinted. Columns are each stride's first layer (aligned across models); a model's further
    layers at a stride fill rows of their own under its main row, each cell naming its level."""
    from attention_lens.views.attention_matrix import MIN_COLUMNS, PAGE_PX, TITLE_CHAR_PX

    g = np.linspace(0, 1, 8 * 12).reshape(8, 12)
    many = model("yolov5nu-ema-incsp-main-s0-with-a-long-name", [layer(i, 8, g) for i in range(8)])
    few = model("yolov8n-baseline-s0", [layer(15, 8, g), layer(18, 16, g)])
    fig = matrix_figure(Inspection(np.zeros((48, 72, 3), np.uint8), [many, few], (48, 72)))
    rows = len({round(fig.layout[k].domain[0], 3) for k in fig.layout.to_plotly_json() if k.startswith("yaxis")})
    assert rows == 1 + 3 + 1  # many: its main row and 7 more layers in rows of 3; few: one row
    titles = [a.text.split("<br>") for a in fig.layout.annotations if a.text and not a.text.startswith("<b>")]
    budget = int((PAGE_PX - fig.layout.margin.r) / MIN_COLUMNS / TITLE_CHAR_PX)  # the room a cell's title has
    assert all(len(line) <= budget for lines in titles for line in lines)
    assert sum(lines[0].startswith("yolov5nu-ema") for lines in titles) == 4  # the name once a row
    assert ["", "P3 #7 · L6 CBAM"] in titles  # which layer at the stride it is
    headers = [a.text for a in fig.layout.annotations if a.text.startswith("<b>")]
    assert headers == ["<b>P3 · stride 8</b>", "<b>P4 · stride 16</b>"]
    assert len(heatmaps(fig)) == 10


def test_each_colour_bar_stands_beside_the_rows_of_its_kind():
    """Issue 35: the bars were stacked evenly, not beside the rows they describe. Rows: a (spatial
    gate), b (LayerCAM: no attention), c (spatial gate again): the gate's bar spans rows a to c, so
    LayerCAM's, whose row lies inside that span, stands in a lane of its own to the right."""
    g = np.linspace(0, 1, 8 * 12).reshape(8, 12)
    plain = model("b", [])
    plain.layercam = [{"layer": 15, "stride": 8, "grid": g, "map": g}]
    fig = matrix_figure(Inspection(np.zeros((48, 72, 3), np.uint8),
                                   [model("a", [layer(15, 8, g)]), plain, model("c", [layer(15, 8, g)])], (48, 72)))
    rows = sorted({tuple(fig.layout[k].domain) for k in fig.layout.to_plotly_json() if k.startswith("yaxis")},
                  reverse=True)  # top row first
    bars = {fig.layout[h.coloraxis].colorbar.title.text: fig.layout[h.coloraxis].colorbar for h in heatmaps(fig)}
    gate, cam = bars["spatial gate"], next(b for t, b in bars.items() if t.startswith("LayerCAM"))
    assert gate.y - gate.len / 2 == pytest.approx(rows[2][0]) and gate.y + gate.len / 2 == pytest.approx(rows[0][1])
    assert cam.y - cam.len / 2 == pytest.approx(rows[1][0]) and cam.y + cam.len / 2 == pytest.approx(rows[1][1])
    assert cam.x > gate.x  # its own lane: the two bars do not overprint
