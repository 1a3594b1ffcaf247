"""Attention tab handlers: every attention layer's maps of the selected models on one image
(the matrix first, then the gallery, the charts and the downloads). Plain functions; tests call
them without a browser."""
from __future__ import annotations

from typing import NamedTuple

import gradio as gr

from attention_lens.app.errors import UserError, user_facing
from attention_lens.app.inputs import image_size, resolve_models, uploaded_path, within_budget
from attention_lens.app.plots import plot_payload
from attention_lens.app.sessions import session_folder
from attention_lens.modeling.catalog import ModelStore
from attention_lens.torch_thread import torch_thread


class AttentionView(NamedTuple):
    """One inspection as the Attention tab first shows it (in the order of the event's outputs).
    What follows from ``inspection``: every map as an image and the charts (``attention_extras``),
    the query view and the downloads (``attention_downloads``): the matrix shows without waiting."""
    notice: str  # markdown: the models without attention, whose maps are LayerCAM instead
    table: object  # pandas DataFrame: every attention layer
    matrix: object  # the attention matrix as gr.Plot's payload
    summary: dict  # per model and layer, each captured map's shape and range
    inspection: object  # attention_view.Inspection, kept in the session's state


def run_attention(store: ModelStore, image, selected, colormap, alpha, conf, imgsz, uploads=None, stretch=False,
                  progress=None) -> AttentionView:
    """Every selected model's attention maps over ``image``."""
    if not selected and not uploads:
        raise UserError("Pick at least one model.")
    imgsz = image_size(imgsz)
    models = resolve_models(store, selected, uploads, progress)
    within_budget(models, imgsz)
    return _run_attention(store, models, image, colormap, alpha, conf, imgsz, stretch)


@torch_thread
def _run_attention(store: ModelStore, models: dict, image, colormap, alpha, conf, imgsz, stretch=False):
    from attention_lens.analysis.attention_view import inspect, no_attention_models
    from attention_lens.views.attention_matrix import matrix_spec

    with user_facing():
        placements = {name: (store.entries[name].placement if name in store.entries else None) for name in models}
        ins = inspect(image, models, placements, imgsz=int(imgsz), conf=float(conf))
    plain = no_attention_models(ins)
    notice = ("" if not plain else
              "**No attention layers** in " + ", ".join(plain) + ": no gates to hook. Shown instead: LayerCAM on "
              "the Detect inputs, a different kind of map (where the class scores are sensitive, from gradients).")
    summary = {mm.model: [{"layer": lm.layer, "module": lm.module, "stride": lm.stride,
                           "maps": {k: {"shape": list(v.shape), "min": round(float(v.min()), 4),
                                        "max": round(float(v.max()), 4)} for k, v in lm.gates.items()}}
                          for lm in mm.layers] for mm in ins.models}
    matrix = plot_payload(matrix_spec(ins, opacity=float(alpha), colormap=colormap, stretch=bool(stretch)))
    return AttentionView(notice, ins.table(), matrix, summary, ins)


@torch_thread
def attention_extras(ins, colormap="jet", alpha=0.5):
    """UI, after the matrix: every map as an overlay image, the channel-gate charts and the
    self-attention heads' distance and entropy."""
    from attention_lens.analysis.attention_view import render
    from attention_lens.views.channels import channel_figure
    from attention_lens.views.charts import message_figure
    from attention_lens.views.heads import head_figure

    if ins is None:
        return [], None, None
    channels = channel_figure(ins) or message_figure(
        "No channel gates in the selected models (SE, ECA, CBAM and PolarizedSA have them).")
    heads = head_figure(ins) or message_figure(
        "No self-attention in the selected models (YOLO11/YOLO26 C2PSA, YOLOv10 PSA, YOLO12 area attention and "
        "RT-DETR's encoder have it).")
    return render(ins, float(alpha), colormap), channels, heads


@torch_thread
def attention_downloads(ins, colormap, alpha, session: str | None = None) -> list[str] | None:
    """The overlays (PNG, zipped) and raw maps (.npz) of a stored inspection, as now rendered.

    A separate step because the lossless files take longer to write (~0.3 s for 15 overlays)
    than the models took to run: the maps show first, the files follow. They are written into
    the session's own folder, which holds only the latest files and is removed when the session ends."""
    from attention_lens.analysis.attention_view import export, render

    return export(ins, render(ins, float(alpha), colormap), session_folder(session)) if ins is not None else None


def attention_matrix(ins, colormap="jet", opacity=0.5, stretch=False):
    """UI: the attention matrix of a stored inspection (rows = models, columns = P3/P4/P5)."""
    from attention_lens.views.attention_matrix import matrix_spec

    return plot_payload(matrix_spec(ins, opacity=float(opacity), colormap=colormap, stretch=bool(stretch))) if ins else None


@torch_thread
def rerender_attention(ins, colormap, alpha):
    """Overlays again from the captured maps: opacity and colormap never rerun the models."""
    from attention_lens.analysis.attention_view import render

    return render(ins, float(alpha), colormap) if ins is not None else []


def attention(store: ModelStore, examples: list[str], image, models: list[str] | None = None, colormap: str = "jet",
              opacity: float = 0.5, confidence: float = 0.25, image_size: int = 320, checkpoints: list | None = None,
              stretch: bool = False, progress=gr.Progress()):
    """Each model's attention maps over ``image`` as a matrix (rows = models, columns = P3/P4/P5);
    every map as a file follows from /attention_downloads."""
    return run_attention(store, uploaded_path(image, examples), models, colormap, opacity, confidence, image_size,
                         [uploaded_path(f) for f in checkpoints or []], stretch, progress)


def session_downloads(stored, colormap: str = "jet", opacity: float = 0.5, request: gr.Request = None):
    """The maps of this session's last /attention call, as PNGs (zipped) and raw arrays (.npz).
    Call /attention first, in the same session (a gradio_client Client keeps one)."""
    if stored is None:
        raise UserError("No attention maps in this session yet: call /attention first (the same client "
                        "keeps the session), then /attention_downloads.")
    return attention_downloads(stored, colormap, opacity, request.session_hash if request else None)
