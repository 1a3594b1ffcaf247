"""Layout of the Evaluate tab: models over a labelled split, against a reference. No computation."""
from __future__ import annotations

import asyncio

import gradio as gr

from attention_lens.analysis.compare import IMGSZ_CHOICES
from attention_lens.views.results import data_set_summary
from attention_lens.app.evaluate_handlers import (
    SPLIT_CHOICES,
    error_types,
    evaluation_views,
    image_for_attention,
    outcome_view,
    reference_options,
    review_image,
)
from attention_lens.app.evaluate_lane import collect_evaluation, submit_evaluation
from attention_lens.app.handlers import UserError, uploaded_path
from attention_lens.app.widgets import STATE_TTL_S, model_name_dropdown, model_picker

ALL = "all"
#: How often a waiting request looks at its job (queue place, progress).
POLL_S = 0.25
#: Requests that may wait for their jobs at once (the lane itself bounds the jobs).
JOB_WAITERS = 16


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
                                 elem_id="evaluate-table")
            delta = gr.Plot(label="Δ mAP50-95 with bootstrap interval", elem_id="evaluate-delta")
            errors = gr.Dataframe(label="Why: TIDE's error types at IoU 0.5: the AP50 fixing each would add (dAP), "
                                        "Δ dAP against the reference (negative: fewer of those errors), counts",
                                  elem_id="evaluate-errors")
            with gr.Row():
                cls = gr.Dropdown(choices=[ALL], value=ALL, label="Objects of class", elem_id="evaluate-class")
                size = gr.Dropdown(choices=[ALL], value=ALL, label="Objects of size (COCO area, image pixels)",
                                   elem_id="evaluate-size")
            objects = gr.Plot(label="Ground-truth objects: found by both, only one, neither", elem_id="evaluate-objects")
            outcomes = gr.Plot(label="Object by object: the reference's outcome -> each model's (TIDE's terms)",
                               elem_id="evaluate-outcomes")
            with gr.Row():
                flow = gr.Dropdown(choices=[], value=None, label="A flow where the two disagree: its images "
                                                                 "(click one to open it)", elem_id="evaluate-flow")
            flow_table = gr.Dataframe(label="Images of that flow", elem_id="evaluate-flow-images")
            located = gr.Plot(label="Where the maps fall", elem_id="evaluate-localisation")
            with gr.Accordion("Where the maps fall: every layer's numbers", open=False):
                located_table = gr.Dataframe(label="Energy ratio (1 = no preference), pointing-game hit rate and, for "
                                                   "self-attention, the attention an object keeps on itself",
                                             elem_id="evaluate-localisation-table")
            images = gr.Dataframe(label="Images where a model and the reference disagree most (click one to open it)",
                                  elem_id="evaluate-images")
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

    async def on_evaluate(models=None, checkpoints=None, dataset=None, reference=None, split="test", image_size=320,
                          confidence=0.25, rounds=1000, localisation=True, request: gr.Request = None,
                          progress=gr.Progress()):
        """Evaluate ``models`` (and uploaded ``checkpoints``) on a labelled split against ``reference``:
        what was evaluated (and the files the data set left out, with why), the metrics table, the Δ and
        found-objects charts, the images ranked by disagreement, the
        files, every number as JSON, and (``localisation``) where each model's maps fall.

        The work runs as a job in a child process (one per session, in arrival order): the page
        shows its place in the queue, then its progress; Stop ends the process."""
        try:
            files_ = [uploaded_path(f) for f in checkpoints or []]
            zip_path = uploaded_path(dataset) if dataset else None
            job = submit_evaluation(lane, store, weights, data, stored_dir, zip_path, split, models, files_, reference,
                                    confidence, image_size, rounds, localisation,
                                    request.session_hash if request else None)
        except UserError as e:
            raise gr.Error(str(e), print_exception=False) from None
        try:
            while not job.finished:
                ahead = job.position()
                if ahead:
                    progress(0.0, desc=f"Queued: {ahead} evaluation(s) ahead of yours")
                elif job.progress:
                    done, total, text = job.progress
                    progress((done, total), desc=text)
                else:
                    progress(0.0, desc="Starting the evaluation")
                await asyncio.sleep(POLL_S)
        except asyncio.CancelledError:  # Stop, or the page went away: the job's process ends too
            job.cancel()
            raise
        try:
            results, paths, kept = collect_evaluation(job, data)
        except UserError as e:
            raise gr.Error(str(e), print_exception=False) from None
        table_, delta_, objects_, images_, located_table_, located_ = evaluation_views(results)
        return (data_set_summary(results), table_, delta_, objects_, images_, paths, results, located_table_,
                located_, error_types(results), outcome_view(results), kept)

    # Its own queue: waiting for a job holds no slot of the interactive views (widgets.INFERENCE_QUEUE).
    run = button.click(on_evaluate, [models, uploads, dataset, reference, split, imgsz, conf, rounds, localise],
                       [summary, table, delta, objects, images, files, raw, located_table, located, errors, outcomes,
                        held],
                       api_name="evaluate", preprocess=False, concurrency_id="jobs", concurrency_limit=JOB_WAITERS)
    stop.click(None, None, None, cancels=[run], api_name=False)
    run.success(filter_choices, raw, [cls, size, opened], api_name=False)
    run.success(pick_flow, [raw], flow, api_name=False)
    run.success(attention_button, held, to_attention, api_name=False)

    def on_filter(results, cls_=ALL, size_=ALL):
        _, _, objects_, images_, located_table_, located_ = evaluation_views(results, cls_, size_)
        return (objects_, images_, located_table_, located_, outcome_view(results, cls_, size_),
                pick_flow(results, cls_, size_))

    for control in (cls, size):
        control.change(on_filter, [raw, cls, size], [objects, images, located_table, located, outcomes, flow],
                       api_name=False, trigger_mode="always_last")
    images.select(picked_image, None, opened, api_name=False)
    flow.change(flow_view, [raw, flow, cls, size], flow_table, api_name=False)
    flow_table.select(picked_image, None, opened, api_name=False)
    opened.change(on_review, [held, opened], [review, caption], api_name=False, trigger_mode="always_last")
    if attention is not None and tabs is not None:
        sent = to_attention.click(on_send, [held, opened, models], [attention.image, attention.models, tabs],
                                  api_name=False)
        attention.follow(sent)
    def on_pick(selected=None, checkpoints=None, current=None):
        try:
            choices, value = reference_options(store, selected, [uploaded_path(f) for f in checkpoints or []], current)
        except UserError as e:
            raise gr.Error(str(e), print_exception=False) from None
        return gr.update(choices=choices, value=value)

    for picker in (models, uploads):
        picker.change(on_pick, [models, uploads, reference], reference, api_name=False, preprocess=False)


def filter_choices(results):
    """The class and size filters and the image picker, for the split just evaluated."""
    from attention_lens.views.results import filter_choices as choices

    if not results:
        return gr.update(), gr.update(), gr.update()
    classes, sizes = choices(results)
    return (gr.update(choices=classes, value=ALL), gr.update(choices=sizes, value=ALL),
            gr.update(choices=results["data set"].get("image names", []), value=None))


def pick_flow(results, cls=ALL, size=ALL):
    """The flow picker's choices for the objects in view (none chosen)."""
    from attention_lens.views.results import flow_choices

    return gr.update(choices=flow_choices(results, cls, size) if results else [], value=None)


def flow_view(results, flow, cls=ALL, size=ALL):
    """The images of the chosen flow, for the table under the picker."""
    from attention_lens.views.results import flow_images

    return flow_images(results, flow, cls, size) if results else None


def attention_button(held):
    """The "Attention maps for this image" button: off, saying why, where the split has no pixels
    (the zoo's stored numbers)."""
    if held is not None and not held.split.has_pixels:
        return gr.update(interactive=False, value="Attention maps need the images (stored numbers only)")
    return gr.update(interactive=True, value="Attention maps for this image")


def picked_image(evt: gr.SelectData):
    """A click on a row of the ranked images: that row's image."""
    row = evt.row_value or []
    return row[1] if len(row) > 1 else gr.update()


def on_review(held, image):
    try:
        return review_image(held, image)
    except UserError as e:
        raise gr.Error(str(e), print_exception=False) from None


def on_send(held, image, models):
    """The opened image and the evaluated shipped models to the Attention tab, which then runs."""
    try:
        pixels = image_for_attention(held, image)
    except UserError as e:
        raise gr.Error(str(e), print_exception=False) from None
    shipped = [m for m in models or [] if held and m in held.detections]
    return pixels, gr.update(value=shipped) if shipped else gr.update(), gr.Tabs(selected="attention")
