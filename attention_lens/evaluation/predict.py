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


def predict_models(models: dict, split: Split, imgsz: int, progress=None, localise: bool = False,
                   half: bool = False, prefetch: bool | None = None) -> dict:
    """name -> (per image (n, 6): x1, y1, x2, y2, score, split class index, in the image's own
    pixels, unclipped; per image localisation scores when ``localise``, else None), for several
    models (name -> model) in one pass over the split: each image is read and letterboxed once
    (per stride) as ultralytics' validator does it (``val_input``: its letterbox and multi-label NMS;
    RT-DETR's stretch and its decoder's ranking), then every
    model runs on it; images of one letterboxed shape go ``PASS_BATCH`` at a time through a model's
    ONNX Runtime graph where it takes batches, else through one PyTorch forward (``batches_on_torch``),
    fewer a run where the model's memory bound says so (``detect.images_per_run``).
    Localisation scores the maps of a forward on the same validator input
    (``detect_and_score_batch``), and that forward gives the detections: for a model with attention
    layers the pass's own batched run captures them; a model without runs LayerCAM on PyTorch (its
    gradients), in same-shape groups as its memory bound allows, instead of its plain run. The maps
    are placed by that input's geometry (the views show the predictor's letterbox, a few pixels of
    padding apart).
    ``progress(done, total)`` after each group of images.

    ``half``: models on a GPU run the pass in float16 (a copy each; the views stay float32).
    ``prefetch`` (default: when a model is on a GPU): the next group of images is read and
    letterboxed by a worker thread while the models run on this one."""
    from concurrent.futures import ThreadPoolExecutor

    from attention_lens.analysis.localisation import detect_and_score_batch, groups_of
    from attention_lens.device import model_device
    from attention_lens.runtime.onnx_backend import REGISTRY

    if not split.has_pixels:
        raise EvaluationError("this split is stored as numbers only; its images are needed to run a model")
    by_name = {}  # model -> {model class name: split class index}
    for label, model in models.items():
        names = getattr(model, "names", {}) or {}
        mapping = class_map(names, split.classes, label)
        by_name[label] = {n: mapping[int(i)] for i, n in names.items() if int(i) in mapping}
    on_gpu = any(model_device(m).type != "cpu" for m in models.values())
    if half:
        models = half_copies(models)
    REGISTRY.prepare(list(models.values()), wait=True)  # one backend for the whole split (export first, if it can)
    out = {label: ([], [] if localise else None) for label in models}
    n_images = len(split.paths)
    chunks = [list(range(start, min(n_images, start + PASS_BATCH))) for start in range(0, n_images, PASS_BATCH)]
    read = _ChunkReader(split, models, imgsz, pin=on_gpu)
    with ThreadPoolExecutor(1, thread_name_prefix="attention-lens-read") as pool:
        ahead = pool.submit(read, chunks[0]) if chunks and (on_gpu if prefetch is None else prefetch) else None
        for n, chunk in enumerate(chunks):
            rgbs, boxed = ahead.result() if ahead is not None else read(chunk)
            if ahead is not None and n + 1 < len(chunks):
                ahead = pool.submit(read, chunks[n + 1])
            # Each image's groups of objects, once for every model.
            groups = [groups_of(split.boxes[i], split.classes, size_of) for i in chunk] if localise else []
            for label, model in models.items():
                inputs = boxed[read.keys[label]]
                dets, scores = out[label]
                located = [(None, None)] * len(chunk)
                for same, batch in _by_shape(inputs) if localise else ():
                    for k, pair in zip(same, detect_and_score_batch(
                            model, [rgbs[k] for k in same], batch, [inputs[k][1] for k in same],
                            [groups[k] for k in same],
                            [split.boxes[chunk[k]] for k in same], max_det=MAX_DETS)):
                        located[k] = pair
                if localise:
                    scores.extend(score for _, score in located)
                # With localisation the detections are those of the forward that made the maps: a model
                # with attention layers captures them in the pass's own batched run; a model without runs
                # LayerCAM on PyTorch (gradients), and that forward replaces the plain run.
                found = [det for det, _ in located] if localise else _detect_chunk(model, rgbs, inputs)
                dets.extend(_in_split_classes(det, by_name[label]) for det in found)
            if progress:
                progress(chunk[-1] + 1, n_images)
    return out


def ran_on(model, localise: bool, half: bool = False) -> str:
    """What ran a model's pass (``predict_models``), as the page and the JSON name it: its backend
    (``Registry.backend``); the float16 copy's device (``half``); with localisation, PyTorch for a
    model without attention layers (LayerCAM's forward gives its detections)."""
    from attention_lens.analysis.layercam import LAYERCAM_BACKEND
    from attention_lens.runtime.capture import attention_layout
    from attention_lens.runtime.onnx_backend import REGISTRY, pytorch_label

    if half:
        return pytorch_label(model, half=True)
    if localise and not attention_layout(model).layers:
        label = pytorch_label(model)
        return LAYERCAM_BACKEND if label == "pytorch" else f"{label}, LayerCAM needs gradients"
    return REGISTRY.backend(model)


def _detect_chunk(model, rgbs: list, inputs: list) -> list:
    """The pass's detections of one group of images (``inputs``: each image's validator input and
    ratio_pad): one run per letterboxed shape (``detect_batch``)."""
    from attention_lens.runtime.detect import detect_batch

    found = [None] * len(inputs)
    for same, batch in _by_shape(inputs):
        for k, det in zip(same, detect_batch(model, [rgbs[k] for k in same], batch, conf=0.001, iou=0.7,
                                             max_det=MAX_DETS, ratio_pads=[inputs[k][1] for k in same])):
            found[k] = det
    return found


def _by_shape(inputs: list):
    """(indices, (n, 3, h, w) batch) of the ``inputs`` ((x, ratio_pad) each) that share a shape."""
    xs = [x for x, _ in inputs]
    for shape in dict.fromkeys(tuple(x.shape) for x in xs):
        same = [k for k, x in enumerate(xs) if tuple(x.shape) == shape]
        yield same, torch.cat([xs[k] for k in same]) if len(same) > 1 else xs[same[0]]


class _ChunkReader:
    """One group of a split's images, decoded, and each model kind's validator input for each
    (``runtime.letterbox.input_key``: models that share it share one letterbox): what a worker
    thread prepares while the models run. ``pin``: inputs in page-locked memory (a GPU copies
    those asynchronously)."""

    def __init__(self, split: Split, models: dict, imgsz: int, pin: bool = False):
        from attention_lens.runtime.letterbox import input_key

        self.split, self.imgsz, self.pin = split, imgsz, pin
        self.keys = {label: input_key(m) for label, m in models.items()}
        self.kinds = {self.keys[label]: m for label, m in models.items()}

    def __call__(self, chunk: list[int]):
        from attention_lens.analysis.images import load_image
        from attention_lens.runtime.letterbox import val_input

        rgbs = [load_image(self.split.paths[i]) for i in chunk]
        boxed = {}
        for key, model in self.kinds.items():
            pairs = [val_input(model, rgb, self.imgsz) for rgb in rgbs]
            boxed[key] = [(x.pin_memory(), pad) for x, pad in pairs] if self.pin else pairs
        return rgbs, boxed


def half_copies(models: dict) -> dict:
    """Float16 copies of models on a GPU, for the evaluation pass (``predict_models(half=True)``);
    EvaluationError for a model on the CPU, where float16 convolutions are slow or missing."""
    import copy

    from attention_lens.device import model_device

    on_cpu = [n for n, m in models.items() if model_device(m).type == "cpu"]
    if on_cpu:
        raise EvaluationError(f"half precision is for models on a GPU; {on_cpu[0]} runs on the CPU")
    return {name: copy.deepcopy(model).half() for name, model in models.items()}


def _in_split_classes(det, by_name: dict) -> np.ndarray:
    """(n, 6) rows of the detections whose class the split has, with the split's class index."""
    keep = [k for k, c in enumerate(det.classes) if c in by_name]
    if not keep:
        return np.zeros((0, 6))
    cls = np.array([by_name[det.classes[k]] for k in keep], dtype=np.float64)
    return np.column_stack([det.boxes[keep].astype(np.float64), det.scores[keep].astype(np.float64), cls])


#: Detections (and localisation scores) by (model identity, split fingerprint, split, image size, half).
_CACHE: BoundedCache[tuple] = BoundedCache(32)


def predictions_for_models(models: dict, split: Split, imgsz: int, progress=None, localise: bool = False,
                           half: bool = False) -> dict:
    """name -> (detections, localisation scores or None), cached per (model content, split
    fingerprint, split, image size, precision); the models not cached run together, in one pass
    over the split (each image read once). A cached entry without scores is run again when scores
    are asked for. ``progress(done, total)`` after each image of that pass. ``half``: see
    ``predict_models``."""
    keys = {name: (loaded_identity(model), split.fingerprint, split.split, imgsz, bool(half))
            for name, model in models.items()}
    found = {}
    for name, key in keys.items():
        hit = _CACHE.get(key)
        if hit is not None and (hit[1] is not None or not localise):
            found[name] = hit
    missing = {name: model for name, model in models.items() if name not in found}
    if missing:
        ran = predict_models(missing, split, imgsz, progress, localise, half=half)
        for name, entry in ran.items():
            _CACHE.put(keys[name], entry)
        found.update(ran)
    return {name: found[name] for name in models}
