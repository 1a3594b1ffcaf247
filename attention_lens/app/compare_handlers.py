"""Compare tab handlers: several models' detections on one image, diffed against a reference.
Plain functions from widget values to widget values; tests call them without a browser."""
from __future__ import annotations

from typing import NamedTuple

import gradio as gr

from attention_lens.analysis import compare as one_image
from attention_lens.app.errors import user_facing
from attention_lens.app.inputs import image_size, resolve_models, uploaded_path, within_budget
from attention_lens.modeling.catalog import ModelStore
from attention_lens.torch_thread import torch_thread


class CompareView(NamedTuple):
    """One comparison as the Compare tab shows it (in the order of the event's outputs)."""
    items: list  # (annotated image, caption) per model: /compare's gallery
    table: object  # pandas DataFrame: per model, boxes per class, the diff against the reference, ms
    payload: dict  # /compare's JSON: the reference, the image size, every box with its diff status
    shown: dict  # what the page keeps: images by model (slider), the display copy and its scale, summaries
    names: list[str]  # the models, in the order compared


def run_compare(store: ModelStore, image, selected, uploads, conf, iou, imgsz, reference,
                progress=None) -> CompareView:
    """Detect with each model on ``image`` and diff each against ``reference``."""
    imgsz = image_size(imgsz)
    models = resolve_models(store, selected, uploads, progress)
    within_budget(models, imgsz)
    return _run_compare(store, models, image, conf, iou, imgsz, reference)


@torch_thread
def _run_compare(store: ModelStore, models: dict, image, conf, iou, imgsz, reference):
    with user_facing():
        ref = reference if reference in models else store.baseline_name(models)
        result = one_image.compare(image, models, conf=float(conf), iou=float(iou), imgsz=int(imgsz), reference=ref)
    _say_the_reference(store, models, result.reference, result.table)
    images = {name: im for name, (im, _caption) in zip(result.names, result.images)}
    shown = {"images": images, "view": result.view, "scale": result.view_scale,
             "summaries": result.summaries}
    payload = {"reference": result.reference, "image_size": list(result.results[result.reference].image_shape),
               "detections": result.detections}
    if not any(d["confidence"] is not None for d in result.detections):
        classes = sorted({str(c) for m in models.values() for c in (getattr(m, "names", {}) or {}).values()})
        payload["note"] = (f"No model found anything above the confidence threshold ({float(conf):.2f}). Lower it, "
                           f"or check that the image shows what these models detect: {', '.join(classes[:12])}.")
    return CompareView(result.images, result.table, payload, shown, list(images))


def _say_the_reference(store: ModelStore, models: dict, reference: str, table) -> None:
    """A column saying what each model's diff is against, and when that reference is of another
    base than the model (a yolov5nu variant diffed against a yolov8n baseline)."""
    bases = {n: store.entries[n].base if n in store.entries else getattr(m, "base_name", None)
             for n, m in models.items()}
    ref_base = bases.get(reference)

    def against(name: str) -> str:
        if name == reference:
            return "(the reference)"
        other = bases.get(name) and ref_base and bases[name] != ref_base
        return reference + (f" (other base: {ref_base})" if other else "")

    if len(table):
        table.insert(1, "diffed against", [against(n) for n in table["model"]])


def shipped_domain(store: ModelStore) -> str:
    """One line on what the shipped models detect: their data sets and classes (from the run summaries)."""
    from attention_lens.experiments.runs import read_json_dict

    datasets, classes = set(), []
    for entry in store.entries.values():
        try:
            summary = read_json_dict(entry.run / "summary.json") if entry.run else {}
        except (OSError, ValueError):
            continue
        data = summary.get("dataset") if isinstance(summary.get("dataset"), dict) else {}
        datasets.add(str(data.get("name") or "?"))
        names = data.get("names") if isinstance(data.get("names"), dict) else {}
        classes += [str(v) for v in names.values() if str(v) not in classes]
    if not classes:
        return ""
    kind = " (blood-cell smears)" if any("bccd" in d.lower() for d in datasets) else ""
    return (f"**The shipped models** were trained on {', '.join(sorted(datasets))}{kind} and detect "
            f"only **{', '.join(classes)}**: any other image gets boxes of these classes. "
            "Add your own checkpoints for other domains.")


def results_grid(shown: dict | None, payload: dict | None):
    """UI: every model's result in one grid figure (boxes drawn, class and confidence on hover)."""
    from attention_lens.views.result_grid import results_grid as grid

    if not shown or shown.get("view") is None or not payload:
        return None
    return grid(shown["view"], shown["scale"], payload.get("detections", []), list(shown["images"]),
                shown.get("summaries", {}))


#: The columns of the "every box" table.
DETECTION_COLUMNS = ("model", "class", "confidence", "box (x1, y1, x2, y2)", "diff")


def detections_table(payload: dict | None):
    """Every box of a /compare answer as rows: the reference's first, strongest first per model
    (UI: the labels on the images leave out those that would cover others; the table has them all)."""
    import pandas as pd

    rows = [{"model": d["model"], "class": d["class"], "confidence": d["confidence"],
             "box (x1, y1, x2, y2)": ", ".join(f"{v:.0f}" for v in d["box"]), "diff": d.get("diff")}
            for d in (payload or {}).get("detections", [])]
    df = pd.DataFrame(rows, columns=list(DETECTION_COLUMNS))
    # the reference first, then the models in the order they were compared; strongest first in each
    order = {m: i for i, m in enumerate(dict.fromkeys([(payload or {}).get("reference"), *df["model"]]))}
    return df.assign(_m=df["model"].map(order)).sort_values(
        ["_m", "confidence"], ascending=[True, False], na_position="last", kind="stable").drop(columns="_m")


def slider_pair(shown: dict | None, a: str | None, b: str | None):
    """The two annotated images for the slider, or None until both are available."""
    images = (shown or {}).get("images")
    if not images or a not in images or b not in images:
        return None
    return images[a], images[b]


def compare(store: ModelStore, examples: list[str], image, models: list[str] | None = None,
            checkpoints: list | None = None, confidence: float = 0.25, iou: float = 0.7, image_size: int = 320,
            reference: str | None = None, progress=gr.Progress()):
    """Detect with each model on ``image``: annotated images, a per-model table, and every
    box (original pixels) with its diff status against ``reference``."""
    image, files = uploaded_path(image, examples), [uploaded_path(f) for f in checkpoints or []]
    view = run_compare(store, image, models, files, confidence, iou, image_size, reference, progress)
    if view.payload.get("note"):
        gr.Warning(view.payload["note"])
    return view.items, view.table, view.payload, view.shown


def compare_again(store: ModelStore, examples: list[str], image, models: list[str] | None = None,
                  checkpoints: list | None = None, confidence: float = 0.25, iou: float = 0.7, image_size: int = 320,
                  reference: str | None = None, progress=gr.Progress()):
    """``compare`` after a setting changed; nothing before an image is there."""
    if not image:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return compare(store, examples, image, models, checkpoints, confidence, iou, image_size, reference, progress)


def slider_choices(by_model: dict | None):
    """The slider's pickers set to the first two models of a comparison, and their images."""
    names = list((by_model or {}).get("images", {}))
    a, b = (names + names)[:2] if len(names) < 2 else names[:2]
    return gr.update(choices=names, value=a), gr.update(choices=names, value=b), slider_pair(by_model, a, b)
