"""UI handlers for "Explain one detection": plain functions a test calls without a browser.

A detection is named by text, ``"<class> @ x1,y1,x2,y2"`` (original image pixels), the form the
picker's values and the /explain endpoint share.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import gradio as gr
import numpy as np

from attention_lens.app.errors import UserError, user_facing
from attention_lens.app.inputs import image_size, resolve_models, uploaded_path, within_budget
from attention_lens.modeling.catalog import ModelStore
from attention_lens.torch_thread import torch_thread

_DETECTION = re.compile(r"^\s*(?P<cls>[^@]{1,80}?)\s*@\s*(?P<box>[-+0-9.eE]+(?:\s*,\s*[-+0-9.eE]+){3})\s*$")


def detection_value(class_name: str, box) -> str:
    return f"{class_name} @ " + ",".join(f"{float(v):.1f}" for v in box)


def parse_detection(text) -> tuple[str, list[float]]:
    """(class, box) from ``"<class> @ x1,y1,x2,y2"``; UserError for anything else."""
    m = _DETECTION.match(str(text or ""))
    if not m:
        raise UserError("Pick a detection to explain (run Compare, then click a box or pick one from the list).")
    try:
        box = [float(v) for v in m["box"].split(",")]
    except ValueError:
        raise UserError("The detection's box must be four numbers: x1,y1,x2,y2.") from None
    if not all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        raise UserError("The detection's box must have x2 > x1 and y2 > y1.")
    return m["cls"], box


def detection_choices(payload: dict | None) -> list[tuple[str, str]]:
    """The reference model's detections of a /compare answer, strongest first, as picker choices."""
    payload = payload or {}
    dets = [d for d in payload.get("detections", []) if d.get("model") == payload.get("reference")
            and d.get("confidence") is not None]
    dets.sort(key=lambda d: -d["confidence"])
    return [(f"{d['class']} {d['confidence']:.2f} at ({d['box'][0]:.0f}, {d['box'][1]:.0f})",
             detection_value(d["class"], d["box"])) for d in dets]


def detection_at(payload: dict | None, x: float, y: float) -> str | None:
    """The reference detection under a click at (x, y) original pixels: the smallest box holding
    the point, else the box whose centre is nearest."""
    choices = [parse_detection(v) for _label, v in detection_choices(payload)]
    if not choices:
        return None
    inside = [(c, b) for c, b in choices if b[0] <= x <= b[2] and b[1] <= y <= b[3]]
    if inside:
        c, b = min(inside, key=lambda cb: (cb[1][2] - cb[1][0]) * (cb[1][3] - cb[1][1]))
    else:
        c, b = min(choices, key=lambda cb: ((cb[1][0] + cb[1][2]) / 2 - x) ** 2 + ((cb[1][1] + cb[1][3]) / 2 - y) ** 2)
    return detection_value(c, b)


class ExplainView(NamedTuple):
    """One explained detection, as the section shows it (in the order of the event's outputs)."""
    items: list  # (overlay, caption) per model and per self-attention layer's box attention
    table: object  # pandas DataFrame: per model, the candidate explained and the map's energy in the box


def run_explain(store: ModelStore, image, selected, uploads, detection, method, levels, imgsz,
                progress=None) -> ExplainView:
    """One explanation of the chosen detection per model. Without a detection, the first model's
    strongest one (at confidence 0.25) is explained, and the table says so."""
    given = bool(str(detection or "").strip())
    class_name, box = parse_detection(detection) if given else (None, None)
    if not selected and not uploads:
        raise UserError("Pick at least one model.")
    imgsz = image_size(imgsz)
    models = resolve_models(store, selected, uploads, progress)
    within_budget(models, imgsz)
    chosen = "as given"
    if not given:
        first = next(iter(models))
        class_name, box = _top_detection(models[first], image, imgsz, first)
        chosen = f"{first}'s strongest detection (none was given)"
    items, table = _run_explain(models, image, class_name, box, method, list(levels or []), imgsz)
    table.insert(2, "detection", chosen)
    return ExplainView(items, table)


@torch_thread
def _top_detection(model, image, imgsz: int, name: str) -> tuple[str, list[float]]:
    from attention_lens.analysis.images import load_image
    from attention_lens.runtime.detect import detect

    with user_facing():
        det = detect(model, load_image(image), conf=0.25, imgsz=imgsz)
    if not len(det.scores):
        raise UserError(f"{name} finds nothing at confidence 0.25 on this image: pick a detection to explain.")
    k = int(np.argmax(det.scores))
    return det.classes[k], [float(v) for v in det.boxes[k]]


@torch_thread
def _run_explain(models: dict, image, class_name, box, method, levels, imgsz):
    import cv2
    import pandas as pd

    from attention_lens.analysis.box_attention import box_attention_from
    from attention_lens.runtime.capture import attention_layout
    from attention_lens.analysis.explain import ExplainError, energy_ratio, explain_box, explanation_notes
    from attention_lens.analysis.heatmaps import overlay
    from attention_lens.analysis.images import display_copy, load_image
    from attention_lens.analysis.render import class_colors, draw

    with user_facing(ExplainError):
        rgb = load_image(image)
        h, w = rgb.shape[:2]
        if box[0] >= w or box[1] >= h or box[2] <= 0 or box[3] <= 0:
            raise UserError(f"The box lies outside the image ({w}x{h} pixels).")
        view, s = display_copy(rgb)
        palette = class_colors([class_name])
        items, rows = [], []
        for name, model in models.items():
            attends = attention_layout(model).has_self_attention
            e = explain_box(model, name, rgb, box, class_name, method=method, levels=levels, imgsz=int(imgsz),
                            display_hw=view.shape[:2], capture=attends)
            im = overlay(view, e.cam, 0.5, "jet")
            x1, y1, x2, y2 = (int(round(v * s)) for v in box)
            im = cv2.rectangle(np.ascontiguousarray(im), (x1, y1), (x2, y2), (255, 255, 255), 2)  # the chosen box
            if e.matched is not None:  # the model's own candidate, in the class colour, with its score
                im = draw(im, e.matched[None] * s, np.array([e.confidence]), [class_name], palette)
            empty = "" if e.cam.max() > 0 else (f" · empty: no gradient reaches these layers from a "
                                                 f"{e.level or 'lower'} candidate")
            notes = explanation_notes(e)
            items.append((im, f"{name} · {method} · energy in box {e.energy_in_box:.2f} "
                              f"(the box is {e.box_share:.1%} of the image: {energy_ratio(e):.1f}x uniform){empty}"
                              + "".join(f" · {n.split(':')[0]}" for n in notes)))
            # Self-attention's own answer beside the CAM: where the box's cells look (recorded during
            # the CAM's forward: no forward of its own).
            looked = box_attention_from(model, name, e.captured, (h, w), box, view.shape[:2]) \
                if attends else []
            for ba in looked:
                shown = cv2.rectangle(np.ascontiguousarray(overlay(view, ba.heat, 0.5, "jet")), (x1, y1), (x2, y2),
                                      (255, 255, 255), 2)
                items.append((shown, ba.caption()))
            rows.append({"model": name, "method": method, "class": class_name,
                         "score of the matched candidate": None if e.confidence is None else round(e.confidence, 3),
                         "IoU with the chosen box": None if e.iou is None else round(e.iou, 3),
                         "candidate's level": e.level,
                         "energy in box": round(e.energy_in_box, 3), "box share of image": round(e.box_share, 4),
                         "energy / box share (1 = uniform)": round(energy_ratio(e), 2),
                         "self-attention kept on the box (1 = none)":
                             " · ".join(f"{ba.layer.split(' (')[0]} {float(ba.kept.mean()):.2f}x" for ba in looked) or "—",
                         "notes": "; ".join(notes) or "—", "ms": round(e.ms, 1)})
            del e, looked  # the captured matrices go before the next model runs, not after
    return items, pd.DataFrame(rows)


def explain(store: ModelStore, examples: list[str], image, models: list[str] | None = None,
            checkpoints: list | None = None, detection: str | None = None, method: str = "Grad-CAM",
            layers: list[str] | tuple = ("P3", "P4", "P5"), image_size: int = 320, progress=gr.Progress()):
    """Explain one detection, ``"<class> @ x1,y1,x2,y2"`` in original image pixels, in each model:
    a CAM per model over the image and a table with each map's energy inside the box."""
    return run_explain(store, uploaded_path(image, examples), models, [uploaded_path(f) for f in checkpoints or []],
                       detection, method, layers, image_size, progress)


def pick_detection(payload: dict | None, page: dict | None, evt: gr.SelectData):
    """The detection under a click on the reference's result (shown at ``page``'s scale)."""
    scale = (page or {}).get("scale") or 1.0
    x, y = evt.index[:2]
    return detection_at(payload, x / scale, y / scale) or gr.skip()
