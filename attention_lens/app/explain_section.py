"""Layout of "Explain one detection" (under the Compare results): widgets and wiring only."""
from __future__ import annotations

import gradio as gr

from attention_lens.analysis.explain import LEVELS, METHOD_NAMES
from attention_lens.app.errors import event
from attention_lens.app.explain_handlers import detection_choices, explain, pick_detection
from attention_lens.app.widgets import DISPLAY_FORMAT, INFERENCE_QUEUE, map_gallery


def build_explain_section(store, examples: list[str], image, models, uploads, imgsz, detections, shown):
    """``detections`` and ``shown`` are the Compare tab's JSON answer and page state; the other
    arguments are its inputs, which the explanation reuses."""
    gr.Markdown("### Explain one detection\nWhich pixels made this box, in every selected model: a CAM targeted "
                "at the box's class score and its IoU (pytorch-grad-cam methods), at the Detect head's inputs. "
                "White: the chosen box; coloured: each model's own matching candidate, with its score.")
    with gr.Row():
        with gr.Column(scale=1):
            pick = gr.Image(label="Click a box (the reference model's result)", interactive=False, type="numpy",
                            format=DISPLAY_FORMAT, elem_id="explain-pick", height=300)
        with gr.Column(scale=1):
            detection = gr.Dropdown(label="Or pick a detection (reference model)", choices=[], value=None,
                                    allow_custom_value=True, elem_id="explain-detection")
            method = gr.Dropdown(list(METHOD_NAMES), value="Grad-CAM", label="Method")
            levels = gr.CheckboxGroup(list(LEVELS), value=list(LEVELS), label="Layers (Detect inputs)")
            button = gr.Button("Explain", variant="primary", elem_id="explain-button")
    cams = map_gallery("Explanations (energy in box: the share of the map inside the chosen box)", "explain-gallery")
    table = gr.Dataframe(label="Per model: the candidate explained and how much of the map lies in the box",
                         elem_id="explain-table", headers=["model", "method", "class", "energy in box"])

    inputs = [image, models, uploads, detection, method, levels, imgsz]
    explain_step = event(explain, store, examples)
    button.click(explain_step, inputs, [cams, table], api_name="explain", preprocess=False, **INFERENCE_QUEUE)

    pick.select(pick_detection, [detections, shown], detection, api_name=False) \
        .success(explain_step, inputs, [cams, table], api_name=False, preprocess=False, **INFERENCE_QUEUE)
    return pick, detection


def explain_targets(payload, page):
    """UI: after a comparison, the reference result to click on and the picker's detections."""
    ref = (payload or {}).get("reference")
    picture = ((page or {}).get("images") or {}).get(ref)
    return picture, gr.update(choices=detection_choices(payload), value=None)
