"""Layout of the Compare tab: widgets and their wiring, no computation."""
from __future__ import annotations

import gradio as gr

from attention_lens.analysis.compare import IMGSZ_CHOICES
from attention_lens.app.explain_section import build_explain_section, explain_targets
from attention_lens.app.compare_handlers import (
    compare,
    DETECTION_COLUMNS,
    compare_again,
    detections_table,
    results_grid,
    slider_choices,
    slider_pair,
)
from attention_lens.app.errors import event
from attention_lens.app.widgets import (
    DISPLAY_FORMAT,
    INFERENCE_QUEUE,
    STATE_TTL_S,
    examples_for,
    image_input,
    model_name_dropdown,
    model_picker,
    reference_choices,
)


def build_compare_tab(store, examples: list[str]) -> None:
    default = store.default_selection()
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            image = image_input("compare-image", height=240)
            button = gr.Button("Compare", variant="primary", elem_id="compare-button")
            models = model_picker(store, default, "Models (pick 2 or more)")
            reference = model_name_dropdown(choices=default, value=store.baseline_name(default),
                                            label="Reference for the diff")
            with gr.Row():
                conf = gr.Slider(0.001, 0.95, value=0.25, step=0.001, label="Confidence")
                iou = gr.Slider(0.1, 0.95, value=0.7, step=0.05, label="NMS IoU")
            imgsz = gr.Dropdown(choices=list(IMGSZ_CHOICES), value=320, label="Image size")
            uploads = gr.File(file_count="multiple", file_types=[".pt"], label="Or add your own checkpoints (.pt)")
            examples_for(image, examples)
        with gr.Column(scale=3):
            grid = gr.Plot(label="Detections: hover a box's centre for class and confidence; drag to zoom. Dashed = "
                                 "only this model found it; grey dotted = a reference box it missed.",
                           elem_id="compare-grid")
            # What /compare returns for scripts; the page shows the grid above instead.
            gallery = gr.Gallery(label="Detections", visible=False, format=DISPLAY_FORMAT)
            table = gr.Dataframe(label="Per model: boxes per class, diff against the reference, and ms: the wall time "
                                       "of this one forward (noisy on a shared CPU; the Metrics tab's latency is "
                                       "measured side by side)", headers=["model", "boxes"],
                                 elem_id="compare-table")
            boxes = gr.Dataframe(label="Every box: model, class, confidence, box in image pixels, diff status",
                                 headers=list(DETECTION_COLUMNS),
                                 elem_id="compare-boxes", max_height=300)
            with gr.Accordion("Slider: any two models", open=False):
                with gr.Row():
                    left = gr.Dropdown(label="Left", choices=[], allow_custom_value=True)
                    right = gr.Dropdown(label="Right", choices=[], allow_custom_value=True)
                slider = gr.ImageSlider(label="Left / right", type="numpy", format=DISPLAY_FORMAT)
            with gr.Accordion("Detections as JSON (what /compare returns)", open=False):
                detections = gr.JSON(label="Detections (original image pixels)")
    images = gr.State({}, time_to_live=STATE_TTL_S)
    pick, detection = build_explain_section(store, examples, image, models, uploads, imgsz, detections, images)

    inputs = [image, models, uploads, conf, iou, imgsz, reference]
    outputs = [gallery, table, detections, images]

    def after(step):
        # UI-only steps (not part of the API): the box table and the slider's pickers.
        # The explain section's targets first: a box clicked once the grid shows is never reset by a late step.
        step.success(explain_targets, [detections, images], [pick, detection], api_name=False) \
            .success(results_grid, [images, detections], grid, api_name=False) \
            .success(detections_table, detections, boxes, api_name=False) \
            .success(slider_choices, images, [left, right, slider], api_name=False)

    # preprocess=False: the raw upload reaches our decoder, which has a clear message for every bad
    # file; gradio's own image preprocessing would fail first with a generic one.
    after(button.click(event(compare, store, examples), inputs, outputs, api_name="compare", preprocess=False,
                       **INFERENCE_QUEUE))
    for control in (conf, iou, imgsz):
        after(control.change(event(compare_again, store, examples), inputs, outputs, api_name=False,
                             trigger_mode="always_last", preprocess=False, **INFERENCE_QUEUE))
    # Raw values: a picker may still hold a model of the previous comparison while its new
    # choices arrive; slider_pair answers None for a name it has no image of (no false error).
    for pick in (left, right):
        pick.change(slider_pair, [images, left, right], slider, api_name=False, preprocess=False)
    models.change(event(reference_choices, store), [models, reference], reference, api_name=False)

