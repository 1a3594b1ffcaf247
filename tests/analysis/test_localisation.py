"""Localisation scores against constructed maps with a known answer."""
from __future__ import annotations

import numpy as np
import pytest

from attention_lens.evaluation.coco import size_of
from attention_lens.analysis.localisation import groups_of, score_map, summarise


def _boxes(*rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def test_uniform_map_scores_one_and_a_point_map_scores_its_known_mass():
    # A 320x320 input over a 320x320 image: no letterbox, stride 32, a 10x10 grid.
    boxes = _boxes([0, 64, 64, 128, 128])  # exactly cells (2..3, 2..3): 4 of 100 cells
    groups = groups_of(boxes, ["cell"], size_of)
    flat = score_map(np.ones((10, 10)), (320, 320), (320, 320), boxes, groups)
    assert flat["all"][0] == pytest.approx(1.0)
    # All mass on one cell inside the box: share 1.0 over an area share of 0.04 -> 25.
    peak = np.zeros((10, 10))
    peak[2, 3] = 5.0
    s = score_map(peak, (320, 320), (320, 320), boxes, groups)
    assert s["all"] == (pytest.approx(25.0), True)
    # Half the mass inside, half on a cell far outside: 0.5 / 0.04 = 12.5; the argmax (first
    # of two equal maxima in row order) is the inside cell.
    peak[8, 8] = 5.0
    assert score_map(peak, (320, 320), (320, 320), boxes, groups)["all"] == (pytest.approx(12.5), True)


def test_letterbox_padding_is_not_image_and_scores_come_back_in_original_pixels():
    # A 640x480 image letterboxed into 320x256 (stride 32): gain 0.5, resized to 320x240, 8 rows
    # of padding top and bottom.
    image_hw, input_hw = (480, 640), (256, 320)
    grid = np.zeros((8, 10))  # stride 32
    grid[:, :] = 1.0
    grid[0, :] = 100.0  # row 0 covers input rows 0..31: 8 rows of padding + 24 image rows
    boxes = _boxes([0, 0, 0, 640, 48])  # original rows 0..48 -> input rows 8..32 (24 image rows)
    s = score_map(grid, input_hw, image_hw, boxes, groups_of(boxes, ["a"], size_of))
    # Inside: 24 rows x 320 cols at 100 = 768000; image total adds 216 rows at 1 = 69120.
    share = 768000 / (768000 + 69120)
    area = 24 / 240
    assert s["all"][0] == pytest.approx(share / area)
    assert s["all"][1]  # the strongest cell's centre (input row 16 -> original row 16) is in the box


def test_pointing_game_uses_the_tolerance_in_original_pixels():
    grid = np.zeros((10, 10))
    grid[5, 5] = 1.0  # centre at input (176, 176) = original (176, 176)
    near = _boxes([0, 180, 180, 220, 220])  # 4 px away on both axes
    far = _boxes([0, 200, 200, 240, 240])  # 24 px away
    assert score_map(grid, (320, 320), (320, 320), near, {"all": np.arange(1)})["all"][1]
    assert not score_map(grid, (320, 320), (320, 320), near, {"all": np.arange(1)}, tolerance=0)["all"][1]
    assert not score_map(grid, (320, 320), (320, 320), far, {"all": np.arange(1)})["all"][1]


def test_groups_by_class_and_size_and_union_of_overlapping_boxes():
    boxes = _boxes([0, 0, 0, 20, 20], [1, 0, 0, 200, 200], [1, 10, 10, 20, 20])
    g = groups_of(boxes, ["small thing", "big thing"], size_of)
    assert {k: v.tolist() for k, v in g.items()} == {
        "all": [0, 1, 2], "class small thing": [0], "class big thing": [1, 2],
        "size small": [0, 2], "size large": [1]}
    # The union counts an overlapped pixel once: boxes 0 and 2 overlap; a uniform map scores 1.
    s = score_map(np.ones((10, 10)), (320, 320), (320, 320), boxes, g)
    assert all(r == pytest.approx(1.0) for r, _ in s.values())


def test_summarise_averages_over_the_images_that_have_each_group():
    per_image = [
        {"L15 EMA": {"kind": "k", "stride": 8, "groups": {"all": [2.0, True], "class a": [4.0, True]}}},
        {"L15 EMA": {"kind": "k", "stride": 8, "groups": {"all": [1.0, False]}}},
        None,  # an image without objects
    ]
    (row,) = summarise(per_image)
    assert row["level"] == "P3"
    assert row["groups"]["all"] == {"energy ratio": 1.5, "pointing game": 0.5, "images": 2}
    assert row["groups"]["class a"] == {"energy ratio": 4.0, "pointing game": 1.0, "images": 1}


def test_self_attention_kept_in_box_on_constructed_matrices():
    """A 320 x 320 image, no letterbox, stride 32: a 10 x 10 grid. One object covers cells
    (2..3, 2..3): 4 of 100 cells, so a head with no preference keeps 4 % of each of those
    queries' attention on the object."""
    from attention_lens.analysis.localisation import in_box_scores, object_cells

    boxes = _boxes([0, 64, 64, 128, 128])
    [cells] = object_cells(boxes, (320, 320), (320, 320), 32, (10, 10))
    assert sorted(cells.tolist()) == [22, 23, 32, 33]
    n = 100
    attn = np.zeros((1, 3, n, n))
    attn[0, 0] = 1.0 / n  # head 0: uniform -> 1
    attn[0, 1, :, 22] = 1.0  # head 1: every query on cell (2, 2), inside the object -> 1 / 0.04 = 25
    attn[0, 2, :, 99] = 1.0  # head 2: every query on a far corner -> 0
    groups = groups_of(boxes, ["cell"], size_of)
    scores = in_box_scores(attn, (10, 10), 32, (320, 320), (320, 320), boxes, groups)
    assert scores["all"][0] == 1 and scores["all"][1] == pytest.approx([1.0, 25.0, 0.0])
    # Two areas (rows 0-4 and 5-9), an object across both: each query sees only its own half, so
    # no preference keeps 2 of its area's 50 cells; all mass on an object cell of its own area.
    tall = _boxes([0, 64, 128, 96, 192])  # column 2, rows 4..5
    [cells] = object_cells(tall, (320, 320), (320, 320), 32, (10, 10))
    assert sorted(cells.tolist()) == [42, 52]
    two = np.zeros((2, 1, 50, 50))
    two[0, 0, :, 42] = 1.0  # area 0 (rows 0-4): all on (4, 2)
    two[1, 0, :, 2] = 1.0  # area 1 (rows 5-9): all on (5, 2), local index 2
    got = in_box_scores(two, (10, 10), 32, (320, 320), (320, 320), tall, groups_of(tall, ["cell"], size_of))
    assert got["all"][1] == pytest.approx([(1 + 1) / (1 / 50 + 1 / 50)])


def test_an_object_smaller_than_a_cell_is_its_centre_cell_through_the_letterbox():
    """A 270 x 500 image letterboxed to 192 x 320 (gain 0.64, 9 px of padding on top), stride 16:
    a 10-pixel object centred at (340, 120) holds no cell centre; its centre falls in input pixel
    (217.6, 85.8), the cell (5, 13)."""
    from attention_lens.analysis.localisation import object_cells

    [cells] = object_cells(_boxes([0, 335, 115, 345, 125]), (192, 320), (270, 500), 16, (12, 20))
    assert cells.tolist() == [5 * 20 + 13]


def test_summarise_weights_the_in_box_share_by_objects():
    one = {"L10 SelfAttention": {"kind": "k", "stride": 32, "groups": {"all": [1.0, True]},
                                 "in_box": {"all": [1, [4.0, 1.0]]}}}
    three = {"L10 SelfAttention": {"kind": "k", "stride": 32, "groups": {"all": [1.0, True]},
                                   "in_box": {"all": [3, [2.0, 1.0]]}}}
    [row] = summarise([one, three, None])
    assert row["groups"]["all"]["in-box share per head"] == pytest.approx([(4 + 3 * 2) / 4, 1.0])
    assert row["groups"]["all"]["objects"] == 4


def test_the_validators_input_is_scored_where_its_pixels_show_the_image():
    """The evaluation pass scores maps over the validator's letterbox (``val_letterbox``: its
    own resize, half a stride more padding than the predictor's). A 270 x 500 image at 320,
    stride 32 (a 192 x 352 input, 16 px of padding left, 9 on top): its pixels lie where
    ``val_geometry`` says (found in the input tensor itself, the padding being ultralytics' grey
    114), and a map's peak is carried back through that padding, not the predictor's."""
    from attention_lens.analysis.localisation import score_map
    from attention_lens.runtime.letterbox import letterbox_geometry, val_geometry, val_letterbox

    image = np.full((270, 500, 3), 250, np.uint8)
    x, ratio_pad = val_letterbox(image, 320, 32)
    gx, gy, px, py = val_geometry(ratio_pad)
    content = (x[0, 0].numpy() * 255).round() != 114
    rows, cols = np.flatnonzero(content.any(1)), np.flatnonzero(content.any(0))
    assert tuple(x.shape[2:]) == (192, 352) and (px, py) == (cols[0], rows[0]) == (16, 9)
    assert (round(500 * gx), round(270 * gy)) == (cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1)
    assert letterbox_geometry((192, 352), (270, 500))[2] != px  # the predictor's would centre it otherwise
    # The peak at cell (2, 5): its centre, input (176, 80), is original ((176 - 16) / 0.64, (80 - 9) / gy)
    # = (250, 111), inside the box; through no left padding it would be x = 275, outside.
    grid = np.zeros((6, 11))
    grid[2, 5] = 1.0
    box = _boxes([0, 200, 100, 260, 150])
    assert score_map(grid, (192, 352), (270, 500), box, {"all": np.arange(1)}, tolerance=0,
                     geometry=(gx, gy, px, py))["all"][1]
    assert not score_map(grid, (192, 352), (270, 500), box, {"all": np.arange(1)}, tolerance=0,
                         geometry=(gx, gy, 0, py))["all"][1]


@pytest.mark.parametrize("name", ["yolov8n-baseline-s0", "yolo12n-baseline-s0"])
def test_scores_in_runs_bounded_by_memory_equal_one_image_at_a_time(name, monkeypatch):
    """Five images of one shape, a memory bound of two images a run: three forwards, and each
    image's detections and scores those of the image scored alone. A model without attention runs
    LayerCAM (forward and backward); YOLO12 captures its area attention (a tap holds batch x areas
    runs, so a run's slicing shows)."""
    from pathlib import Path

    import torch

    from attention_lens.analysis.images import load_image
    from attention_lens.analysis.localisation import detect_and_score, detect_and_score_batch
    from attention_lens.modeling.load import load_model
    from attention_lens.runtime import detect
    from attention_lens.runtime.letterbox import letterbox, model_stride

    monkeypatch.setenv("ATTENTION_LENS_BACKEND", "pytorch")
    root = Path(__file__).resolve().parents[2]
    model = load_model(root / "weights" / name / "best.pt")
    image = load_image(root / "assets" / "examples" / "synthetic_smear_1.jpg")
    images = [np.ascontiguousarray(image[:, ::-1]) if k % 2 else image for k in range(5)]
    x = torch.cat([letterbox(rgb, 320, model_stride(model)) for rgb in images])
    h, w = image.shape[:2]
    gt = np.array([[0, 0.2 * w, 0.2 * h, 0.5 * w, 0.6 * h]])
    groups = [{"all": np.arange(1)}] * 4 + [{}]  # the last image has no objects: no scores
    per_image = model.cost.input_bytes(x.shape[2] * x.shape[3])
    monkeypatch.setattr(detect, "BATCH_BYTES", int(2.5 * per_image))
    calls = []
    hook = model.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    try:
        got = detect_and_score_batch(model, images, x, [None] * 5, groups, [gt] * 5)
    finally:
        hook.remove()
    assert calls == [2, 2, 1]
    assert got[4][1] is None and len(got[4][0].boxes) > 0
    for k in range(4):
        det, alone = detect_and_score(model, images[k], groups[k], gt, x=x[k:k + 1])
        assert list(got[k][1]) == list(alone) and len(alone) >= 2
        for label in alone:
            assert got[k][1][label]["groups"]["all"][0] == pytest.approx(alone[label]["groups"]["all"][0], abs=1e-3)
            for heads, want in zip(got[k][1][label].get("in_box", {}).get("all", [0, []])[1],
                                   alone[label].get("in_box", {}).get("all", [0, []])[1]):
                assert heads == pytest.approx(want, abs=1e-3)
        assert np.allclose(np.sort(got[k][0].scores), np.sort(det.scores), atol=1e-4)
        assert not got[k][0].maps  # let go once scored
