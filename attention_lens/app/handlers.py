"""UI handlers: plain functions from widget values to widget values.

They turn the domain errors (bad image, hostile checkpoint, bad request) into messages for the
user; tests call them without a browser.
"""
from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from attention_lens.analysis.compare import CompareError, compare
from attention_lens.analysis.images import ImageError
from attention_lens.runtime.letterbox import ImageSizeError, check_image_size
from attention_lens.env import run_folder
from attention_lens.modeling.catalog import ModelStore
from attention_lens.modeling.checkpoints import CheckpointError
from attention_lens.modeling.cost import CostError, check_request
from attention_lens.torch_thread import run_on_torch_thread, torch_thread

USER_ERRORS = (ImageError, CheckpointError, CompareError, ImageSizeError, CostError)


class UserError(Exception):
    """Raised by handlers with a message meant for the browser (the UI shows it as gr.Error)."""


def unexpected(e: Exception) -> UserError:
    """A bug or an unforeseen input: log the traceback here, give the browser one clear line."""
    import logging

    import secrets

    ref = secrets.token_hex(3)  # ties the user's message to the log entry without showing library text
    logging.getLogger("attention_lens").exception("handler failed [%s]", ref)
    return UserError(f"Something went wrong on our side (reference {ref} in the server log). The app is still "
                     "running; try another image or model.")


@contextmanager
def user_facing(*domain_errors: type[Exception]):
    """Inside: the domain's errors (``USER_ERRORS`` and ``domain_errors``) become UserError with
    their own message; anything unforeseen becomes one clear line, its traceback only in the log."""
    try:
        yield
    except (*USER_ERRORS, *domain_errors) as e:
        raise UserError(str(e)) from None
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001  (the browser gets a message, the log the traceback)
        raise unexpected(e) from None


#: The one answer for a file path a request names that is neither an upload nor a shipped file,
#: whether or not that path exists.
NOT_AN_UPLOAD = "That file was not uploaded here; upload it again."


def uploaded_path(value, shipped=()) -> str | None:
    """The local path in a raw gradio file payload, if it is an upload or a file the app ships.

    The events take raw payloads (``preprocess=False``, so that bad images reach our decoder's
    clear messages), and a raw payload's path is whatever the request says. Only a file inside
    gradio's upload folder, or one of ``shipped`` (the example images), is accepted; symlinks
    are resolved first. Anything else gets NOT_AN_UPLOAD, the same words whether it exists or not.
    """
    import os

    from gradio.utils import get_upload_folder

    if value is None or value == "":
        return None
    path = value.get("path") if isinstance(value, dict) else getattr(value, "name", value)
    if not isinstance(path, str) or not path or "\0" in path:
        raise UserError(NOT_AN_UPLOAD)
    real = Path(os.path.realpath(path))
    root = Path(os.path.realpath(get_upload_folder()))
    if (real.is_relative_to(root) and real != root) or str(real) in {os.path.realpath(s) for s in shipped}:
        return str(real)
    raise UserError(NOT_AN_UPLOAD)


def image_size(value) -> int:
    """The request's image size as an int within the views' limits, or UserError: checked first,
    before any model is loaded or anything of that size allocated."""
    try:
        return check_image_size(value)
    except ImageSizeError as e:
        raise UserError(str(e)) from None


def within_budget(models: dict, imgsz: int) -> None:
    """UserError when a model's forward at ``imgsz`` would take more activation memory than a
    request may (each model's cost was measured on the meta device when it was loaded)."""
    try:
        check_request(models, imgsz)
    except CostError as e:
        raise UserError(str(e)) from None


def check_names(store: ModelStore, selected: list | None) -> list[str]:
    """The picked names, each a shipped model's, or UserError naming the first that is not."""
    for name in selected or []:
        if name not in store.entries:
            raise UserError(f"Unknown model {str(name)[:60]!r}; pick one of the listed models.")
    return [str(n) for n in selected or []]


#: Checkpoints one request may upload (each is read in its own limited process).
MAX_UPLOADS = 8


def resolve_models(store: ModelStore, selected: list[str] | None, uploads: list | None, progress=None) -> dict:
    """name -> model for the picked catalogue entries (in the catalogue's order: baseline first,
    then by placement) and the uploaded checkpoints.

    Runs on the caller's thread: an upload is read in a limited child process while this thread
    waits, so other users' forwards on the torch thread go on meanwhile."""
    models = {}
    check_names(store, selected)
    if len(uploads or []) > MAX_UPLOADS:
        raise UserError(f"At most {MAX_UPLOADS} checkpoints at a time.")
    rank = {n: i for i, n in enumerate(store.names)}
    picked = sorted(set(selected or []), key=rank.__getitem__)  # catalogue order, whatever the click order
    cold = [n for n in picked if n not in store.loaded]  # first use: read, built and warmed up now
    for name in picked:
        if progress is not None and name in cold:
            progress((cold.index(name), len(cold)), desc=f"Loading {len(cold)} model(s) on first use: {name}")
        models[name] = run_on_torch_thread(store.get, name)
    for path in uploads or []:
        try:
            key, model = store.upload(path)
        except CheckpointError as e:
            raise UserError(f"Upload refused: {e}") from None
        models[key] = model
    return models


def run_compare(store: ModelStore, image, selected, uploads, conf, iou, imgsz, reference, progress=None):
    """Returns (gallery items, table, detections JSON, what the page shows, model names).

    What the page shows: the annotated image by model (for the slider), the image at display size
    with nothing drawn and its scale (for the results grid), and the caption by model."""
    imgsz = image_size(imgsz)
    models = resolve_models(store, selected, uploads, progress)
    within_budget(models, imgsz)
    return _run_compare(store, models, image, conf, iou, imgsz, reference)


@torch_thread
def _run_compare(store: ModelStore, models: dict, image, conf, iou, imgsz, reference):
    with user_facing():
        ref = reference if reference in models else store.baseline_name(models)
        result = compare(image, models, conf=float(conf), iou=float(iou), imgsz=int(imgsz), reference=ref)
    _say_the_reference(store, models, result.reference, result.table)
    images = {name: im for name, (im, _caption) in zip(result.names, result.images)}
    shown = {"images": images, "view": result.view, "scale": result.view_scale,
             "captions": {name: caption for name, (_im, caption) in zip(result.names, result.images)}}
    payload = {"reference": result.reference, "image_size": list(result.results[result.reference].image_shape),
               "detections": result.detections}
    if not any(d["confidence"] is not None for d in result.detections):
        classes = sorted({str(c) for m in models.values() for c in (getattr(m, "names", {}) or {}).values()})
        payload["note"] = (f"No model found anything above the confidence threshold ({float(conf):.2f}). Lower it, "
                           f"or check that the image shows what these models detect: {', '.join(classes[:12])}.")
    return result.images, result.table, payload, shown, list(images)


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
        return reference + (f" (another base: {ref_base}, this model's is {bases[name]})" if other else "")

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
                shown.get("captions", {}))


def detections_table(payload: dict | None):
    """Every box of a /compare answer as rows: the reference's first, strongest first per model
    (UI: the labels on the images leave out those that would cover others; the table has them all)."""
    import pandas as pd

    rows = [{"model": d["model"], "class": d["class"], "confidence": d["confidence"],
             "box (x1, y1, x2, y2)": ", ".join(f"{v:.0f}" for v in d["box"]), "diff": d.get("diff")}
            for d in (payload or {}).get("detections", [])]
    df = pd.DataFrame(rows, columns=["model", "class", "confidence", "box (x1, y1, x2, y2)", "diff"])
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


def run_attention(store: ModelStore, image, selected, colormap, alpha, conf, imgsz, uploads=None, stretch=False,
                  progress=None):
    """Returns (notice, layer table, attention matrix figure, summary, state). What follows in
    the UI from that state: every map as an image and the channel charts (``attention_extras``),
    and the downloads (``attention_downloads``): the matrix shows without waiting for them."""
    if not selected and not uploads:
        raise UserError("Pick at least one model.")
    imgsz = image_size(imgsz)
    models = resolve_models(store, selected, uploads, progress)
    within_budget(models, imgsz)
    return _run_attention(store, models, image, colormap, alpha, conf, imgsz, stretch)


@torch_thread
def _run_attention(store: ModelStore, models: dict, image, colormap, alpha, conf, imgsz, stretch=False):
    from attention_lens.views.attention_matrix import matrix_spec
    from attention_lens.analysis.attention_view import inspect, no_attention_models

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
    return notice, ins.table(), matrix, summary, ins


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
        "No self-attention in the selected models (YOLO11/YOLO26 C2PSA, YOLOv10 PSA and YOLO12 area attention have it).")
    return render(ins, float(alpha), colormap), channels, heads


@torch_thread
def attention_downloads(ins, colormap, alpha, session: str | None = None) -> list[str] | None:
    """The overlays (PNG, zipped) and raw maps (.npz) of a stored inspection, as now rendered.

    A separate step because the lossless files take longer to write (~0.3 s for 15 overlays)
    than the models took to run: the maps show first, the files follow. They are written into
    the session's own folder, which holds only the latest files and is removed when the session ends."""
    from attention_lens.analysis.attention_view import export, render

    return export(ins, render(ins, float(alpha), colormap), session_folder(session)) if ins is not None else None


#: Per-session folders for files the app writes (downloads, the metrics CSV): one per browser
#: session, emptied before each write, removed when the session ends (``end_session``).
SESSIONS_ROOT = run_folder() / "sessions"


def _session_root(session: str | None) -> Path:
    name = re.sub(r"[^A-Za-z0-9_-]", "", str(session or "anonymous"))[:64] or "anonymous"
    return SESSIONS_ROOT / name


def session_folder(session: str | None, part: str = "attention") -> Path:
    """An empty folder for one kind of file (``part``) of ``session`` (gradio's session hash).

    Sessions whose folders were not touched for a state lifetime are swept on the way: a client
    that never closes its session (a script, a crawler) leaves nothing behind for long."""
    from attention_lens.app.widgets import STATE_TTL_S

    sweep_sessions(STATE_TTL_S)
    folder = _session_root(session) / part
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sweep_sessions(max_age_s: float) -> None:
    """Remove session folders not written to for ``max_age_s`` seconds."""
    import time

    if not SESSIONS_ROOT.is_dir():
        return
    cutoff = time.time() - max_age_s
    for folder in SESSIONS_ROOT.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def end_session(session: str | None) -> None:
    """Remove everything the app wrote for ``session``."""
    if session:
        shutil.rmtree(_session_root(session), ignore_errors=True)


def attention_matrix(ins, colormap="jet", opacity=0.5, stretch=False):
    """UI: the attention matrix of a stored inspection (rows = models, columns = P3/P4/P5)."""
    from attention_lens.views.attention_matrix import matrix_spec

    return plot_payload(matrix_spec(ins, opacity=float(opacity), colormap=colormap, stretch=bool(stretch))) if ins else None


def plot_payload(spec: dict | None):
    """A figure's plain data as what gr.Plot sends, encoded here once: a plotly Figure would be
    validated and deep-copied on construction, then re-encoded by gr.Plot (more than the forwards
    the view shows on ONNX Runtime: docs/PERFORMANCE.md, section 11). orjson writes the numpy
    arrays itself (NaN as null, as plotly does); plotly.io.to_json would add an escaping pass for
    embedding in an HTML page, which the JSON gr.Plot sends never is."""
    import orjson
    from gradio.components.plot import PlotData

    if spec is None:
        return None
    return PlotData(type="plotly", plot=orjson.dumps(spec, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY).decode())


def _json_default(obj):
    """What orjson cannot write itself (a strided numpy view, a float16 array) as a list."""
    import numpy as np

    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


@torch_thread
def rerender_attention(ins, colormap, alpha):
    """Overlays again from the captured maps: opacity and colormap never rerun the models."""
    from attention_lens.analysis.attention_view import render

    return render(ins, float(alpha), colormap) if ins is not None else []
