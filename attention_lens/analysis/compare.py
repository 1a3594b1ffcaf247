"""The comparison: one image, several models, side by side, with a diff against a reference.

Plain functions: the UI and the /compare endpoint call ``compare``; tests call it directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from attention_lens.analysis.diff import match
from attention_lens.analysis.images import display_copy, load_image
from attention_lens.runtime.detect import Detections, detect
from attention_lens.runtime.letterbox import ImageSizeError, check_image_size, input_key, model_input
from attention_lens.analysis.render import class_colors, draw

MIN_MODELS = 2
IMGSZ_CHOICES = (320, 416, 480, 640)


class CompareError(ValueError):
    """A user-facing problem with the request (too few models, unknown reference...)."""


@dataclass
class Comparison:
    images: list[tuple[np.ndarray, str]]  # (annotated RGB image, caption: name · summary) per model
    names: list[str]  # the models, in the order of ``images``
    summaries: dict[str, str]  # model -> "n boxes · ms (backend)"
    table: pd.DataFrame
    detections: list[dict]  # model, class, confidence, box (original pixels), diff status
    reference: str
    results: dict = field(default_factory=dict)  # model -> Detections
    view: np.ndarray | None = None  # the image at display size, nothing drawn
    view_scale: float = 1.0  # display pixels per original pixel


def compare(image, models: dict, *, conf: float = 0.25, iou: float = 0.7, imgsz: int = 320,
            reference: str | None = None, match_iou: float = 0.5, capture: bool = False) -> Comparison:
    """Detect with every model in ``models`` (name -> loaded model) on ``image``.

    ``reference`` defaults to the first model; the diff marks each other model's boxes that the
    reference has no match for ("only here") and the reference boxes it missed ("missed").
    """
    if len(models) < MIN_MODELS:
        raise CompareError(f"Pick at least {MIN_MODELS} models to compare (got {len(models)}).")
    if not 0 <= conf <= 1 or not 0 <= iou <= 1:
        raise CompareError("Confidence and IoU thresholds must lie between 0 and 1.")
    try:
        imgsz = check_image_size(imgsz)
    except ImageSizeError as e:
        raise CompareError(str(e)) from None
    rgb = load_image(image)
    reference = reference or next(iter(models))
    if reference not in models:
        raise CompareError(f"The reference model {reference!r} is not among the selected models.")
    # One input per kind (stride; letterbox or RT-DETR's stretch), shared by the models that take it.
    boxed = {}
    for m in models.values():
        if input_key(m) not in boxed:
            boxed[input_key(m)] = model_input(m, rgb, int(imgsz))
    results = {name: detect(m, rgb, conf=conf, iou=iou, imgsz=int(imgsz), capture=capture, x=boxed[input_key(m)])
               for name, m in models.items()}
    names = _class_union(models)
    palette = class_colors(names)
    ref = results[reference]
    images, rows, records, summaries = [], [], [], {}
    view, s = display_copy(rgb)  # drawn at display size; boxes in the records stay in original pixels
    for name, det in results.items():
        if name == reference:
            status, missed = ["reference"] * len(det.classes), []
        else:
            status, missed = match(det.boxes, det.classes, ref.boxes, ref.classes, match_iou, det.scores)
        drawn = draw(view, det.boxes * s, det.scores, det.classes, palette, None if name == reference else status,
                     ref.boxes[missed] * s if missed else (), [ref.classes[j] for j in missed])
        summaries[name] = f"{len(det.classes)} boxes · {det.ms:.0f} ms ({det.backend})"
        images.append((drawn, f"{name} · {summaries[name]}"))
        rows.append(_row(name, det, names, status, missed, name == reference))
        for rec, st in zip(det.as_records(name), status):
            records.append({**rec, "diff": st})
        records += [{"model": name, "class": ref.classes[j], "confidence": None,
                     "box": [round(float(v), 1) for v in ref.boxes[j]], "diff": "missed"} for j in missed]
    return Comparison(images, list(results), summaries, pd.DataFrame(rows), records, reference, results, view, s)


def _class_union(models: dict) -> list[str]:
    names = []
    for m in models.values():
        for n in (getattr(m, "names", {}) or {}).values():
            if str(n) not in names:
                names.append(str(n))
    return names


def _row(name: str, det: Detections, names: list[str], status, missed, is_ref: bool) -> dict:
    row = {"model": name, "ms": round(det.ms, 1), "backend": det.backend, "boxes": len(det.classes)}
    for n in names:
        row[n] = det.classes.count(n)
    row["only here"] = None if is_ref else status.count("only here")
    row["missed vs reference"] = None if is_ref else len(missed)
    return row
