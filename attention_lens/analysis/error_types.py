"""Why a model's AP falls short: TIDE's error types and the AP each one costs.

TIDE (Bolya, Foley, Hays, Hoffman: "TIDE: A General Toolbox for Identifying Object Detection
Errors", ECCV 2020) sorts every false positive and every missed object into one type, then asks
of each type: how much AP would fixing all of it add? Its definitions, at the foreground IoU
``FG`` (0.5) and background IoU ``BG`` (0.1), checked in TIDE's order for each false positive:

1. **localisation**: its best IoU with an object of its own class lies in [BG, FG];
   fixed by moving the box onto that object (it becomes a true positive, unless the object was
   already found or a higher-scoring detection claims the same fix, when it is dropped);
2. **classification**: IoU >= FG with an object of another class; fixed by correcting the class
   (same rule for a true positive or a drop);
3. **duplicate**: IoU >= FG with an object of its class that a higher-scoring detection already
   found; fixed by dropping it;
4. **background**: IoU <= BG with every object; fixed by dropping it;
5. **both**: anything else (wrong class and poorly placed); fixed by dropping it;
6. **missed**: an object no detection found and no localisation or classification fix claims;
   fixed by removing it from the objects to find.

dAP of a type = AP with that type fixed - AP (never below 0), each type fixed alone from the
original detections. AP is COCO's 101-point interpolated AP at IoU FG, averaged over classes,
after TIDE's own matching: detections by score, each to its best unmatched object of the same
class with IoU >= FG, at most ``MAX_DETS`` an image. This is a reimplementation from the paper's
definitions, compared with the ``tidecv`` package on the zoo (see the session note of issue 36); it
does not reproduce tidecv's reported bug of "missed" errors on predictions equal to their ground
truth (a prediction equal to an object is a true positive here, tested).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attention_lens.experiments.datasets import Split

FG, BG = 0.5, 0.1
#: TIDE's keeps at most 100 detections an image, as COCO's AP does.
MAX_DETS = 100
TYPES = ("classification", "localisation", "both", "duplicate", "background", "missed")


@dataclass
class ErrorAnalysis:
    """One model's errors on a split: the AP they are measured from, how many of each type and
    the AP fixing each type would add (each a fraction, 0-1)."""
    ap: float
    counts: dict[str, int] = field(default_factory=dict)
    dap: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"AP50": self.ap, "counts": dict(self.counts), "dAP": dict(self.dap)}


@dataclass
class _Point:
    """One detection as AP sees it, and what each fix makes of it."""
    cls: int
    score: float
    correct: bool
    kind: str | None = None  # its error type, for a false positive
    fixed_cls: int | None = None  # after a fix that makes it a true positive
    claims: tuple | None = None  # (image, object) its fix would find


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-12)


def error_analysis(split: Split, dets: list[np.ndarray], fg: float = FG, bg: float = BG) -> ErrorAnalysis:
    """TIDE's error types and their dAP for one model's detections (per image (n, 6): x1, y1, x2,
    y2, score, split class index; image pixels)."""
    points: list[_Point] = []
    n_gt = np.zeros(len(split.classes), dtype=int)
    missed: list[int] = []  # class of each missed object
    best_claim: dict[tuple, tuple[float, int]] = {}  # object -> (score, point) of the best fix claiming it
    for i, (gt, det) in enumerate(zip(split.boxes, dets)):
        gt = np.asarray(gt, dtype=np.float64).reshape(-1, 5)
        det = np.asarray(det, dtype=np.float64).reshape(-1, 6)
        det = det[np.argsort(-det[:, 4], kind="stable")][:MAX_DETS]
        h, w = split.sizes[i]
        det[:, :4] = np.clip(det[:, :4], 0, [w, h, w, h])  # as COCO's numbers see them (the pass keeps them unclipped)
        n_gt += np.bincount(gt[:, 0].astype(int), minlength=len(split.classes))
        iou = box_iou(det[:, :4], gt[:, 1:5])
        same = det[:, 5:6].astype(int) == gt[:, 0].astype(int)[None, :]
        found = np.zeros(len(gt), dtype=bool)
        free = np.where(same, iou, 0.0)
        first = len(points)
        for k in range(len(det)):  # by score: each detection takes its best unmatched object
            j = int(np.argmax(free[k])) if len(gt) else -1
            hit = j >= 0 and free[k, j] >= fg
            if hit:
                found[j] = True
                free[:, j] = 0.0
            points.append(_Point(int(det[k, 5]), float(det[k, 4]), bool(hit)))
        claimed = np.zeros(len(gt), dtype=bool)
        for k in range(len(det)):
            p = points[first + k]
            if p.correct:
                continue
            if not len(gt):
                p.kind = "background"
                continue
            own, other = np.where(same[k], iou[k], 0.0), np.where(~same[k], iou[k], 0.0)
            j = int(np.argmax(own))
            if bg <= own[j] <= fg:
                p.kind = "localisation"
                _claim(p, i, j, found, claimed, best_claim, first + k, p.cls)
                continue
            j = int(np.argmax(other))
            if other[j] >= fg:
                p.kind = "classification"
                _claim(p, i, j, found, claimed, best_claim, first + k, int(gt[j, 0]))
                continue
            if np.where(found, own, 0.0).max() >= fg:
                p.kind = "duplicate"
            elif iou[k].max() <= bg:
                p.kind = "background"
            else:
                p.kind = "both"
        missed += [int(gt[j, 0]) for j in range(len(gt)) if not found[j] and not claimed[j]]
    winners = {index for _, index in best_claim.values()}
    base = _map(points, n_gt)
    counts = {t: sum(p.kind == t for p in points) for t in TYPES[:-1]}
    counts["missed"] = len(missed)
    dap = {}
    for t in TYPES[:-1]:
        fixed = []
        for index, p in enumerate(points):
            if p.kind != t:
                fixed.append(p)
            elif p.claims is not None and index in winners:
                fixed.append(_Point(p.fixed_cls, p.score, True))
            # every other error of this type is dropped
        dap[t] = max(_map(fixed, n_gt) - base, 0.0)
    fewer = n_gt - np.bincount(np.asarray(missed, dtype=int), minlength=len(n_gt))
    dap["missed"] = max(_map(points, fewer) - base, 0.0)
    return ErrorAnalysis(base, counts, dap)


def _claim(p: _Point, image: int, j: int, found, claimed, best_claim: dict, index: int, cls: int) -> None:
    """A localisation or classification fix targets object j: where that object is still to be
    found, the highest-scoring such detection is the one the fix turns into its true positive."""
    if found[j]:
        return
    claimed[j] = True
    p.claims, p.fixed_cls = (image, j), cls
    best = best_claim.get((image, j))
    if best is None or p.score > best[0]:
        best_claim[(image, j)] = (p.score, index)


def _map(points: list[_Point], n_gt: np.ndarray) -> float:
    """COCO's 101-point AP per class, averaged over the classes that have objects or detections."""
    by_class: dict[int, list[_Point]] = {}
    for p in points:
        by_class.setdefault(p.cls, []).append(p)
    aps = [_ap(by_class.get(c, []), int(n_gt[c])) for c in range(len(n_gt)) if n_gt[c] > 0 or c in by_class]
    return float(np.mean(aps)) if aps else 0.0


def _ap(points: list[_Point], n_gt: int) -> float:
    if n_gt <= 0:
        return 0.0
    order = sorted(points, key=lambda p: -p.score)
    tp = np.cumsum([p.correct for p in order])
    fp = np.cumsum([not p.correct for p in order])
    if not len(order):
        return 0.0
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / n_gt
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope: best precision at any later recall
    thresholds = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, thresholds, side="left")
    return float(np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0).mean())
