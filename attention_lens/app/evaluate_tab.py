"""Layout of the Evaluate tab: models over a labelled split, against a reference. No computation."""
from __future__ import annotations

import gradio as gr

from attention_lens.analysis.compare import IMGSZ_CHOICES
from attention_lens.app.errors import event
from attention_lens.app.evaluate_handlers import (
    ALL,
    SPLIT_CHOICES,
    attention_button,
    clicked_flow,
    filter_choices,
    filtered_views,
    flow_view,
    picked_image,
    pick_flow,
    reference_picker,
    review_image,
    send_to_attention,
)
from attention_lens.app.evaluate_lane import JOB_WAITERS, evaluate_request
from attention_lens.app.widgets import FLOW_CLICK_ID, STATE_TTL_S, model_name_dropdown, model_picker



def build_evaluate_tab(store, data: str | None, stored_dir: str | None, lane, weights: str | None = None,
                       attention=None, tabs=None) -> None:
    # The first base's baseline seeds (they give the seed noise) and its EMA and CBAM variants.
    picked = store.default_selection()
    base = store.entries[picked[0]].base if picked else None
    default = [n for n in store.names if not store.entries[n].attention and store.entries[n].base == base]
    default += [n for n in picked if store.entries[n].attention]
    source = ("the data set this app was started with" if data else
              "the BCCD test split stored with the shipped models (numbers only)" if stored_dir else "none yet")
    gr.Markdown(f"Evaluate models over a whole labelled split and compare each with a reference. Data set: "
                f"{source}; or upload a zip (images + YOLO labels + data.yaml, or a Pascal VOC folder). "
                "P, R and found objects use the confidence below at IoU 0.5; mAP uses every detection. "
                "Δ intervals are a paired bootstrap over images; where the reference has several seeds "
                "selected, their spread is the seed noise.")
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Row():
                button = gr.Button("Evaluate", variant="primary", elem_id="evaluate-button")
                stop = gr.Button("Stop", variant="secondary", elem_id="evaluate-stop")
            models = model_picker(store, default, "Models (the reference's seeds give the seed noise)")
            uploads = gr.File(file_count="multiple", file_types=[".pt"], label="Your checkpoints (.pt)")
            dataset = gr.File(file_types=[".zip"], label="Your labelled data set (.zip)")
            reference = model_name_dropdown(choices=default, value=store.baseline_name(default), label="Reference")
            with gr.Row():
                split = gr.Dropdown(choices=list(SPLIT_CHOICES), value="test", label="Split")
                imgsz = gr.Dropdown(choices=list(IMGSZ_CHOICES), value=320, label="Image size")
            with gr.Row():
                conf = gr.Slider(0.05, 0.95, value=0.25, step=0.05, label="Confidence (P, R, found)")
                rounds = gr.Slider(100, 2000, value=1000, step=100, label="Bootstrap rounds")
            localise = gr.Checkbox(True, label="Where the maps fall (energy in boxes, pointing game; for "
                                               "self-attention, what an object keeps on itself)",
                                   elem_id="evaluate-localise")
        with gr.Column(scale=2):
            summary = gr.Markdown(label="What was evaluated, and the files left out", elem_id="evaluate-data")
            table = gr.Dataframe(label="Per model: metrics, Δ mAP50-95 vs the reference with its 95% interval, verdict",
                                 elem_id="evaluate-table",
                                 headers=["model", "mAP50-95 (COCO)", "mAP50-95 (ultralytics val)"])
            delta = gr.Plot(label="Δ mAP50-95 with bootstrap interval", elem_id="evaluate-delta")
            errors = gr.Dataframe(label="Why: TIDE's error types at IoU 0.5: the AP50 fixing each would add (dAP), "
                                        "Δ dAP against the reference (negative: fewer of those errors), counts",
                                  elem_id="evaluate-errors", headers=["model", "why (TIDE, vs the reference)"])
            with gr.Row():
                cls = gr.Dropdown(choices=[ALL], value=ALL, label="Objects of class", elem_id="evaluate-class")
                size = gr.Dropdown(choices=[ALL], value=ALL, label="Objects of size (COCO area, image pixels)",
                                   elem_id="evaluate-size")
            objects = gr.Plot(label="Ground-truth objects: found by both, only one, neither", elem_id="evaluate-objects")
            outcomes = gr.Plot(label="Object by object: the reference's outcome -> each model's (TIDE's terms)",
                               elem_id="evaluate-outcomes")
            with gr.Row():
                flow = gr.Dropdown(choices=[], value=None, label="A flow where the two disagree (or click one in the "
                                                                 "chart): its images (click one to open it)",
                                   elem_id="evaluate-flow")
                flow_click = gr.Textbox(elem_id=FLOW_CLICK_ID, elem_classes=["offscreen"], show_label=False,
                                        container=False)
            flow_table = gr.Dataframe(label="Images of that flow", elem_id="evaluate-flow-images",
                                      headers=["model", "image", "objects in this flow"])
            located = gr.Plot(label="Where the maps fall", elem_id="evaluate-localisation")
            with gr.Accordion("Where the maps fall: every layer's numbers", open=False):
                located_table = gr.Dataframe(label="Energy ratio (1 = no preference), pointing-game hit rate and, for "
                                                   "self-attention, the attention an object keeps on itself",
                                             elem_id="evaluate-localisation-table",
                                             headers=["model", "level", "layer", "map", "energy ratio",
                                                      "pointing game"])
            images = gr.Dataframe(label="Images where a model and the reference disagree most (click one to open it)",
                                  elem_id="evaluate-images", headers=["model", "image", "only reference", "only model"])
            with gr.Row():
                opened = gr.Dropdown(choices=[], value=None, label="Open image", allow_custom_value=True,
                                     elem_id="evaluate-open")
                to_attention = gr.Button("Attention maps for this image", elem_id="evaluate-to-attention")
            caption = gr.Markdown(elem_id="evaluate-review-caption")
            review = gr.Plot(label="Ground truth and each model's boxes", elem_id="evaluate-review")
            files = gr.File(label="Results (JSON) and report (HTML)", file_count="multiple")
            with gr.Accordion("All numbers (JSON)", open=False):
                raw = gr.JSON(label="Results")
    held = gr.State(None, time_to_live=STATE_TTL_S)

    # Its own queue: waiting for a job holds no slot of the interactive views (widgets.INFERENCE_QUEUE).
    run = button.click(event(evaluate_request, lane, store, weights, data, stored_dir),
                       [models, uploads, dataset, reference, split, imgsz, conf, rounds, localise],
                       [summary, table, delta, objects, images, files, raw, located_table, located, errors, outcomes,
                        held],
                       api_name="evaluate", preprocess=False, concurrency_id="jobs", concurrency_limit=JOB_WAITERS)
    stop.click(None, None, None, cancels=[run], api_name=False)
    run.success(filter_choices, raw, [cls, size, opened], api_name=False)
    run.success(pick_flow, [raw], flow, api_name=False)
    run.success(attention_button, held, to_attention, api_name=False)

    for control in (cls, size):
        control.change(filtered_views, [raw, cls, size], [objects, images, located_table, located, outcomes, flow],
                       api_name=False, trigger_mode="always_last")
    images.select(picked_image, None, opened, api_name=False)
    flow.change(flow_view, [raw, flow, cls, size], flow_table, api_name=False)
    flow_click.change(clicked_flow, [raw, flow_click, cls, size], flow, api_name=False)
    flow_table.select(picked_image, None, opened, api_name=False)
    opened.change(event(review_image), [held, opened], [review, caption], api_name=False, trigger_mode="always_last")
    if attention is not None and tabs is not None:
        sent = to_attention.click(event(send_to_attention), [held, opened, models],
                                  [attention.image, attention.models, tabs], api_name=False)
        attention.follow(sent)
    for picker in (models, uploads):
        picker.change(event(reference_picker, store), [models, uploads, reference], reference, api_name=False,
                      preprocess=False)

