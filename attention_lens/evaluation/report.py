"""Several models over one labelled split, against a reference: the numbers, and a report.

``evaluate_models`` runs (or reuses, ``predict``) each model's detections; ``evaluate_detections``
asks the COCO tools for the metrics (``coco``), ultralytics for its own (``ultralytics_metrics``),
bootstraps the differences (``bootstrap``), sorts the errors (``error_types``) and returns one
JSON-ready dict. Its tables, charts and HTML report are in ``views.results``.
"""
from __future__ import annotations

import hashlib

import numpy as np

from attention_lens.evaluation.bootstrap import bootstrap_series, check_rounds, paired_interval, verdict
from attention_lens.evaluation.coco import (
    CATEGORIES,
    coco_eval,
    coco_matches,
    compare_objects,
    disagreement,
    metrics_of,
)
from attention_lens.evaluation.error_deltas import dap_series, errors_against, why_sentence
from attention_lens.evaluation.error_types import TYPES, classify, dap_50_95, object_outcomes, summary_of
from attention_lens.analysis.localisation import summarise
from attention_lens.evaluation.predict import predictions_for_models
from attention_lens.evaluation.ultralytics_metrics import ultralytics_metrics
from attention_lens.cache import BoundedCache
from attention_lens.data.datasets import Split

def evaluate_detections(split: Split, detections: dict[str, list[np.ndarray]], reference: str,
                        confidence: float = 0.25, rounds: int = 1000, seed_groups: dict[str, str] | None = None,
                        top_images: int = 20, localisation: dict[str, list] | None = None,
                        imgsz: int | None = None, progress=None) -> dict:
    """Every number the Evaluate view shows, from stored or fresh detections (JSON-ready).

    ``seed_groups``: model name -> variant name; where the reference's variant has several
    models (seeds), their spread of each metric is the seed noise the verdict compares with.
    ``localisation``: model name -> per-image scores (localisation.detect_and_score), summarised
    per layer, class and size under "localisation". ``progress(done, total)``: models done, before
    the first and after each (a model's numbers are most of the work, and grow with the split)."""
    if reference not in detections:
        raise ValueError(f"the reference {reference!r} is not among the evaluated models")
    rounds = check_rounds(rounds, minimum=1)
    several = len(detections) > 1
    cut, models, classified, error_series, series = {}, {}, {}, {}, {}
    if progress:
        progress(0, len(detections))
    for k, (n, d) in enumerate(detections.items()):
        key = (split.fingerprint, split.split, detections_digest(d))  # every per-model cache's key
        cut[n] = coco_matches(split, d, confidence)
        models[n] = metrics_of(coco_eval(split, d), split, cut[n])
        # Why: TIDE's error types and the AP each costs (at IoU 0.5), per model and against the reference.
        c = classified[n] = _CLASSIFIED.get_or_make(key, lambda d=d: classify(split, d))
        models[n]["errors"] = summary_of(c, split.classes).as_dict()
        models[n]["errors"]["dAP 50-95"] = _DAP_50_95.get_or_make(key, lambda d=d, c=c: dap_50_95(split, d, at_50=c))
        if imgsz is not None:  # the detections' image size: ultralytics' definition needs its letterbox
            models[n]["ultralytics"] = ultralytics_metrics(split, d, imgsz)
        if several:
            error_series[n] = _ERROR_SERIES.get_or_make((*key, rounds), lambda c=c: dap_series(c, rounds))
            series[n] = _SERIES.get_or_make((*key, rounds), lambda d=d: _bootstrap_series(split, d, rounds))
        if progress:
            progress(k + 1, len(detections))
    error_std = _error_seed_std(models, reference, seed_groups or {})
    groups = seed_groups or {}
    seed_std = _seed_std(models, reference, groups)
    against, objects, ref_outcomes = {}, None, None
    for n in detections:
        if n == reference:
            continue
        a = compare_objects(split, cut[reference], cut[n])
        objects = objects or _object_columns(split, a.objects)
        boot = paired_interval(series[reference], series[n])
        seed = bool(groups.get(n)) and groups.get(n) == groups.get(reference)  # another seed of the reference
        for metric, b in boot.items():
            b["seed std"] = seed_std.get(metric)
            b["verdict"] = verdict(b["delta"], b["low"], b["high"], seed_std.get(metric), same_variant=seed)
        errors = errors_against(error_series[reference], error_series[n], error_std, same_variant=seed)
        codes = [CODES[o["category"]] for o in a.objects]
        # the reference's outcomes depend on it alone (its found flags are the same in every comparison)
        ref_outcomes = ref_outcomes or object_outcomes(split, detections[reference], confidence,
                                                       [c in "br" for c in codes])
        outcomes = {"reference": ref_outcomes,
                    "model": object_outcomes(split, detections[n], confidence, [c in "bm" for c in codes])}
        against[n] = {"seed of the reference": seed, "errors": errors, "why": why_sentence(n, errors),
                      "outcomes": outcomes,
                      "objects": a.counts, "by class": _breakdown(a.objects, "class"),
                      "by size": _breakdown(a.objects, "size"),
                      "false positives": {"reference": int(a.fp_reference.sum()), "model": int(a.fp_model.sum())},
                      "bootstrap": boot, "images": disagreement(split, a)[:top_images],
                      # Compact, for filtering by class / size later: one letter per ground-truth
                      # object (in the order of "objects"), false positives per image.
                      "categories": "".join(CODES[o["category"]] for o in a.objects),
                      "false positives per image": {"reference": a.fp_reference.tolist(),
                                                    "model": a.fp_model.tolist()}}
    return {"data set": {"name": split.name, "split": split.split, "fingerprint": split.fingerprint,
                         "images": len(split.images), "image names": list(split.images),
                         "objects": int(sum(len(b) for b in split.boxes)),
                         "classes": split.classes, "skipped": list(split.skipped), "notes": list(split.notes)},
            "reference": reference, "confidence": confidence, "bootstrap rounds": rounds,
            "models": models, "against reference": against, "objects": objects,
            "localisation": {n: summarise(per_image) for n, per_image in (localisation or {}).items()
                             if per_image is not None and n in detections}}


#: Each model's bootstrap series (every detection's per-image matches, resampled ``rounds`` times)
#: by (split fingerprint, split, its detections, rounds): it depends on neither the reference nor
#: the confidence, so another look costs only the matching at the new confidence.
_SERIES: BoundedCache[np.ndarray] = BoundedCache(128)


def detections_digest(detections: list[np.ndarray]) -> str:
    """A hash of one model's per-image detections (their numbers, image by image)."""
    h = hashlib.sha256()
    for d in detections:
        a = np.ascontiguousarray(d, dtype=np.float64)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _bootstrap_series(split: Split, detections: list[np.ndarray], rounds: int) -> np.ndarray:
    series = bootstrap_series(coco_matches(split, detections), rounds)
    series.setflags(write=False)  # shared by every later evaluation that finds it cached
    return series


#: One letter per found/missed category, for the compact per-object strings.
CODES = {"both": "b", "only reference": "r", "only model": "m", "neither": "n"}


def _object_columns(split: Split, objects: list[dict]) -> dict:
    index = {name: i for i, name in enumerate(split.images)}
    return {"image": [index[o["image"]] for o in objects], "class": [o["class"] for o in objects],
            "size": [o["size"] for o in objects]}


def _breakdown(objects: list[dict], key: str) -> dict:
    out: dict[str, dict] = {}
    for o in objects:
        out.setdefault(o[key], {c: 0 for c in CATEGORIES})[o["category"]] += 1
    return dict(sorted(out.items()))


#: Each model's TIDE classification, its dAP over IoU 0.50:0.95 and its dAP bootstrap series, by
#: (split, its detections[, rounds]).
_CLASSIFIED: BoundedCache = BoundedCache(128)
_DAP_50_95: BoundedCache[dict] = BoundedCache(128)
_ERROR_SERIES: BoundedCache[np.ndarray] = BoundedCache(128)


def _error_seed_std(models: dict, reference: str, groups: dict[str, str]) -> dict:
    """Per error type, the spread of dAP over the reference's seeds (where two or more are selected)."""
    seeds = _reference_seeds(models, reference, groups)
    return {t: float(np.std([models[n]["errors"]["dAP"][t] for n in seeds], ddof=1)) for t in TYPES} if seeds else {}


def _seed_std(models: dict, reference: str, groups: dict[str, str]) -> dict:
    seeds = _reference_seeds(models, reference, groups)
    return {m: float(np.std([models[n][m] for n in seeds], ddof=1)) for m in ("mAP50-95", "mAP50")} if seeds else {}


def _reference_seeds(models: dict, reference: str, groups: dict[str, str]) -> list[str]:
    """The models of the reference's variant (its seeds), where two or more are evaluated; else []."""
    variant = groups.get(reference)
    seeds = [n for n, g in groups.items() if variant and g == variant and n in models]
    return seeds if len(seeds) >= 2 else []


def evaluate_models(models: dict, split: Split, reference: str, imgsz: int = 320, confidence: float = 0.25,
                    rounds: int = 1000, seed_groups: dict[str, str] | None = None, progress=None,
                    localise: bool = True, half: bool = False) -> dict:
    """Run (or reuse) each model's detections (and localisation scores) on the split, then
    ``evaluate_detections``. ``progress(done, total, what)`` is called after each image. ``half``:
    models on a GPU run the pass in float16 (``predict.predict_models``)."""
    def step(i, n):
        if progress:
            progress(i, n, f"{len(models)} models")
    both = predictions_for_models(models, split, imgsz, step, localise, half)
    detections, scores = {n: d for n, (d, _) in both.items()}, {n: s for n, (_, s) in both.items()}
    out = evaluate_detections(split, detections, reference, confidence, rounds, seed_groups,
                              localisation=scores if localise else None, imgsz=imgsz)
    out["image size"] = imgsz
    return out
