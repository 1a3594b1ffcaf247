"""Several models' detections on one image, a cell each."""
from __future__ import annotations

import numpy as np

from attention_lens.views.result_grid import results_grid


def test_the_results_grid_has_a_cell_and_every_box_of_each_model():
    view = np.zeros((120, 160, 3), np.uint8)
    records = [{"model": "a", "class": "RBC", "confidence": 0.9, "box": [10, 20, 50, 60], "diff": "reference"},
               {"model": "b", "class": "RBC", "confidence": 0.8, "box": [12, 20, 50, 60], "diff": "matched"},
               {"model": "b", "class": "WBC", "confidence": 0.3, "box": [100, 40, 150, 90], "diff": "only here"},
               {"model": "c", "class": "RBC", "confidence": None, "box": [10, 20, 50, 60], "diff": "missed"}]
    fig = results_grid(view, 0.5, records, ["a", "b", "c"])
    assert sum(t.type == "image" for t in fig.data) == 3
    rects = [(s.x0, s.y0, s.x1, s.y1, s.line.dash) for s in fig.layout.shapes]
    # boxes in display pixels (scale 0.5); dashed = only here, dotted = missed
    assert rects == [(5, 10, 25, 30, "solid"), (6, 10, 25, 30, "solid"), (50, 20, 75, 45, "dash"),
                     (5, 10, 25, 30, "dot")]
    hover = [t for t in fig.data if t.type == "scatter" and t.x[0] is not None]
    assert [list(t.text) for t in hover] == [["RBC 0.90"], ["RBC 0.80", "WBC 0.30"], ["missed RBC"]]
    assert [s.xref for s in fig.layout.shapes] == ["x", "x2", "x2", "x3"]  # each in its own model's cell


def test_long_model_names_are_cut_so_titles_never_run_into_the_next_cell():
    """Issue 35: "...(onnxruntime)yolov8n-coordatt-neck-s0..." where two titles collided."""
    view = np.zeros((120, 160, 3), np.uint8)
    names = ["yolov5nu-ema-incsp-main-s0-with-a-much-longer-run-name", "b", "c"]
    summaries = {n: "4 boxes · 40 ms (onnxruntime)" for n in names}
    fig = results_grid(view, 0.5, [], names, summaries)
    first = fig.layout.annotations[0].text
    name, stats = first.split("<br>")
    assert len(name) == 44 and name.endswith("…") and names[0].startswith(name[:-1])
    assert stats == "4 boxes · 40 ms (onnxruntime)"
    assert fig.layout.annotations[1].text == "b<br>4 boxes · 40 ms (onnxruntime)"
