"""Constructed COCO cases shared by the evaluation and bootstrap tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attention_lens.data.datasets import Split

STORED = Path(__file__).resolve().parents[1] / "weights" / "evaluation" / "bccd-test.json.gz"


def split_of(boxes_per_image, classes=("a", "b"), size=(400, 400)):
    boxes = [np.asarray(b, dtype=float).reshape(-1, 5) for b in boxes_per_image]
    return Split("t", "test", list(classes), [f"{i}.jpg" for i in range(len(boxes))], [size] * len(boxes), boxes)


def dets_from(gt_rows, score=0.9, shift=0.0):
    """Detections equal to ground-truth rows (class, x1, y1, x2, y2), optionally shifted in x."""
    return np.array([[r[1] + shift, r[2], r[3] + shift, r[4], score, r[0]] for r in gt_rows], dtype=float).reshape(-1, 6)


SMALL_A, BIG_A = (0, 0, 0, 20, 20), (0, 100, 100, 300, 300)
SMALL_B, MID_B = (1, 40, 0, 60, 20), (1, 0, 100, 50, 150)


def disagreeing_results():
    """An evaluation of "model" against "ref" with one object of each kind of agreement. Image 0: a
    small "a" (both find it), a big "a" only the model finds, a small "b" only the reference finds.
    Image 1: a medium "b" nobody finds; the model adds two false positives."""
    from attention_lens.evaluation.report import evaluate_detections

    split = split_of([[SMALL_A, BIG_A, SMALL_B], [MID_B]])
    ghost = np.array([[300, 300, 350, 350, 0.9, 0], [300, 0, 350, 50, 0.9, 1]], dtype=float)
    ref = [np.vstack([dets_from([SMALL_A, SMALL_B])]), np.zeros((0, 6))]
    model = [np.vstack([dets_from([SMALL_A, BIG_A])]), ghost]
    return evaluate_detections(split, {"ref": ref, "model": model}, "ref", rounds=20)


def noise_split(folder: Path, classes, shapes, seed: int = 0) -> Split:
    """A split of noise images, one of each (h, w) in ``shapes`` written to ``folder``, no objects:
    what a model detects there is all there is to compare."""
    import cv2

    rng = np.random.default_rng(seed)
    paths = [Path(folder) / f"im{k}.png" for k in range(len(shapes))]
    for path, (h, w) in zip(paths, shapes):
        cv2.imwrite(str(path), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return Split("noise", "test", list(classes), [p.name for p in paths], [tuple(s) for s in shapes],
                 [np.zeros((0, 5))] * len(shapes), paths=paths)


def found_or_missed(rng, images: int = 40, p_ref: float = 0.5, p_model: float = 0.7):
    """A draw from a synthetic population with a known difference: each image holds one object,
    found exactly (one score) by the reference with probability ``p_ref`` and by the model with
    ``p_model``, independently, nothing else detected. (split, reference detections, model's)."""
    gt, ref, model = [], [], []
    for _ in range(images):
        rows = [(0, 10, 10, 110, 110)]
        gt.append(rows)
        ref.append(dets_from(rows) if rng.random() < p_ref else np.zeros((0, 6)))
        model.append(dets_from(rows) if rng.random() < p_model else np.zeros((0, 6)))
    return split_of(gt, classes=("a",)), ref, model


def pycocotools_resampled(e, idx):
    """The independent reference: pycocotools' own accumulate over the images ``idx`` (with
    repeats), at area "all" and the largest maxDets, from the per-image matches it made."""
    import copy

    k_n, a_n, i_n = len(e.params.catIds), len(e.params.areaRng), len(e.params.imgIds)
    r, p = copy.copy(e), copy.copy(e.params)
    p.imgIds = [e.params.imgIds[i] for i in idx]
    p.areaRng, p.areaRngLbl, p.maxDets = [e.params.areaRng[0]], ["all"], [e.params.maxDets[-1]]
    r.params = r._paramsEval = p
    r.evalImgs = [e.evalImgs[k * a_n * i_n + i] for k in range(k_n) for i in idx]
    r.accumulate()
    prec = r.eval["precision"][:, :, :, 0, 0]
    valid, valid50 = prec[prec > -1], prec[0][prec[0] > -1]
    return (float(valid.mean()) if valid.size else float("nan"), float(valid50.mean()) if valid50.size else float("nan"))


def stored_bccd():
    """(split, image size, detections, localisation) stored with the zoo for the BCCD test split."""
    from attention_lens.evaluation.stored import load_detections

    if not STORED.is_file():
        pytest.skip("the zoo's stored detections are not here")
    return load_detections(STORED)

