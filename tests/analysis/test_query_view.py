"""The query view: an image point -> a feature cell -> where that cell attends, in image pixels.

Checked on constructed attention matrices with a known answer, for a non-square image whose
letterbox pads it (the expected pixels are worked out here from the letterbox's arithmetic, not
read from the code under test)."""
from __future__ import annotations

import numpy as np
import pytest

from attention_lens.analysis.attention_view import Inspection, ModelMaps
from attention_lens.analysis.heatmaps import LayerMaps
from attention_lens.analysis.query_view import default_point, feature_cell, marked, query, render_queries

# A 270 x 500 image letterboxed to 320: gain 0.64, resized to 173 x 320, padded to 192 x 320
# (auto: the next multiple of 32), the padding centred: 9.5 px above -> ultralytics rounds to 9.
ORIGINAL_HW = (270, 500)
INPUT_HW = (192, 320)
GAIN, PAD_TOP = 0.64, 9
STRIDE = 16
GRID = (INPUT_HW[0] // STRIDE, INPUT_HW[1] // STRIDE)  # 12 x 20


def _inspection(attn: np.ndarray, shown_scale: float = 1.0, boxes=None, scores=None) -> Inspection:
    lm = LayerMaps(10, "model.10.m.0.attn", "SelfAttention", GRID, STRIDE, {"self_attention": attn})
    h, w = round(ORIGINAL_HW[0] * shown_scale), round(ORIGINAL_HW[1] * shown_scale)
    boxes = np.zeros((0, 4)) if boxes is None else np.asarray(boxes, float) * shown_scale
    mm = ModelMaps("m", None, boxes, np.asarray(scores if scores is not None else []), ["x"] * len(boxes), INPUT_HW,
                   [lm])
    return Inspection(np.full((h, w, 3), 128, np.uint8), [mm], ORIGINAL_HW)


def _cell_in_image(row: int, col: int) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a feature cell in original pixels, from the letterbox's arithmetic."""
    return (col * STRIDE / GAIN, (row * STRIDE - PAD_TOP) / GAIN, (col + 1) * STRIDE / GAIN,
            ((row + 1) * STRIDE - PAD_TOP) / GAIN)


def test_a_point_falls_in_the_cell_the_letterbox_puts_it_in():
    for row, col in ((0, 0), (5, 13), (11, 19), (6, 7)):
        x0, y0, x1, y1 = _cell_in_image(row, col)
        x, y = (max(x0, 0) + min(x1, 499)) / 2, (max(y0, 0) + min(y1, 269)) / 2
        cell = feature_cell((x, y), ORIGINAL_HW, INPUT_HW, STRIDE, GRID)
        assert (cell.row, cell.col) == (row, col)
        assert cell.centre_xy == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2), abs=0.6)
    # Outside the image: held at the edge cells, never an index error.
    far = feature_cell((-40, 10_000), ORIGINAL_HW, INPUT_HW, STRIDE, GRID)
    assert (far.row, far.col) == (11, 0)


def test_all_mass_on_one_key_peaks_on_that_cell_in_image_pixels():
    n = GRID[0] * GRID[1]
    key = 5 * GRID[1] + 13
    attn = np.zeros((1, 2, n, n), np.float32)
    attn[0, 0, :, key] = 1.0  # head 0: every query looks at cell (5, 13) only
    attn[0, 1] = 1.0 / n  # head 1: uniform
    ins = _inspection(attn, shown_scale=0.5)
    [answer] = query(ins, (60.0, 200.0))
    assert answer.heads.shape == (2, *GRID)
    assert answer.heads[0, 5, 13] == pytest.approx(n) and answer.heads[0].sum() == pytest.approx(n)
    assert np.allclose(answer.heads[1], 1.0)  # uniform reads 1 everywhere
    from attention_lens.analysis.query_view import grid_to_image

    shown_hw = ins.image.shape[:2]
    heat = grid_to_image(answer.heads[0], INPUT_HW, ORIGINAL_HW, shown_hw)
    ys, xs = np.nonzero(heat)
    x0, y0, x1, y1 = (v * 0.5 for v in _cell_in_image(5, 13))  # the shown copy is half size
    assert xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() <= y1 + 1
    assert xs.max() - xs.min() >= (x1 - x0) - 2 and ys.max() - ys.min() >= (y1 - y0) - 2
    figure, caption = render_queries(ins, [answer])[0]
    assert figure.ndim == 3 and "cell (" in caption and "x uniform" in caption


def test_area_attention_sees_only_its_own_area():
    n = GRID[0] * GRID[1]
    areas = 4  # runs of 3 rows each
    per = n // areas
    attn = np.zeros((areas, 1, per, per), np.float32)
    attn[:, 0, :, 0] = 1.0  # each query looks at the first cell of its own area
    ins = _inspection(attn)
    x0, y0, x1, y1 = _cell_in_image(7, 4)  # row 7: the third area (rows 6-8)
    [answer] = query(ins, ((x0 + x1) / 2, (y0 + y1) / 2))
    assert answer.cell.area == 2 and answer.cell.areas == 4
    assert answer.area_mask.sum() == per and answer.area_mask[6:9].all()
    assert answer.heads[0, 6, 0] == pytest.approx(per) and answer.heads[0].sum() == pytest.approx(per)
    assert "area 3 of 4" in answer.caption()


def test_default_point_is_the_most_confident_box_centre_in_original_pixels():
    n = GRID[0] * GRID[1]
    attn = np.full((1, 1, n, n), 1.0 / n, np.float32)
    ins = _inspection(attn, shown_scale=0.5, boxes=[[10, 20, 30, 60], [100, 100, 200, 150]], scores=[0.4, 0.9])
    assert default_point(ins) == pytest.approx((150.0, 125.0))
    assert default_point(_inspection(attn)) == pytest.approx((250.0, 135.0))  # no boxes: the centre
    im = marked(ins, (150.0, 125.0))
    assert im.shape == ins.image.shape and (im != ins.image).any()


def test_the_largest_matrices_are_let_go_beyond_the_budget_and_say_so():
    from attention_lens.analysis.attention_view import _keep_attention
    from attention_lens.app.query_handlers import attention_query

    n = GRID[0] * GRID[1]
    big = np.full((1, 4, n, n), 1.0 / n, np.float32)  # 4 heads: 0.9 MB
    small = np.full((1, 1, n, n), 1.0 / n, np.float32)  # 0.2 MB
    ins = _inspection(big)
    ins.models[0].layers.append(LayerMaps(11, "model.11.attn", "SelfAttention", GRID, STRIDE,
                                          {"self_attention": small}))
    _keep_attention(ins.models, budget=small.nbytes)
    first, second = ins.models[0].layers
    assert "self_attention" not in first.gates and first.matrix_dropped == "1 MB"
    assert "self_attention" in second.gates and not second.matrix_dropped
    # The statistics come from the whole matrix, before it went: uniform -> entropy log(n).
    assert first.head_stats[1] == pytest.approx([np.log(n)] * 4, rel=1e-5)
    view = attention_query(ins)
    assert view.figure is not None and "Not shown for m," in view.note and "10.m.0.attn (1 MB)" in view.note


def test_letting_go_after_each_model_keeps_what_letting_go_after_all_keeps():
    """The Attention view lets go of matrices after each model (so one request never holds more
    than the budget and one model's); the kept set is the one letting go once at the end keeps:
    matrices of 4, 3 and 2 units under a budget of 6.4 arrive in that order and then reversed; both
    times the 4 goes, the 3 and the 2 stay."""
    from attention_lens.analysis.attention_view import _keep_attention

    n = GRID[0] * GRID[1]
    unit = np.full((1, 1, n, n), 1.0 / n, np.float32)
    budget = int(6.4 * unit.nbytes)
    for heads in ((4, 3, 2), (2, 3, 4)):
        models = []
        for k, h in enumerate(heads):
            models.append(_inspection(np.repeat(unit, h, axis=1)).models[0])
            models[-1].model = f"m{k}"
            _keep_attention(models, budget=budget)
        kept = sorted(lm.gates["self_attention"].shape[1] for mm in models for lm in mm.layers
                      if "self_attention" in lm.gates)
        assert kept == [2, 3]
        assert all(lm.head_stats is not None for mm in models for lm in mm.layers)


def test_a_stretched_input_maps_a_point_and_a_peak_by_a_gain_per_axis():
    """RT-DETR's input: the 270 x 500 image stretched to 320 x 320 (gains 320/500 across, 320/270
    down, no padding); stride 32 gives a 10 x 10 grid, each cell 50 x 27 original pixels."""
    grid, stride, input_hw = (10, 10), 32, (320, 320)
    cell_w, cell_h = 500 / 10, 270 / 10
    cell = feature_cell((7.5 * cell_w, 2.5 * cell_h), ORIGINAL_HW, input_hw, stride, grid, stretched=True)
    assert (cell.row, cell.col) == (2, 7)
    assert cell.centre_xy == pytest.approx((7.5 * cell_w, 2.5 * cell_h))
    n = grid[0] * grid[1]
    attn = np.zeros((1, 1, n, n), np.float32)
    attn[0, 0, :, 4 * 10 + 3] = 1.0  # every query looks at cell (4, 3)
    lm = LayerMaps(11, "model.11", "EncoderSelfAttention", grid, stride, {"self_attention": attn})
    mm = ModelMaps("detr", None, np.zeros((0, 4)), np.zeros(0), [], input_hw, [lm], stretched=True)
    ins = Inspection(np.full((*ORIGINAL_HW, 3), 128, np.uint8), [mm], ORIGINAL_HW)
    [answer] = query(ins, (10.0, 10.0))
    from attention_lens.analysis.query_view import grid_to_image

    heat = grid_to_image(answer.heads[0], input_hw, ORIGINAL_HW, ORIGINAL_HW, stretched=True)
    ys, xs = np.nonzero(heat)
    assert (xs.min(), xs.max() + 1) == (round(3 * cell_w), round(4 * cell_w))
    assert abs(ys.min() - 4 * cell_h) <= 1 and abs(ys.max() + 1 - 5 * cell_h) <= 1
