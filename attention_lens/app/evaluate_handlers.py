"""Evaluate tab handlers: models over a labelled split against a reference, then filters and
one image opened. Plain functions from widget values to widget values; tests call them directly.

The data set: an uploaded zip, else the one the app was started with (``--data``), else the
split stored with the zoo (numbers only: shipped models, no pixels needed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import gradio as gr

from attention_lens.app.errors import UserError
from attention_lens.app.inputs import image_size as checked_size
from attention_lens.app.inputs import resolve_models, uploaded_path, within_budget
from attention_lens.app.sessions import session_folder
from attention_lens.cache import BoundedCache
from attention_lens.modeling.catalog import ModelStore
from attention_lens.torch_thread import run_on_torch_thread
from attention_lens.views.results import ALL  # the filters' "no filter", as the views read it

#: Where the shipped zoo's stored detections live, relative to the weights folder.
STORED_EVALUATIONS = "evaluation"
SPLIT_CHOICES = ("test", "val", "train")
#: The files an evaluation hands the user: the results as data and the self-contained report.
RESULTS = "attention-lens-evaluation.json"
REPORT = "attention-lens-evaluation.html"
#: Stored detections files, decoded once per file version.
_STORED: BoundedCache[tuple] = BoundedCache(4)


@dataclass
class KeptEvaluation:
    """What one session's last evaluation keeps on the server for the filters and the image
    review (never sent to the browser: the split may hold server paths)."""
    split: object
    detections: dict = field(default_factory=dict)
    confidence: float = 0.25
    imgsz: int = 320


def stored_evaluation(folder: str | Path | None, split: str, imgsz: int):
    """(split, detections, localisation scores) stored with the zoo for this split and image
    size, or (None, {}, {}): the folder's ``*.json.gz`` files in name order, joined by
    ``evaluation.stored.joined_detections``, each read once per version (``_STORED``)."""
    from attention_lens.evaluation.stored import joined_detections, load_detections

    def cached(path: Path):
        return _STORED.get_or_make((str(path), path.stat().st_mtime_ns), lambda: load_detections(path))

    folder = Path(folder) if folder else None
    paths = sorted(folder.glob("*.json.gz")) if folder and folder.is_dir() else []
    return joined_detections(paths, split, imgsz, load=cached)


def _open_split(data, upload, split: str):
    from attention_lens.data.datasets import DatasetError, open_dataset

    try:
        source = upload or data
        return open_dataset(source, split, uploaded=bool(upload)) if source else None
    except DatasetError as e:
        raise UserError(f"Data set refused: {e}") from None


def reference_options(store: ModelStore, selected: list[str] | None, uploads: list[str] | None,
                      current: str | None) -> tuple[list[str], str | None]:
    """(choices, value) of the Reference picker: the picked models and the uploaded checkpoints
    under the names the evaluation gives them (each upload is read once: ``ModelStore.upload``
    keeps it by content); the current reference where it is still among them, else
    ``ModelStore.reference_for``."""
    models = resolve_models(store, [], uploads) if uploads else {}
    picked = [n for n in selected or [] if n in store.entries]
    choices = picked + [n for n in models if n not in picked]
    if current in choices:
        return choices, current
    return choices, store.reference_for({**dict.fromkeys(picked), **models})


def checked_request(split, image_size, rounds, confidence) -> tuple[str, int, int, float]:
    """(split, image size, rounds, confidence) of an evaluation request, each within its limits,
    or UserError naming the limit: checked before any work (and again in the job's process)."""
    from attention_lens.evaluation.bootstrap import check_rounds

    split = str(split or "test")
    if split not in SPLIT_CHOICES:
        raise UserError(f"Unknown split {split[:20]!r}; pick one of {', '.join(SPLIT_CHOICES)}.")
    imgsz = checked_size(image_size)
    try:
        rounds = check_rounds(rounds)
    except ValueError as e:
        raise UserError(str(e)) from None
    try:
        confidence = float(confidence)
    except (TypeError, ValueError):
        confidence = float("nan")
    if not 0 <= confidence <= 1:  # NaN fails too
        raise UserError("Confidence must be a number from 0 to 1.")
    return split, imgsz, rounds, confidence


class EvaluationView(NamedTuple):
    """One finished evaluation."""
    results: dict  # every number (report.evaluate_detections' dict, with the image size and what ran each model)
    files: list[str]  # the JSON and the HTML report, on the server
    kept: KeptEvaluation  # what the session keeps for the filters and the image review


def run_evaluate(store: ModelStore, data: str | None, stored_dir, upload, split, selected, uploads, reference, confidence,
                 image_size, rounds, session: str | None = None, progress=None, localisation: bool = True,
                 out: Path | None = None, pass_progress=None) -> EvaluationView:
    """Evaluate the models over the split against ``reference``. ``localisation``: also score where
    each model's maps fall (energy in boxes, pointing game), from the same forwards. The files go to
    ``out`` (a lane job's folder), else to the session's folder. ``progress((done, total), desc)``
    follows every phase; ``pass_progress``, where given, the two that hold the bulk of the work in
    even steps instead (the pass over the images; the numbers, model by model): the lane judges a
    job's pace by them.

    This runs the evaluation in the calling process: the app runs it in a lane's child process
    (``evaluation_job``), the CLI and the tests call it directly."""
    from attention_lens.evaluation.report import evaluate_detections
    from attention_lens.evaluation.predict import predictions_for_models, ran_on as pass_ran_on
    from attention_lens.evaluation.coco import EvaluationError
    from attention_lens.views.results import write_report
    from attention_lens.data.datasets import DatasetError

    split, imgsz, rounds, confidence = checked_request(split, image_size, rounds, confidence)
    data_split = _open_split(data, upload, split)
    stored_split, stored, stored_scores = stored_evaluation(stored_dir, split, imgsz)
    if data_split is None and stored_split is None:
        raise UserError(f"No labelled data set for the '{split}' split at {imgsz} px: upload a data set zip "
                        "(images + YOLO labels + data.yaml, or a VOC folder).")
    chosen = data_split or stored_split
    if stored_split is not None and chosen.fingerprint != stored_split.fingerprint:
        stored, stored_scores = {}, {}  # another data set: the zoo's stored detections do not apply
    names = list(selected or [])
    if len(names) + len(uploads or []) < 2:
        raise UserError("Pick at least two models: a reference and one to compare with it.")
    if progress:
        progress((0, len(names) + len(uploads or [])), desc="Loading the models")
    models = resolve_models(store, [n for n in names if n not in stored], uploads)
    detections, scores, ran_on, to_run = {}, {}, {}, {}
    try:
        order = names + [n for n in models if n not in names]
        for name in order:
            if name in stored and (name in stored_scores or not localisation or not chosen.has_pixels):
                detections[name], scores[name] = stored[name], stored_scores.get(name)
                ran_on[name] = "stored numbers"
            elif chosen.has_pixels:
                to_run[name] = models.get(name) or run_on_torch_thread(store.get, name)
            else:
                raise UserError(f"{name} has no stored detections for this split; evaluating it needs the images: "
                                "upload the data set as a zip.")

        paced = pass_progress or progress  # the bulk of the work: the pass, then the numbers

        def step(done, total):
            if paced:
                paced((done, total), desc=f"{len(to_run)} model(s) over the {split} images")
        within_budget(to_run, imgsz)
        # One pass over the split for every model that runs (each image read once).
        ran = run_on_torch_thread(predictions_for_models, to_run, chosen, imgsz, step, bool(localisation))
        for name, model in to_run.items():
            detections[name], scores[name] = ran[name]
            ran_on[name] = pass_ran_on(model, bool(localisation))
        detections = {n: detections[n] for n in order}
        scores = {n: scores[n] for n in order}
        ref = reference if reference in detections else store.reference_for(
            {n: models.get(n) or to_run.get(n) for n in order})

        def numbers(done, total):  # models done, from 0: each model's metrics, intervals and error types
            if paced:
                paced((done, total), desc="Metrics and bootstrap intervals")
        results = evaluate_detections(chosen, detections, ref, float(confidence), int(rounds), store.seed_groups(detections),
                                      localisation=scores if localisation else None, imgsz=imgsz, progress=numbers)
    except (DatasetError, EvaluationError) as e:
        raise UserError(str(e)) from None
    results["image size"] = imgsz
    results["ran on"] = ran_on
    folder = Path(out) if out is not None else session_folder(session, "evaluate")
    json_path, html_path = write_report(results, folder, RESULTS, REPORT)
    return EvaluationView(results, [str(json_path), str(html_path)],
                          KeptEvaluation(chosen, detections, float(confidence), imgsz))


def error_types(results: dict | None):
    """Why each model's AP50 falls short: TIDE's error types, their dAP and Δ dAP against the
    reference (``evaluation_views.errors_frame``), rounded for the page."""
    from attention_lens.views.results import errors_frame

    return errors_frame(results).round(3) if results else None


def outcome_view(results: dict | None, cls: str | None = None, size: str | None = None):
    """Object by object: the reference's outcome -> each model's (a Sankey), for the objects of
    class ``cls`` and size ``size`` ("all": any)."""
    from attention_lens.views.results import outcomes_figure

    return outcomes_figure(results, cls, size) if results else None


def evaluation_views(results: dict | None, cls: str | None = None, size: str | None = None):
    """(metrics table, Δ figure, found-objects figure, ranked images, localisation table,
    localisation figure) for the objects of class ``cls`` and size ``size`` ("all": any)."""
    import pandas as pd

    from attention_lens.views.results import (
        delta_figure,
        group_key,
        metrics_frame,
        objects_figure,
        ranked_images,
    )
    from attention_lens.views.localisation import localisation_figure, localisation_frame

    if not results:
        return None, None, None, None, None, None
    compared = list(results["against reference"])
    # the models under test first; the reference's own seeds (their differences are seed noise) last
    ranked = sorted(compared, key=lambda n: bool(results["against reference"][n].get("seed of the reference")))
    images = [dict(model=n, **row) for n in ranked for row in ranked_images(results, n, cls, size, top=10)]
    group = group_key(cls, size)
    loc = localisation_frame(results, group).round(3)
    return (metrics_frame(results).round(3), delta_figure(results) if compared else None,
            objects_figure(results, cls, size) if compared else None,
            pd.DataFrame(images, columns=["model", "image", "only reference", "only model", "FP added", "FP removed",
                                          "score"]),
            loc, localisation_figure(results, group) if results.get("localisation") else None)


def review_image(held: KeptEvaluation | None, image: str | None):
    """(figure, caption) for one image of the last evaluation: ground truth and each model's
    boxes marked true / false / missed."""
    from attention_lens.views.image_review import review_figure

    if held is None:
        raise UserError("Evaluate first, then pick an image.")
    if not image:
        return None, ""
    names = held.split.images
    if image not in names:
        raise UserError(f"No image {str(image)[:60]!r} in the evaluated split.")
    fig, counts = review_figure(held.split, names.index(image), held.detections, held.confidence)
    where = "" if held.split.has_pixels else (" The images are not here (the zoo's stored numbers): boxes on a blank "
                                              "canvas; start the app with --data or upload the data set to see pixels.")
    return fig, (f"**{image}**: boxes at confidence ≥ {held.confidence:g}; solid = true positive, dashed = false "
                 f"positive, grey dotted = ground truth missed (IoU 0.5).{where}")


def image_for_attention(held: KeptEvaluation | None, image: str | None):
    """The opened image's pixels (display copy), for the Attention tab; None without pixels."""
    from attention_lens.analysis.images import display_copy, load_image

    if held is None or not image or image not in held.split.images:
        raise UserError("Open an image first.")
    if not held.split.has_pixels:
        raise UserError("This split is stored as numbers only; start the app with --data or upload the data set "
                        "to look at an image's attention.")
    return display_copy(load_image(held.split.paths[held.split.images.index(image)]))[0]


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


def clicked_flow(results, key: str, cls=ALL, size=ALL):
    """A click on a flow of the Sankey (its key, as ``flow_choices`` values it): that flow in the
    picker, if it is one where the two disagree among the objects in view; else unchanged."""
    from attention_lens.views.results import flow_choices

    values = [v for _, v in flow_choices(results, cls, size)] if results else []
    return gr.update(value=key) if key in values else gr.update()


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


def send_to_attention(held: KeptEvaluation | None, image: str | None, models: list[str] | None):
    """The opened image and the evaluated shipped models to the Attention tab, which then runs."""
    pixels = image_for_attention(held, image)
    shipped = [m for m in models or [] if held and m in held.detections]
    return pixels, gr.update(value=shipped) if shipped else gr.update(), gr.Tabs(selected="attention")


def filtered_views(results: dict | None, cls: str = ALL, size: str = ALL):
    """The views that follow the class and size filters."""
    _, _, objects, images, located_table, located = evaluation_views(results, cls, size)
    return objects, images, located_table, located, outcome_view(results, cls, size), pick_flow(results, cls, size)


def reference_picker(store: ModelStore, selected: list[str] | None = None, checkpoints: list | None = None,
                     current: str | None = None):
    """The reference picker's choices for the models (and uploaded checkpoints) now picked."""
    choices, value = reference_options(store, selected, [uploaded_path(f) for f in checkpoints or []], current)
    return gr.update(choices=choices, value=value)
