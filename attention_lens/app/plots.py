"""A figure's plain data encoded once as what gr.Plot sends (no plotly objects built)."""
from __future__ import annotations

def plot_payload(spec: dict | None):
    """A figure's plain data as what gr.Plot sends, encoded here once: a plotly Figure would be
    validated and deep-copied on construction, then re-encoded by gr.Plot (more than the forwards
    the view shows on ONNX Runtime: docs/PERFORMANCE.md, section 11). orjson writes the numpy
    arrays itself (NaN as null, as plotly does); plotly.io.to_json would add an escaping pass for
    embedding in an HTML page, which the JSON gr.Plot sends never is."""
    import orjson
    from gradio.components.plot import PlotData

    if spec is None:
        return None
    return PlotData(type="plotly", plot=orjson.dumps(spec, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY).decode())


def _json_default(obj):
    """What orjson cannot write itself (a strided numpy view, a float16 array) as a list."""
    import numpy as np

    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")
