"""Channel gates' sorted weights: one chart per layer position, models overlaid."""
from __future__ import annotations

import numpy as np

from attention_lens.analysis.attention_view import Inspection, ModelMaps
from attention_lens.analysis.heatmaps import LayerMaps
from attention_lens.views.channels import channel_figure

WEIGHTS = np.array([0.1, 0.9, 0.5, 0.7, 0.2])


def model(name: str, *layers: LayerMaps) -> ModelMaps:
    return ModelMaps(name, None, np.zeros((0, 4)), np.zeros(0), [], (64, 64), list(layers))


def gate(stride: int, weights=None) -> LayerMaps:
    return LayerMaps(3, "model.3", "SE", (64 // stride, 64 // stride), stride, channel_weights=weights)


def test_weights_are_sorted_and_the_top_channels_labelled_by_their_index():
    fig = channel_figure(Inspection(np.zeros((64, 64, 3), np.uint8), [model("a", gate(8, WEIGHTS))]), top_k=2)
    assert list(fig.data[0].y) == [0.9, 0.7, 0.5, 0.2, 0.1]
    assert list(fig.data[0].customdata) == [1, 3, 2, 4, 0]  # the channel behind each point
    labels = [a for a in fig.layout.annotations if a.text.startswith("ch")]
    assert [a.text for a in labels] == ["ch1", "ch3"]
    assert len({a.ay for a in labels}) == len(labels)  # each label on its own step: none overlap


def test_two_models_at_one_stride_share_a_chart_and_only_gated_layers_count():
    ins = Inspection(np.zeros((64, 64, 3), np.uint8),
                     [model("a", gate(8, WEIGHTS), gate(16)), model("b", gate(8, WEIGHTS[::-1]))])
    fig = channel_figure(ins)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert {t.xaxis for t in fig.data} == {"x"}  # one panel: stride 16 has no channel gate
    assert not [a for a in fig.layout.annotations if a.text.startswith("ch")]  # no labels where models share
    assert channel_figure(Inspection(np.zeros((8, 8, 3), np.uint8), [model("c", gate(8))])) is None
