"""Layout of the Compare tab: widgets and their wiring, no computation."""
from __future__ import annotations

import gradio as gr

from components.analysis.compare import IMGSZ_CHOICES
from components.app.handlers import UserError, run_compare, slider_pair, uploaded_path
from components.app.widgets import (
    DISPLAY_FORMAT,
    INFERENCE_QUEUE,
    STATE_TTL_S,
    image_with_examples,
    model_picker,
    reference_choices,
)


def build_compare_tab(store, examples: list[str]) -> None:
    attention = [n for n in store.names if store.entries[n].attention]
    default = ([store.baseline_name()] if store.baseline_name() else []) + attention[:2] or store.names[:3]
    with gr.Row():
        with gr.Column(scale=1):
            image = image_with_examples("compare-image", examples, height=320)
            models = model_picker(store, default, "Models (pick 2 or more)")
            uploads = gr.File(file_count="multiple", file_types=[".pt"], label="Or add your own checkpoints (.pt)")
            reference = gr.Dropdown(choices=store.names, value=store.baseline_name(), label="Reference for the diff",
                                    allow_custom_value=True)
            with gr.Row():
                conf = gr.Slider(0.001, 0.95, value=0.25, step=0.001, label="Confidence")
                iou = gr.Slider(0.1, 0.95, value=0.7, step=0.05, label="NMS IoU")
            imgsz = gr.Dropdown(choices=list(IMGSZ_CHOICES), value=320, label="Image size")
            button = gr.Button("Compare", variant="primary", elem_id="compare-button")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label="Detections (+ = only this model found it; grey = reference box it missed)",
                                 columns=2, height="auto", object_fit="contain", elem_id="compare-gallery",
                                 format=DISPLAY_FORMAT)
            table = gr.Dataframe(label="Per model: boxes per class, diff against the reference, and ms: the wall time "
                                       "of this one forward (noisy on a shared CPU; the Metrics tab's latency is "
                                       "measured side by side)",
                                 elem_id="compare-table")
            with gr.Accordion("Slider: any two models", open=False):
                with gr.Row():
                    left = gr.Dropdown(label="Left", choices=[])
                    right = gr.Dropdown(label="Right", choices=[])
                slider = gr.ImageSlider(label="Left / right", type="numpy", format=DISPLAY_FORMAT)
            detections = gr.JSON(label="Detections (original image pixels)")
    images = gr.State({}, time_to_live=STATE_TTL_S)

    def on_compare(image, models=None, checkpoints=None, confidence=0.25, iou=0.7, image_size=320, reference=None):
        """Detect with each model on ``image``: annotated images, a per-model table, and every
        box (original pixels) with its diff status against ``reference``."""
        try:
            image, files = uploaded_path(image, examples), [uploaded_path(f) for f in checkpoints or []]
            items, df, payload, by_model, _names = run_compare(store, image, models, files, confidence, iou,
                                                               image_size, reference)
        except UserError as e:
            raise gr.Error(str(e), print_exception=False) from None
        if payload.get("note"):
            gr.Warning(payload["note"])
        return items, df, payload, by_model

    inputs = [image, models, uploads, conf, iou, imgsz, reference]
    outputs = [gallery, table, detections, images]
    # preprocess=False: the raw upload reaches our decoder, which has a clear message for every bad
    # file; gradio's own image preprocessing would fail first with a generic one. The slider's
    # pickers follow in a UI-only step (not part of the API).
    button.click(on_compare, inputs, outputs, api_name="compare", preprocess=False, **INFERENCE_QUEUE) \
        .success(slider_choices, images, [left, right, slider], api_name=False)

    def on_adjust(image, *rest):
        if not image:
            return [gr.skip()] * len(outputs)  # nothing to rerun yet
        return on_compare(image, *rest)

    for control in (conf, iou, imgsz):
        control.change(on_adjust, inputs, outputs, api_name=False, trigger_mode="always_last", preprocess=False,
                       **INFERENCE_QUEUE).success(slider_choices, images, [left, right, slider], api_name=False)
    for pick in (left, right):
        pick.change(slider_pair, [images, left, right], slider, api_name=False)
    models.change(lambda selected, current: reference_choices(store, selected, current), [models, reference], reference,
                  api_name=False)


def slider_choices(by_model: dict | None):
    """The slider's pickers set to the first two models of a comparison, and their images."""
    names = list(by_model or {})
    a, b = (names + names)[:2] if len(names) < 2 else names[:2]
    return gr.update(choices=names, value=a), gr.update(choices=names, value=b), slider_pair(by_model, a, b)
