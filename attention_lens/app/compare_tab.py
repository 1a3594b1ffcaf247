"""Layout of the Compare tab: widgets and their wiring, no computation."""
from __future__ import annotations

import gradio as gr

from attention_lens.analysis.compare import IMGSZ_CHOICES
from attention_lens.app.explain_section import build_explain_section, explain_targets
from attention_lens.app.handlers import UserError, detections_table, results_grid, run_compare, slider_pair, uploaded_path
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
                                       "measured side by side)",
                                 elem_id="compare-table")
            boxes = gr.Dataframe(label="Every box: model, class, confidence, box in image pixels, diff status",
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

    def on_compare(image, models=None, checkpoints=None, confidence=0.25, iou=0.7, image_size=320, reference=None,
                   progress=gr.Progress()):
        """Detect with each model on ``image``: annotated images, a per-model table, and every
        box (original pixels) with its diff status against ``reference``."""
        try:
            image, files = uploaded_path(image, examples), [uploaded_path(f) for f in checkpoints or []]
            items, df, payload, by_model, _names = run_compare(store, image, models, files, confidence, iou,
                                                               image_size, reference, progress)
        except UserError as e:
            raise gr.Error(str(e), print_exception=False) from None
        if payload.get("note"):
            gr.Warning(payload["note"])
        return items, df, payload, by_model

    inputs = [image, models, uploads, conf, iou, imgsz, reference]
    outputs = [gallery, table, detections, images]

    def after(event):
        # UI-only steps (not part of the API): the box table and the slider's pickers.
        # The explain section's targets first: a box clicked once the grid shows is never reset by a late step.
        event.success(explain_targets, [detections, images], [pick, detection], api_name=False) \
             .success(results_grid, [images, detections], grid, api_name=False) \
             .success(detections_table, detections, boxes, api_name=False) \
             .success(slider_choices, images, [left, right, slider], api_name=False)

    # preprocess=False: the raw upload reaches our decoder, which has a clear message for every bad
    # file; gradio's own image preprocessing would fail first with a generic one.
    after(button.click(on_compare, inputs, outputs, api_name="compare", preprocess=False, **INFERENCE_QUEUE))

    def on_adjust(image, *rest):
        if not image:
            return [gr.skip()] * len(outputs)  # nothing to rerun yet
        return on_compare(image, *rest)

    for control in (conf, iou, imgsz):
        after(control.change(on_adjust, inputs, outputs, api_name=False, trigger_mode="always_last",
                             preprocess=False, **INFERENCE_QUEUE))
    # Raw values: a picker may still hold a model of the previous comparison while its new
    # choices arrive; slider_pair answers None for a name it has no image of (no false error).
    for pick in (left, right):
        pick.change(slider_pair, [images, left, right], slider, api_name=False, preprocess=False)
    models.change(lambda selected, current: reference_choices(store, selected, current), [models, reference], reference,
                  api_name=False)


def slider_choices(by_model: dict | None):
    """The slider's pickers set to the first two models of a comparison, and their images."""
    names = list((by_model or {}).get("images", {}))
    a, b = (names + names)[:2] if len(names) < 2 else names[:2]
    return gr.update(choices=names, value=a), gr.update(choices=names, value=b), slider_pair(by_model, a, b)
