"""Predict: every model's detections over a labelled split, in one pass, cached.

Detections are made as ultralytics' validator makes them (its letterbox, confidence 0.001,
multi-label NMS at IoU 0.7, up to ``MAX_DETS`` per image), in the image's own pixels, with the
split's class indices; with ``localise`` also where each model's maps fall on the image's objects
(``analysis.localisation``). They are cached per (model content, split fingerprint, split, image
size), so another look at other thresholds or another reference costs only the matching.
"""
from __future__ import annotations

import numpy as np
import torch

from attention_lens.cache import BoundedCache
from attention_lens.data.datasets import Split
from attention_lens.evaluation.coco import MAX_DETS, EvaluationError, size_of
from attention_lens.modeling.identity import loaded_identity


def class_map(model_names: dict, classes: list[str], label: str) -> dict[int, int]:
    """Model class index -> split class index, by name; every split class must be predicted."""
    by_name = {str(n): int(i) for i, n in model_names.items()}
    missing = [c for c in classes if c not in by_name]
    if missing:
        raise EvaluationError(f"{label} predicts {sorted(by_name)[:10]}, not the data set's classes {missing[:10]}")
    return {by_name[c]: j for j, c in enumerate(classes)}


#: Images per ONNX Runtime run in a pass (graphs that take batches): eight a run was the fastest
#: of one, four and eight (docs/PERFORMANCE.md, section 11).
PASS_BATCH = 8


def predict_models(models: dict, split: Split, imgsz: int, progress=None, localise: bool = False) -> dict:
    """name -> (per image (n, 6): x1, y1, x2, y2, score, split class index, in the image's own
    pixels, unclipped; per image localisation scores when ``localise``, else None), for several
    models (name -> model) in one pass over the split: each image is read and letterboxed once
    (per stride) as ultralytics' validator does it (``val_input``: its letterbox and multi-label NMS;
    RT-DETR's stretch and its decoder's ranking), then every
    model runs on it; images of one letterboxed shape go through a model's ONNX Runtime graph
    ``PASS_BATCH`` at a time where it takes batches. Localisation scores the maps of a forward on
    the predictor's input (the one every view shows, see localisation.detect_and_score).
    ``progress(done, total)`` after each group of images."""
    from attention_lens.analysis.images import load_image
    from attention_lens.analysis.localisation import detect_and_score, groups_of
    from attention_lens.runtime.detect import detect_batch
    from attention_lens.runtime.letterbox import input_key, model_input, val_input
    from attention_lens.runtime.onnx_backend import REGISTRY

    if not split.has_pixels:
        raise EvaluationError("this split is stored as numbers only; its images are needed to run a model")
    by_name = {}  # model -> {model class name: split class index}
    for label, model in models.items():
        names = getattr(model, "names", {}) or {}
        mapping = class_map(names, split.classes, label)
        by_name[label] = {n: mapping[int(i)] for i, n in names.items() if int(i) in mapping}
    REGISTRY.prepare(list(models.values()), wait=True)  # one backend for the whole split (export first, if it can)
    out = {label: ([], [] if localise else None) for label in models}
    n_images, step = len(split.paths), 1 if localise else PASS_BATCH  # localisation: one image at a time
    for start in range(0, n_images, step):
        chunk = list(range(start, min(n_images, start + step)))
        rgbs = [load_image(split.paths[i]) for i in chunk]
        boxed = {}  # input_key -> per image (the validator's input, its ratio_pad)
        for label, model in models.items():
            key = input_key(model)
            if key not in boxed:
                boxed[key] = [val_input(model, rgb, imgsz) for rgb in rgbs]
            xs = [x for x, _ in boxed[key]]
            dets, scores = out[label]
            found = [None] * len(chunk)
            for shape in dict.fromkeys(tuple(x.shape) for x in xs):  # one run per letterboxed shape
                same = [k for k, x in enumerate(xs) if tuple(x.shape) == shape]
                batch = torch.cat([xs[k] for k in same]) if len(same) > 1 else xs[same[0]]
                for k, det in zip(same, detect_batch(model, [rgbs[k] for k in same], batch, conf=0.001, iou=0.7,
                                                     max_det=MAX_DETS, ratio_pads=[boxed[key][k][1] for k in same])):
                    found[k] = det
            dets.extend(_in_split_classes(det, by_name[label]) for det in found)
            if localise:  # the maps over the predictor's input, as every view shows them
                for k, i in enumerate(chunk):
                    groups = groups_of(split.boxes[i], split.classes, size_of)
                    scores.append(detect_and_score(model, rgbs[k], groups, split.boxes[i], imgsz=imgsz,
                                                   max_det=MAX_DETS, x=model_input(model, rgbs[k], imgsz))[1]
                                  if groups else None)
        if progress:
            progress(chunk[-1] + 1, n_images)
    return out


def _in_split_classes(det, by_name: dict) -> np.ndarray:
    """(n, 6) rows of the detections whose class the split has, with the split's class index."""
    keep = [k for k, c in enumerate(det.classes) if c in by_name]
    if not keep:
        return np.zeros((0, 6))
    cls = np.array([by_name[det.classes[k]] for k in keep], dtype=np.float64)
    return np.column_stack([det.boxes[keep].astype(np.float64), det.scores[keep].astype(np.float64), cls])


#: Detections (and localisation scores) by (model identity, split fingerprint, split, image size).
_CACHE: BoundedCache[tuple] = BoundedCache(32)


def predictions_for_models(models: dict, split: Split, imgsz: int, progress=None, localise: bool = False) -> dict:
    """name -> (detections, localisation scores or None), cached per (model content, split
    fingerprint, split, image size); the models not cached run together, in one pass over the
    split (each image read once). A cached entry without scores is run again when scores are
    asked for. ``progress(done, total)`` after each image of that pass."""
    keys = {name: (loaded_identity(model), split.fingerprint, split.split, imgsz) for name, model in models.items()}
    found = {}
    for name, key in keys.items():
        hit = _CACHE.get(key)
        if hit is not None and (hit[1] is not None or not localise):
            found[name] = hit
    missing = {name: model for name, model in models.items() if name not in found}
    if missing:
        ran = predict_models(missing, split, imgsz, progress, localise)
        for name, entry in ran.items():
            _CACHE.put(keys[name], entry)
        found.update(ran)
    return {name: found[name] for name in models}
