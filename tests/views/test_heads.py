"""The heads chart: distances in image pixels and entropies, per head, from known statistics."""
from __future__ import annotations

import numpy as np
import pytest

from attention_lens.analysis.attention_view import Inspection, ModelMaps, _keep_attention
from attention_lens.views.heads import head_figure
from attention_lens.analysis.heatmaps import LayerMaps


def test_each_head_is_a_bar_in_image_pixels_and_uniform_entropy_is_the_line():
    # A 270 x 500 image in a 192 x 320 letterbox: gain 0.64, so a stride-16 cell is 25 image px.
    h, w = 12, 20
    n = h * w
    attn = np.zeros((1, 2, n, n), np.float32)
    attn[0, 0] = np.eye(n)  # head 0 looks at itself: distance 0, entropy 0
    attn[0, 1] = 1.0 / n  # head 1 uniform: entropy log(n)
    layers = [LayerMaps(10, "model.10.m.0.attn", "SelfAttention", (h, w), 16, {"self_attention": attn})]
    mm = ModelMaps("m", None, np.zeros((0, 4)), np.zeros(0), [], (192, 320), layers)
    ins = Inspection(np.zeros((270, 500, 3), np.uint8), [mm], (270, 500))
    _keep_attention(ins.models)
    fig = head_figure(ins)
    distance, entropy = fig.data
    cells = [(r, c) for r in range(h) for c in range(w)]
    uniform_px = 25 * np.mean([np.hypot(r1 - r2, c1 - c2) for r1, c1 in cells[::7] for r2, c2 in cells])
    assert list(distance.x) == ["h0", "h1"]
    assert distance.y[0] == pytest.approx(0) and distance.y[1] == pytest.approx(uniform_px, rel=0.02)
    assert entropy.y == pytest.approx([0, np.log(n)], abs=1e-4)
    line = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert line and line[0].y0 == pytest.approx(np.log(n))
    assert head_figure(Inspection(ins.image, [ModelMaps("p", None, mm.boxes, mm.scores, [], (192, 320))],
                                  (270, 500))) is None
