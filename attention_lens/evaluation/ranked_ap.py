"""COCO's 101-point interpolated AP of detections already ranked by score, where each image may
count several times (a bootstrap resample draws an image as often as it likes: its detections and
objects then count that often).

A *plan* is what AP reads of one model's classified detections (``error_types.Classified.plan``):
per class, the image index of each of its detections in rank order and whether it is a true
positive, and the objects to find per image and class ((images, classes) counts). ``class_aps``
computes one weighting; ``class_aps_of_rounds`` many at once (rows of weights), to the same bits.
"""
from __future__ import annotations

import numpy as np

#: COCO's 101 recall points.
RECALLS = np.linspace(0, 1, 101)


def ap(weights: np.ndarray, correct: np.ndarray, to_find: float) -> float:
    """COCO's 101-point interpolated AP of detections already ranked by score, each counted
    ``weights`` times (a resampled image's detections count as often as the image is drawn)."""
    if to_find <= 0 or not len(weights):
        return 0.0
    tp = np.cumsum(weights * correct)
    fp = np.cumsum(weights * ~correct)
    precision = tp / np.maximum(tp + fp, 1e-12)
    recall = tp / to_find
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope: best precision at any later recall
    idx = np.searchsorted(recall, RECALLS, side="left")
    return float(precision[idx[idx < len(precision)]].sum() / len(RECALLS))


def mean_ap(aps: np.ndarray) -> float:
    """The mean over the classes that count (not NaN); 0 when none does."""
    counted = aps[~np.isnan(aps)]
    return float(counted.mean()) if len(counted) else 0.0


def class_aps_of_rounds(plan: tuple[list, np.ndarray], weights: np.ndarray) -> np.ndarray:
    """(rounds, classes): ``class_aps`` for each row of ``weights`` (rounds x images) at once."""
    per_class, objects = plan
    to_find = weights @ objects  # (rounds, classes)
    aps = np.full(to_find.shape, np.nan)
    for k, (image, correct) in enumerate(per_class):
        # Past a class's last true positive in rank order the precision only falls (the same true
        # positives over more detections): no recall point lands there and the envelope is already
        # higher before it, so the rounds skip that tail (the same APs to the bit; at conf 0.001
        # most detections are in it).
        tps = np.flatnonzero(correct)
        head = tps[-1] + 1 if len(tps) else 0
        point_w = weights[:, image[:head]]  # (rounds, detections of class k up to its last true positive)
        drawn = weights[:, np.unique(image)].any(axis=1)
        counts = (to_find[:, k] > 0) | drawn  # a class with neither objects nor detections does not count
        aps[counts, k] = ap_of_rounds(point_w[counts], correct[:head], to_find[counts, k])
    return aps


def ap_of_rounds(weights: np.ndarray, correct: np.ndarray, to_find: np.ndarray) -> np.ndarray:
    """``ap`` for each row of ``weights`` (rounds x detections ranked by score): the same sums,
    taken along each row."""
    out = np.zeros(len(weights))
    if not weights.shape[1]:
        return out
    tp = np.cumsum(weights * correct, axis=1)
    # tp + fp is the running count of detections: whole numbers (the weights are draw counts), so
    # one cumulative sum gives it exactly.
    precision = tp / np.maximum(np.cumsum(weights, axis=1), 1e-12)
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]  # the envelope, as ``ap``
    for r in np.flatnonzero(to_find > 0):
        idx = np.searchsorted(tp[r] / to_find[r], RECALLS, side="left")
        out[r] = precision[r, idx[idx < precision.shape[1]]].sum() / len(RECALLS)
    return out


def mean_aps(aps: np.ndarray) -> np.ndarray:
    """``mean_ap`` of each row (rounds x classes)."""
    counted = ~np.isnan(aps)
    totals = np.where(counted, aps, 0.0).sum(axis=1)
    n = counted.sum(axis=1)
    return np.where(n > 0, totals / np.maximum(n, 1), 0.0)


def class_aps(plan: tuple[list, np.ndarray], weights: np.ndarray | None) -> np.ndarray:
    """Each class's AP50 of a ``Classified.plan`` over the images weighted by ``weights`` (None:
    each once); NaN for a class with neither objects nor detections. A detection of an image not
    drawn weighs 0 and leaves every precision and recall as it was, so it need not be removed."""
    per_class, objects = plan
    w = np.ones(len(objects)) if weights is None else np.asarray(weights, dtype=float)
    to_find = w @ objects
    aps = np.full(objects.shape[1], np.nan)
    for k, (image, correct) in enumerate(per_class):
        point_w = w[image]
        if to_find[k] > 0 or point_w.any():  # a class with neither objects nor detections does not count
            aps[k] = ap(point_w, correct, to_find[k])
    return aps
