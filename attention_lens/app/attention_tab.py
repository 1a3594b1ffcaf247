"""Layout of the Attention tab: widgets and wiring; its handlers are in attention_handlers and
query_handlers."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from attention_lens.analysis.compare import IMGSZ_CHOICES
from attention_lens.analysis.heatmaps import COLORMAPS
from attention_lens.app.attention_handlers import (
    attention,
    attention_extras,
    attention_matrix,
    rerender_attention,
    session_downloads,
)
from attention_lens.app.errors import event
from attention_lens.app.query_handlers import query_click, query_point, query_top_detection
from attention_lens.app.widgets import (
    DISPLAY_FORMAT,
    INFERENCE_QUEUE,
    STATE_TTL_S,
    examples_for,
    image_input,
    map_gallery,
    model_picker,
)


@dataclass
class AttentionEntry:
    """How another tab sends an image here: set ``image`` (and ``models``), then ``follow(event)``
    runs this tab's view after that event, as its button would."""
    image: gr.Image
    models: gr.CheckboxGroup
    follow: Callable


def build_attention_tab(store, examples: list[str]) -> AttentionEntry:
    variants = [n for n in store.default_selection() if store.entries[n].attention]
    with gr.Row():
        with gr.Column(scale=1):
            image = image_input("attention-image", height=240)
            button = gr.Button("Show attention", variant="primary", elem_id="attention-button")
            models = model_picker(store, variants or store.names[:1], "Models")
            uploads = gr.File(file_count="multiple", file_types=[".pt"], label="Or add your own checkpoints (.pt)")
            with gr.Row():
                colormap = gr.Dropdown(choices=list(COLORMAPS), value="jet", label="Colormap")
                alpha = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Heatmap opacity")
            with gr.Row():
                conf = gr.Slider(0.001, 0.95, value=0.25, step=0.001, label="Confidence (boxes)")
                imgsz = gr.Dropdown(choices=list(IMGSZ_CHOICES), value=320, label="Image size")
            examples_for(image, examples)
        with gr.Column(scale=3):
            notice = gr.Markdown(label="Notice", show_label=False)
            stretch = gr.Checkbox(False, label="Stretch each map to its own range (off: one colour scale per kind of "
                                              "map, shared by all models, as on the colour bars)")
            matrix = gr.Plot(label="Attention by layer: rows = models, columns = P3/P4/P5; hover for values",
                             elem_id="attention-matrix")
            with gr.Accordion("Where one location looks (self-attention: YOLO11/YOLO26 C2PSA, YOLOv10 PSA, YOLO12 "
                              "area attention, RT-DETR's encoder): click the image", open=True):
                query_note = gr.Markdown(label="Query note", elem_id="attention-query-note")
                with gr.Row():
                    query_image = gr.Image(label="Click a point (default: the most confident detection)",
                                           interactive=False, height=280, format=DISPLAY_FORMAT, scale=2,
                                           elem_id="attention-query-image")
                    with gr.Column(scale=1):
                        qx = gr.Number(label="x (image px)", precision=0, minimum=0)
                        qy = gr.Number(label="y (image px)", precision=0, minimum=0)
                        query_button = gr.Button("Show this point", size="sm", elem_id="attention-query-button")
                query_figure = gr.Image(label="Per self-attention layer: the mean over heads, then each head",
                                        show_label=False, interactive=False, format=DISPLAY_FORMAT, elem_id="attention-query-figure")
            with gr.Accordion("Self-attention heads: how far each looks and how spread (one row per layer, models "
                              "overlaid)", open=False):
                heads = gr.Plot(label="Self-attention heads", show_label=False, elem_id="attention-heads")
            with gr.Accordion("Channel gates (SE, ECA, CBAM, PolarizedSA): one chart per layer, models overlaid",
                              open=False):
                channels = gr.Plot(label="Channel gates", show_label=False, elem_id="attention-channels")
            with gr.Accordion("Every map as an image (EMA's group maps, channel-weighted activations...)", open=False):
                gallery = map_gallery("Maps over the image, in original pixels, with the detections",
                                      "attention-gallery")
            with gr.Accordion("Layers, downloads and raw ranges", open=False):
                layers = gr.Dataframe(label="Attention layers", elem_id="attention-layers",
                                      headers=["model", "layer", "module", "placement", "stride", "feature map",
                                               "maps"])
                downloads = gr.File(label="Downloads: overlays (PNG, zipped) and raw maps (.npz)",
                                    file_count="multiple")
                summary = gr.JSON(label="Maps captured (shapes and ranges)", visible=True)
    state = gr.State(None, time_to_live=STATE_TTL_S)

    inspect_step = event(attention, store, examples)
    inputs = [image, models, colormap, alpha, conf, imgsz, uploads, stretch]
    outputs = [notice, layers, matrix, summary, state]
    run = button.click(inspect_step, inputs, outputs, api_name="attention", preprocess=False, **INFERENCE_QUEUE)
    # The maps show as soon as they are drawn; the lossless download files follow (and follow
    # every re-render, so they always match what is on screen).
    downloads_step = event(session_downloads)
    query_outputs = [query_image, query_figure, query_note, qx, qy]
    run.success(attention_extras, [state, colormap, alpha], [gallery, channels, heads], api_name=False)
    run.success(event(query_top_detection), [state, colormap, alpha], query_outputs, api_name=False)
    # No forward: the captured taps are re-read, so these skip the inference queue.
    query_button.click(event(query_point), [state, qx, qy, colormap, alpha], query_outputs, api_name="attention_query")
    query_image.select(event(query_click), [state, colormap, alpha], query_outputs, api_name=False)
    run.success(downloads_step, [state, colormap, alpha], downloads, api_name="attention_downloads")

    def follow(step):
        after = step.then(inspect_step, inputs, outputs, api_name=False, preprocess=False, **INFERENCE_QUEUE)
        after.success(attention_extras, [state, colormap, alpha], [gallery, channels, heads], api_name=False)
        after.success(event(query_top_detection), [state, colormap, alpha], query_outputs, api_name=False)
        after.success(downloads_step, [state, colormap, alpha], downloads, api_name=False)

    for control in (colormap, alpha, stretch):
        control.change(attention_matrix, [state, colormap, alpha, stretch], matrix, api_name=False,
                       trigger_mode="always_last")
    for control in (colormap, alpha):
        control.change(rerender_attention, [state, colormap, alpha], gallery, api_name=False,
                       trigger_mode="always_last").then(downloads_step, [state, colormap, alpha], downloads,
                                                        api_name=False)
    return AttentionEntry(image, models, follow)
