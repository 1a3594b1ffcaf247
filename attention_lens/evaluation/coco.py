"""Evaluating detectors over a labelled split with the COCO tools, and comparing them with a reference.

The COCO tools match detections to ground truth and compute AP; this module only feeds them
numbers and reads their results: the metrics from faster-coco-eval (pycocotools' algorithm in
C++), the per-image matches from pycocotools (the reference implementation, whose per-image
results are readable from Python):

- per model: mAP50-95, mAP50, AP for small / medium / large objects (COCO's area ranges, in the
  image's own pixels), per-class AP, and P / R at a confidence threshold (IoU 0.5);
- against a reference: every ground-truth object as found by both / only the reference / only
  the model / neither (IoU 0.5, above the threshold), false positives per image, and images
  ranked by how much the two disagree (the bootstrap of each Δ is in bootstrap.py).

The detections come from ``predict`` (made as ultralytics' validator makes them); from them come
both definitions of mAP: COCO's here and ultralytics' own (``ultralytics_metrics``), which equals
``yolo val``.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from attention_lens.data.datasets import Split

#: COCO's size buckets, by box area in pixels.
AREAS = {"small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, 1e10)}
MAX_DETS = 300
CATEGORIES = ("both", "only reference", "only model", "neither")


class EvaluationError(ValueError):
    """A model cannot be evaluated on this split (e.g. its classes differ); the message says why."""


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _dataset(split: Split, dets: list[np.ndarray] | None = None, min_score: float = 0.0) -> dict:
    """The split's ground truth (``dets`` None) or detections scoring >= min_score, as a COCO dict."""
    images = [{"id": i + 1, "height": h, "width": w} for i, (h, w) in enumerate(split.sizes)]
    cats = [{"id": k + 1, "name": c} for k, c in enumerate(split.classes)]
    anns = []
    for i, rows in enumerate(split.boxes if dets is None else dets):
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5 if dets is None else 6)
        if dets is not None:
            rows = rows[rows[:, 4] >= min_score]
        xyxy, cls = (rows[:, 1:5], rows[:, 0]) if dets is None else (rows[:, :4], rows[:, 5])
        if dets is not None:  # unclipped from the pass: clipped to the image, as ultralytics' COCO JSON has them
            h, w = split.sizes[i]
            xyxy = np.clip(xyxy, 0, [w, h, w, h])
        wh = xyxy[:, 2:] - xyxy[:, :2]
        scores = rows[:, 4].tolist() if dets is not None else [None] * len(rows)
        # Python floats from numpy's float64 arithmetic: the same values, without a per-number loop.
        for (x1, y1), (w, h), area, c, score in zip(xyxy[:, :2].tolist(), wh.tolist(), (wh[:, 0] * wh[:, 1]).tolist(),
                                                    (cls.astype(np.int64) + 1).tolist(), scores):
            ann = {"id": len(anns) + 1, "image_id": i + 1, "bbox": [x1, y1, w, h], "area": area, "iscrowd": 0,
                   "category_id": c}
            if score is not None:
                ann["score"] = score
            anns.append(ann)
    return {"images": images, "categories": cats, "annotations": anns}


def _indexed(coco_class, dataset: dict):
    c = coco_class()
    c.dataset = dataset
    with _quiet():
        c.createIndex()
    return c


def _areas(params, areas: dict) -> None:
    params.maxDets = [1, 10, MAX_DETS]
    params.areaRng = [[0, 1e10]] + [list(r) for r in areas.values()]
    params.areaRngLbl = ["all", *areas]


def coco_eval(split: Split, dets: list[np.ndarray], min_score: float = 0.0):
    """The metrics (``eval["precision"]``, (T, R, K, A, M)) for detections scoring >= min_score,
    at the areas "all", small, medium, large: faster-coco-eval's COCOeval, pycocotools'
    algorithm in C++ (equal to pycocotools to 1e-15 on the zoo's BCCD detections, tested; 12x
    faster at confidence 0.001, where pycocotools' per-image Python loop was most of a pass)."""
    from faster_coco_eval import COCO, COCOeval_faster

    e = COCOeval_faster(_indexed(COCO, _dataset(split)), _indexed(COCO, _dataset(split, dets, min_score)), "bbox",
                        print_function=lambda *_: None)
    _areas(e.params, AREAS)
    e.evaluate()
    e.accumulate()
    return e


def coco_matches(split: Split, dets: list[np.ndarray], min_score: float = 0.0):
    """pycocotools' own per-image matches (``evalImgs``) at area "all" for detections scoring
    >= min_score: what the counts, the found objects, the one-image outcomes and the bootstrap
    read (faster-coco-eval keeps them in C++, out of reach)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    e = COCOeval(_indexed(COCO, _dataset(split)), _indexed(COCO, _dataset(split, dets, min_score)), "bbox")
    _areas(e.params, {})
    with _quiet():
        e.evaluate()
    return e


def _ap(precision: np.ndarray) -> float:
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else float("nan")


def metrics_of(e, split: Split, at_threshold=None) -> dict:
    """mAP50-95, mAP50, AP per size bucket and per class from ``coco_eval``; P and R at IoU 0.5
    from ``at_threshold``, the ``coco_matches`` of the same detections cut at a confidence."""
    p = e.eval["precision"]  # (T, R, K, A, M)
    out = {"mAP50-95": _ap(p[:, :, :, 0, -1]), "mAP50": _ap(p[0, :, :, 0, -1])}
    for a, name in enumerate(AREAS, start=1):
        out[f"AP {name}"] = _ap(p[:, :, :, a, -1])
    out["per_class"] = {c: {"mAP50-95": _ap(p[:, :, k, 0, -1]), "mAP50": _ap(p[0, :, k, 0, -1])}
                        for k, c in enumerate(split.classes)}
    if at_threshold is not None:
        tp, fp, n_gt = _counts(at_threshold)
        out["P"] = tp / (tp + fp) if tp + fp else float("nan")
        out["R"] = tp / n_gt if n_gt else float("nan")
    return out


def _entries(e, area: int = 0):
    """(category index, image index, entry) for pycocotools' per-image results at one area range."""
    k_n, a_n, i_n = len(e.params.catIds), len(e.params.areaRng), len(e.params.imgIds)
    for k in range(k_n):
        for i in range(i_n):
            entry = e.evalImgs[k * a_n * i_n + area * i_n + i]
            if entry is not None:
                yield k, i, entry


def _counts(e) -> tuple[int, int, int]:
    tp = fp = n_gt = 0
    for _, _, entry in _entries(e):
        matched, ignored = entry["dtMatches"][0] > 0, entry["dtIgnore"][0].astype(bool)
        tp += int((matched & ~ignored).sum())
        fp += int((~matched & ~ignored).sum())
        n_gt += int((~np.asarray(entry["gtIgnore"], dtype=bool)).sum())
    return tp, fp, n_gt


def found_objects(e) -> tuple[dict[int, bool], np.ndarray]:
    """Ground-truth id -> matched at IoU 0.5, and false positives per image."""
    found, fps = {}, np.zeros(len(e.params.imgIds), dtype=int)
    for _, i, entry in _entries(e):
        for gid, m in zip(entry["gtIds"], entry["gtMatches"][0]):
            found[int(gid)] = bool(m > 0)
        fps[i] += int(((entry["dtMatches"][0] == 0) & ~entry["dtIgnore"][0].astype(bool)).sum())
    return found, fps


def size_of(area: float) -> str:
    return next(name for name, (lo, hi) in AREAS.items() if lo <= area < hi)


@dataclass
class ObjectComparison:
    """One model against the reference, at one confidence threshold."""
    objects: list[dict]  # per ground-truth object: image, class, size, category
    counts: dict  # category -> count (overall)
    fp_reference: np.ndarray  # false positives per image
    fp_model: np.ndarray


def compare_objects(split: Split, ref_thr, model_thr) -> ObjectComparison:
    ref_found, ref_fp = found_objects(ref_thr)
    mod_found, mod_fp = found_objects(model_thr)
    gt = ref_thr.cocoGt
    objects = []
    for gid, ann in sorted(gt.anns.items()):
        r, m = ref_found.get(gid, False), mod_found.get(gid, False)
        category = CATEGORIES[0] if r and m else CATEGORIES[1] if r else CATEGORIES[2] if m else CATEGORIES[3]
        objects.append({"image": split.images[ann["image_id"] - 1], "class": split.classes[ann["category_id"] - 1],
                        "size": size_of(ann["area"]), "category": category})
    counts = {c: sum(o["category"] == c for o in objects) for c in CATEGORIES}
    return ObjectComparison(objects, counts, ref_fp, mod_fp)


def disagreement(split: Split, against: ObjectComparison) -> list[dict]:
    """Images ranked by disagreement: objects found by only one of the two, plus the FP difference."""
    rows = []
    for i, name in enumerate(split.images):
        mine = [o for o in against.objects if o["image"] == name]
        only_ref = sum(o["category"] == "only reference" for o in mine)
        only_model = sum(o["category"] == "only model" for o in mine)
        fp_delta = int(against.fp_model[i] - against.fp_reference[i])
        rows.append({"image": name, "only reference": only_ref, "only model": only_model,
                     "FP added": max(fp_delta, 0), "FP removed": max(-fp_delta, 0),
                     "score": only_ref + only_model + abs(fp_delta)})
    return sorted(rows, key=lambda r: (-r["score"], r["image"]))


# ----------------------------------------------------------------------------- one image
def image_outcomes(split: Split, index: int, dets: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """For one image: (per ground-truth box: found; per detection scoring >= ``confidence``, in
    order: a true positive), from pycocotools' own matches at IoU 0.5, as the counts use them."""
    one = Split(split.name, split.split, split.classes, [split.images[index]], [split.sizes[index]],
                [split.boxes[index]], split.fingerprint)
    e = coco_matches(one, [dets], confidence)
    kept = dets[dets[:, 4] >= confidence] if len(dets) else dets
    found = np.zeros(len(split.boxes[index]), dtype=bool)
    true = np.zeros(len(kept), dtype=bool)
    for _, _, entry in _entries(e):
        for gid, m in zip(entry["gtIds"], entry["gtMatches"][0]):
            found[int(gid) - 1] = m > 0
        for did, m in zip(entry["dtIds"], entry["dtMatches"][0]):
            true[int(did) - 1] = m > 0
    return found, true
