"""Evaluating detectors over a labelled split with the COCO tools, and comparing them with a reference.

The COCO tools match detections to ground truth and compute AP; this module only feeds them
numbers and reads their results: the metrics from faster-coco-eval (pycocotools' algorithm in
C++), the per-image matches from pycocotools (the reference implementation, whose per-image
results are readable from Python):

- per model: mAP50-95, mAP50, AP for small / medium / large objects (COCO's area ranges, in the
  image's own pixels), per-class AP, and P / R at a confidence threshold (IoU 0.5);
- against a reference: every ground-truth object as found by both / only the reference / only
  the model / neither (IoU 0.5, above the threshold), false positives per image, and images
  ranked by how much the two disagree;
- a paired bootstrap over images for each Δ: the same resampled images for both models, the
  AP re-accumulated from pycocotools' own per-image matches (no re-matching) by its accumulate
  rule, vectorised (``Resampler``; tested equal to pycocotools' accumulate).

Detections use ultralytics' validation settings (confidence 0.001, NMS IoU 0.7, up to 300 per
image), so mAP agrees with ``model.val()`` up to letterboxing and AP interpolation details.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from components.experiments.datasets import Split

#: COCO's size buckets, by box area in pixels.
AREAS = {"small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, 1e10)}
MAX_DETS = 300
CATEGORIES = ("both", "only reference", "only model", "neither")


class EvaluationError(ValueError):
    """A model cannot be evaluated on this split (e.g. its classes differ); the message says why."""


def class_map(model_names: dict, classes: list[str], label: str) -> dict[int, int]:
    """Model class index -> split class index, by name; every split class must be predicted."""
    by_name = {str(n): int(i) for i, n in model_names.items()}
    missing = [c for c in classes if c not in by_name]
    if missing:
        raise EvaluationError(f"{label} predicts {sorted(by_name)[:10]}, not the data set's classes {missing[:10]}")
    return {by_name[c]: j for j, c in enumerate(classes)}


def predict_split(model, split: Split, imgsz: int, label: str = "model", progress=None, localise: bool = False):
    """(per image (n, 6): x1, y1, x2, y2, score, split class index, in the image's own pixels;
    per image localisation scores when ``localise``, else None). Localisation comes from the
    same forwards (see localisation.detect_and_score)."""
    return predict_models({label: model}, split, imgsz, progress, localise)[label]


def predict_models(models: dict, split: Split, imgsz: int, progress=None, localise: bool = False) -> dict:
    """``predict_split`` for several models (name -> model) in one pass over the split: each
    image is read and letterboxed once (per stride), then every model runs on it.
    ``progress(done, total)`` after each image."""
    from components.analysis.images import load_image
    from components.analysis.inference import detect, letterbox, model_stride
    from components.analysis.localisation import detect_and_score, groups_of
    from components.analysis.onnx_backend import REGISTRY

    if not split.has_pixels:
        raise EvaluationError("this split is stored as numbers only; its images are needed to run a model")
    by_name = {}  # model -> {model class name: split class index}
    for label, model in models.items():
        names = getattr(model, "names", {}) or {}
        mapping = class_map(names, split.classes, label)
        by_name[label] = {n: mapping[int(i)] for i, n in names.items() if int(i) in mapping}
    REGISTRY.prepare(list(models.values()), wait=True)  # one backend for the whole split (export first, if it can)
    out = {label: ([], [] if localise else None) for label in models}
    for i, path in enumerate(split.paths):
        rgb, boxed = load_image(path), {}
        groups = groups_of(split.boxes[i], split.classes, size_of) if localise else None
        for label, model in models.items():
            stride = model_stride(model)
            if stride not in boxed:
                boxed[stride] = letterbox(rgb, imgsz, stride)
            x = boxed[stride]
            dets, scores = out[label]
            if localise:
                det, s = detect_and_score(model, rgb, groups, split.boxes[i], imgsz=imgsz, max_det=MAX_DETS, x=x)
                scores.append(s)
            else:
                det = detect(model, rgb, conf=0.001, iou=0.7, imgsz=imgsz, max_det=MAX_DETS, x=x)
            dets.append(_in_split_classes(det, by_name[label]))
        if progress:
            progress(i + 1, len(split.paths))
    return out


def _in_split_classes(det, by_name: dict) -> np.ndarray:
    """(n, 6) rows of the detections whose class the split has, with the split's class index."""
    keep = [k for k, c in enumerate(det.classes) if c in by_name]
    if not keep:
        return np.zeros((0, 6))
    cls = np.array([by_name[det.classes[k]] for k in keep], dtype=np.float64)
    return np.column_stack([det.boxes[keep].astype(np.float64), det.scores[keep].astype(np.float64), cls])


# ----------------------------------------------------------------------------- pycocotools
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
class Against:
    """One model against the reference, at one confidence threshold."""
    objects: list[dict]  # per ground-truth object: image, class, size, category
    counts: dict  # category -> count (overall)
    fp_reference: np.ndarray  # false positives per image
    fp_model: np.ndarray


def compare_objects(split: Split, ref_thr, model_thr) -> Against:
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
    return Against(objects, counts, ref_fp, mod_fp)


def disagreement(split: Split, against: Against) -> list[dict]:
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


# ----------------------------------------------------------------------------- bootstrap
class Resampler:
    """(mAP50-95, mAP50) over any multiset of a split's images, from pycocotools' own per-image
    matches (``evalImgs``: no re-matching), accumulated the way ``COCOeval.accumulate`` does at
    area "all" and the largest maxDets: per class, the chosen images' detections sorted by score
    (stable, in the order the images were drawn), cumulative true and false positives per IoU
    threshold, precision made monotone from the right, read at the 101 recall thresholds,
    classes without ground truth left out. Equal to pycocotools' accumulate
    (tests/analysis/test_evaluation.py); ~13 ms a round there on BCCD at confidence 0.001, ~1 ms here.

    Only the true positives are visited. Recall rises only at a true positive, so the first point
    at or above a recall threshold is the k-th true positive for the smallest k with k / n_gt >= it;
    and every point after a true positive has at most the precision of the true positive before
    it (a false positive lowers it, an ignored detection repeats it), so the precision made
    monotone at a true positive is the largest precision of the true positives from there on.
    At the k-th true positive, precision is k / (detections counted so far), computed as
    pycocotools computes it (the same floats)."""

    def __init__(self, e):
        k_n, a_n, i_n = len(e.params.catIds), len(e.params.areaRng), len(e.params.imgIds)
        self.rec_thrs = np.asarray(e.params.recThrs)
        self.t_n = len(e.params.iouThrs)
        self.classes = []
        for k in range(k_n):
            scores, matched, ignored, starts, n_gt = [], [], [], [0], np.zeros(i_n, dtype=np.int64)
            for i in range(i_n):
                entry = e.evalImgs[k * a_n * i_n + i]  # area "all" comes first
                if entry is None:
                    starts.append(starts[-1])
                    continue
                scores.append(np.asarray(entry["dtScores"][:MAX_DETS], dtype=float))
                matched.append(np.asarray(entry["dtMatches"])[:, :MAX_DETS] > 0)
                ignored.append(np.asarray(entry["dtIgnore"])[:, :MAX_DETS].astype(bool))
                starts.append(starts[-1] + len(scores[-1]))
                n_gt[i] = int((~np.asarray(entry["gtIgnore"], dtype=bool)).sum())
            m = np.concatenate(matched, axis=1) if matched else np.zeros((self.t_n, 0), bool)
            ig = np.concatenate(ignored, axis=1) if ignored else np.zeros((self.t_n, 0), bool)
            scores = np.concatenate(scores) if scores else np.zeros(0)
            # Each score's rank, highest first (equal scores share one): a stable sort of small
            # integers orders a round as the stable sort of the scores does, in less time.
            rank = np.unique(-scores, return_inverse=True)[1].astype(np.int32).reshape(-1)
            # Per detection (rows, so a round gathers whole rows) and IoU threshold: a true
            # positive; and, only where some detection is ignored, which ones count at all.
            self.classes.append((rank, np.ascontiguousarray((m & ~ig).T),
                                 np.ascontiguousarray((~ig).T) if ig.any() else None, np.asarray(starts), n_gt))

    def __call__(self, idx: np.ndarray) -> tuple[float, float]:
        precision = []
        for rank, is_tp, counted, starts, n_gt in self.classes:
            npig = int(n_gt[idx].sum())
            if npig == 0:
                continue  # pycocotools leaves this class at -1: not averaged
            # The chosen images' detections in idx order (as pycocotools concatenates them), then by score.
            lo, counts = starts[idx], starts[idx + 1] - starts[idx]
            ends = np.cumsum(counts)
            sel = np.repeat(lo - ends + counts, counts) + np.arange(ends[-1] if len(ends) else 0)
            order = sel[np.argsort(rank[sel], kind="stable")]
            # Every true positive: its IoU threshold and its place among the sorted detections.
            t_of, place = np.nonzero(is_tp[order].T)
            per_t = np.bincount(t_of, minlength=self.t_n)
            q = np.zeros((self.t_n, len(self.rec_thrs)))
            if len(place):
                kth = np.arange(1, len(place) + 1) - np.repeat(np.cumsum(per_t) - per_t, per_t)
                so_far = place + 1 if counted is None else np.cumsum(counted[order], axis=0)[place, t_of]
                best = np.zeros((self.t_n, per_t.max()))  # (T, k-th true positive); 0 past a row's last
                best[t_of, kth - 1] = kth / (so_far + np.spacing(1))
                best = np.maximum.accumulate(best[:, ::-1], axis=1)[:, ::-1]
                at = np.searchsorted(np.arange(1, best.shape[1] + 1) / npig, self.rec_thrs, side="left")
                q = np.where(at[None, :] < per_t[:, None], best[:, np.minimum(at, best.shape[1] - 1)], 0.0)
            precision.append(q)
        if not precision:
            return float("nan"), float("nan")
        p = np.stack(precision, axis=-1)  # (T, R, classes with ground truth)
        return float(p.mean()), float(p[0].mean())


def bootstrap_series(e, n: int = 1000, seed: int = 0) -> np.ndarray:
    """(n + 1, 2): (mAP50-95, mAP50) on the whole split, then on ``n`` resamples of its images
    with replacement. The resamples depend only on (seed, number of images), so two models'
    series drawn with the same seed are paired image for image."""
    i_n = len(e.params.imgIds)
    rng = np.random.default_rng(seed)
    resampled = Resampler(e)
    rows = [resampled(np.arange(i_n))] + [resampled(rng.integers(0, i_n, i_n)) for _ in range(n)]
    return np.asarray(rows, dtype=float)


def paired_bootstrap(e_ref, e_model, n: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Δ (model - reference) of mAP50-95 and mAP50 with a percentile interval from resampling
    images with replacement, the same images for both models in each round."""
    return paired_interval(bootstrap_series(e_ref, n, seed), bootstrap_series(e_model, n, seed), level)


def paired_interval(ref_series: np.ndarray, model_series: np.ndarray, level: float = 0.95) -> dict:
    """``paired_bootstrap`` from the two models' ``bootstrap_series``, drawn with the same n and seed."""
    n = len(ref_series) - 1
    diff = model_series - ref_series
    base, deltas = diff[0], diff[1:]
    lo, hi = np.nanpercentile(deltas, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return {m: {"delta": float(base[j]), "low": float(lo[j]), "high": float(hi[j]), "rounds": n, "level": level}
            for j, m in enumerate(("mAP50-95", "mAP50"))}


def verdict(delta: float, low: float, high: float, seed_std: float | None, sigmas: float = 2.0) -> str:
    """Plain words: is the difference larger than image sampling noise and than seed noise?"""
    beyond_images = low > 0 or high < 0
    if not beyond_images:
        return "within image sampling noise"
    if seed_std is None or not np.isfinite(seed_std):
        return "beyond image sampling noise (seed noise unknown)"
    return "larger than both" if abs(delta) >= sigmas * seed_std else "within seed noise"


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
