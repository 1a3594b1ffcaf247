"""The Attention tab's query view: where one image location looks, in every self-attention layer.

Handlers read the session's stored inspection (the captured softmax of each layer), so a new point
costs no forward; they are plain functions a test calls without a browser."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np

from attention_lens.app.errors import UserError
from attention_lens.torch_thread import torch_thread

NO_SELF_ATTENTION = ("None of these models carries self-attention (YOLO11/YOLO26 C2PSA, YOLOv10 PSA, YOLO12 "
                     "area attention, RT-DETR's encoder): no query view. Their maps are above.")


@dataclass(frozen=True)
class QueryView:
    """What the query section shows for one point."""
    image: np.ndarray | None  # the image with the point marked (click on it for another point)
    figure: np.ndarray | None  # per self-attention layer, under its caption: mean over heads, then each head
    note: str
    x: float | None  # the point, original image pixels
    y: float | None

    def outputs(self) -> tuple:
        return self.image, self.figure, self.note, self.x, self.y


@torch_thread
def attention_query(ins, x: float | None = None, y: float | None = None, colormap: str = "jet",
                    opacity: float = 0.55) -> QueryView:
    """Where the location (x, y) of the image (its own pixels; none: the centre of the most confident
    detection) attends, in each self-attention layer of the inspected models."""
    from attention_lens.analysis.query_view import (
        default_point,
        marked,
        query,
        query_figure,
        render_queries,
        self_attention_layers,
    )

    if ins is None:
        raise UserError("No attention maps in this session yet: run Show attention first.")
    from attention_lens.analysis.attention_view import KEEP_ATTENTION_BYTES

    dropped = {mm.model: [f"{lm.name.removeprefix('model.')} ({lm.matrix_dropped})" for lm in mm.layers
                          if lm.matrix_dropped] for mm in ins.models}
    not_kept = "".join(f" Not shown for {model}, whose matrices at this image size are over the "
                       f"{KEEP_ATTENTION_BYTES // 2**20} MB a request keeps (a smaller image size or fewer models "
                       f"shows them): {', '.join(layers)}." for model, layers in dropped.items() if layers)
    if not self_attention_layers(ins):
        return QueryView(None, None, (NO_SELF_ATTENTION if not not_kept else "No query view." + not_kept), None, None)
    if x is None or y is None or not (np.isfinite(float(x)) and np.isfinite(float(y))):
        x, y = default_point(ins)
    h0, w0 = ins.original_hw
    if not (0 <= float(x) <= w0 and 0 <= float(y) <= h0):
        raise UserError(f"The point ({float(x):.0f}, {float(y):.0f}) is outside the image ({w0}x{h0} pixels).")
    point = (float(x), float(y))
    answers = query(ins, point)
    figure = query_figure(render_queries(ins, answers, colormap, float(opacity)), answers)
    note = (f"Query at ({point[0]:.0f}, {point[1]:.0f}) px of the {w0}x{h0} image: where the feature cell under it "
            f"attends, in {len(answers)} self-attention layer(s). Each figure: the mean over heads, then each head, "
            "on one colour scale (attention times the keys the query sees: 1 = uniform); the white square is the "
            "query's cell; for area attention the dimmed part is outside its area. Click the image for another "
            "point." + not_kept)
    return QueryView(marked(ins, point), figure, note, *point)


def click_point(ins, index) -> tuple[float, float]:
    """A click on the shown image (its pixels, gradio's SelectData.index) -> original image pixels."""
    if ins is None or index is None or len(index) != 2:
        raise UserError("Run Show attention first, then click the image.")
    scale = ins.original_hw[1] / ins.image.shape[1]
    return float(index[0]) * scale, float(index[1]) * scale


def query_point(stored, x: float | None = None, y: float | None = None, colormap: str = "jet",
                opacity: float = 0.5) -> tuple:
    """Where the location (x, y) of the image (pixels; empty: the centre of the most confident
    detection) attends in each self-attention layer of this session's last /attention call.
    Returns (the image with the point marked, one figure per layer, a note, x, y)."""
    return attention_query(stored, x, y, colormap, opacity).outputs()


def query_top_detection(stored, colormap: str = "jet", opacity: float = 0.5) -> tuple:
    """``query_point`` at the centre of the most confident detection (after a new inspection)."""
    return query_point(stored, None, None, colormap, opacity)


def query_click(stored, colormap: str = "jet", opacity: float = 0.5, evt: gr.SelectData = None) -> tuple:
    """``query_point`` where the shown image was clicked."""
    x, y = click_point(stored, evt.index if evt is not None else None)
    return query_point(stored, x, y, colormap, opacity)
