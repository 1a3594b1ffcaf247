"""The plot payload: what gr.Plot sends, encoded once."""
from __future__ import annotations

import numpy as np

from attention_lens.app.plots import plot_payload


def test_the_plot_payload_is_a_valid_plotly_figure_with_the_same_values():
    import plotly.graph_objects as go
    import plotly.io as pio

    z = np.arange(6, dtype=np.float32).reshape(2, 3)
    z[1, 2] = np.nan  # a map with no value there: null, a gap in the heatmap
    x = np.array([1.5, 9.0, 2.5, 9.0, 3.5])[::2]  # a strided view
    spec = {"data": [{"type": "heatmap", "z": z, "x": x, "y": np.array([0.5, 1.5], np.float16)}],
            "layout": {"height": 300, "xaxis": {"range": [0, 4]}}}
    payload = plot_payload(spec)
    assert payload.type == "plotly"
    got = pio.from_json(payload.plot)  # plotly validates what the browser would get
    want = go.Figure(spec)
    np.testing.assert_array_equal(np.asarray(got.data[0].z, float), want.data[0].z)  # null reads back as NaN
    np.testing.assert_array_equal(np.asarray(got.data[0].x), want.data[0].x)
    np.testing.assert_array_equal(np.asarray(got.data[0].y, float), [0.5, 1.5])
    assert got.layout.height == 300 and tuple(got.layout.xaxis.range) == (0, 4)
    assert plot_payload(None) is None
