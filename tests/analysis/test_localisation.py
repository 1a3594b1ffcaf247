"""Localisation scores against constructed maps with a known answer."""
from __future__ import annotations

import numpy as np
import pytest

from attention_lens.analysis.evaluation import size_of
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
