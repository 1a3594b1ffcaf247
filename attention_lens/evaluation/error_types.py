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
import torch
from torchvision.ops import box_iou as torch_box_iou

from attention_lens.data.datasets import Split
from attention_lens.evaluation.ranked_ap import class_aps, mean_ap

FG, BG = 0.5, 0.1
#: TIDE's keeps at most 100 detections an image, as COCO's AP does.
MAX_DETS = 100
TYPES = ("classification", "localisation", "both", "duplicate", "background", "missed")
#: COCO's object sizes by box area in image pixels (as the Evaluate view's size filter).
SIZES = ("small", "medium", "large")
_AREA_EDGES = (32**2, 96**2)


def _size(area) -> np.ndarray:
    return np.searchsorted(_AREA_EDGES, np.asarray(area, dtype=float), side="right")


@dataclass
class ErrorAnalysis:
    """One model's errors on a split: the AP they are measured from, how many of each type and
    the AP fixing each type would add (each a fraction, 0-1), overall and per class."""
    ap: float
    counts: dict[str, int] = field(default_factory=dict)
    dap: dict[str, float] = field(default_factory=dict)
    dap_by_class: dict[str, dict[str, float]] = field(default_factory=dict)
    dap_by_size: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"AP50": self.ap, "counts": dict(self.counts), "dAP": dict(self.dap),
                "dAP by class": {c: dict(d) for c, d in self.dap_by_class.items()},
                "dAP by size": {k: dict(d) for k, d in self.dap_by_size.items()}}


@dataclass
class Classified:
    """Every detection's place in TIDE's accounting, as arrays (one row a detection, in the order
    AP ranks them), and the objects per image and class: what AP needs for the whole split or for
    any resample of its images (a weight per image)."""
    image: np.ndarray  # (n,) image index
    cls: np.ndarray  # (n,) class index
    correct: np.ndarray  # (n,) a true positive
    kind: np.ndarray  # (n,) TYPES index of its error, -1 for a true positive
    fixed_cls: np.ndarray  # (n,) its class after the fix that makes it a true positive, -1 if none
    size: np.ndarray  # (n,) SIZES index by COCO's rule: the object it found or claims, else its own box
    objects: np.ndarray  # (images, classes, sizes) objects to find
    missed: np.ndarray  # (images, classes, sizes) of those, missed

    def ap(self, variant: str | None = None, weights: np.ndarray | None = None) -> float:
        """AP50 with ``variant`` (an error type) fixed, over the images weighted by ``weights``
        (how often each is drawn; None: each once): the mean over the classes that count."""
        return mean_ap(self.class_aps(variant, weights))

    def class_aps(self, variant: str | None = None, weights: np.ndarray | None = None,
                  size: str | None = None) -> np.ndarray:
        """Each class's AP50 as ``ap`` computes it; NaN for a class with neither objects nor detections.
        ``size`` ("small", "medium", "large"): only the objects of that COCO area range, and the
        detections COCO's rule puts there (by the object they found or claim, else by their own box)."""
        return class_aps(self.plan(variant, size), weights)

    def plan(self, variant: str | None = None, size: str | None = None) -> tuple[list, np.ndarray]:
        """What AP sees with ``variant`` (an error type, or None) fixed, in the ``size`` range (or
        all): per class, the image of each of its detections in rank order and whether it is a true
        positive; and the objects to find per image and class. A plan serves any weights of the
        images (a resample), so the bootstrap builds it once."""
        cls, correct, keep = self.cls, self.correct, np.ones(len(self.cls), dtype=bool)
        objects, missed = self.objects.sum(-1), self.missed.sum(-1)
        if size is not None:
            k = SIZES.index(size)
            objects, missed, keep = self.objects[..., k], self.missed[..., k], self.size == k
        if variant == "missed":
            objects = objects - missed
        elif variant is not None:
            hit = self.kind == TYPES.index(variant)
            fixed = hit & (self.fixed_cls >= 0)
            keep = keep & (~hit | fixed)
            cls = np.where(fixed, self.fixed_cls, cls)
            correct = correct | fixed
        per_class = [(self.image[(cls == k) & keep], correct[(cls == k) & keep]) for k in range(objects.shape[1])]
        return per_class, objects

    def size_daps(self) -> dict[str, dict[str, float]]:
        """Per COCO size range (with objects), each type's dAP on the whole split."""
        out = {}
        for k, name in enumerate(SIZES):
            if not self.objects[..., k].any():
                continue
            base = mean_ap(self.class_aps(None, None, name))
            out[name] = {t: max(mean_ap(self.class_aps(t, None, name)) - base, 0.0) for t in TYPES}
        return out

    def class_daps(self) -> list[dict[str, float]]:
        """Per class, each type's dAP on the whole split (that class's AP50 gained, never below 0)."""
        base = self.class_aps()
        fixed = {t: self.class_aps(t) for t in TYPES}
        return [{t: float(max(fixed[t][c] - base[c], 0.0)) if not np.isnan(base[c]) else float("nan")
                 for t in TYPES} for c in range(len(base))]

    def daps(self, weights: np.ndarray | None = None) -> dict[str, float]:
        """Each type's dAP (fixed alone, never below 0) over the weighted images."""
        base = self.ap(None, weights)
        return {t: max(self.ap(t, weights) - base, 0.0) for t in TYPES}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes in float64 (torchvision's), 0 where two empty boxes meet."""
    as_tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(-1, 4))  # noqa: E731
    return np.nan_to_num(torch_box_iou(as_tensor(a), as_tensor(b)).numpy(), nan=0.0)


def classify(split: Split, dets: list[np.ndarray], fg: float = FG, bg: float = BG) -> Classified:
    """TIDE's matching and error types for one model's detections (per image (n, 6): x1, y1, x2,
    y2, score, split class index; image pixels)."""
    n_cls = len(split.classes)
    per_image = []  # (image, cls, score, correct, kind, fixed_cls, size) arrays of each image, by score
    objects = np.zeros((len(split.images), n_cls, len(SIZES)), dtype=int)
    missed = np.zeros((len(split.images), n_cls, len(SIZES)), dtype=int)
    for i, (gt, det) in enumerate(zip(split.boxes, dets)):
        gt = np.asarray(gt, dtype=np.float64).reshape(-1, 5)
        det = np.asarray(det, dtype=np.float64).reshape(-1, 6)
        det = det[np.argsort(-det[:, 4], kind="stable")][:MAX_DETS]
        h, w = split.sizes[i]
        det[:, :4] = np.clip(det[:, :4], 0, [w, h, w, h])  # as COCO's numbers see them (the pass keeps them unclipped)
        gt_size = _size((gt[:, 3] - gt[:, 1]) * (gt[:, 4] - gt[:, 2]))
        size = _size((det[:, 2] - det[:, 0]) * (det[:, 3] - det[:, 1]))  # a hit's and a claimer's: its object's
        np.add.at(objects[i], (gt[:, 0].astype(int), gt_size), 1)
        iou = box_iou(det[:, :4], gt[:, 1:5])
        cls = det[:, 5].astype(int)
        same = cls[:, None] == gt[:, 0].astype(int)[None, :]
        found = np.zeros(len(gt), dtype=bool)
        own_all = np.where(same, iou, 0.0)
        free = own_all.copy()
        correct = np.zeros(len(det), dtype=bool)
        # By score, each detection takes its best unmatched object of its class. Only a detection
        # whose best own-class IoU reaches fg can take one; the others leave ``free`` as it was.
        for k in np.flatnonzero(own_all.max(axis=1, initial=0.0) >= fg).tolist():
            j = int(free[k].argmax())
            if free[k, j] >= fg:
                found[j] = correct[k] = True
                free[:, j] = 0.0
                size[k] = gt_size[j]
        kind = np.full(len(det), -1)  # a true positive has none
        fixed = np.full(len(det), -1)
        claimed = np.zeros(len(gt), dtype=bool)
        wrong = ~correct
        if not len(gt):
            kind[wrong] = TYPES.index("background")
        elif len(det):  # each row's best own-class and other-class object, and the IoUs the rules read
            other_all = np.where(same, 0.0, iou)
            own_j, own_max = own_all.argmax(axis=1), own_all.max(axis=1)
            other_j, other_max = other_all.argmax(axis=1), other_all.max(axis=1)
            on_found = np.where(found[None, :], own_all, 0.0).max(axis=1)
            loc = wrong & (bg <= own_max) & (own_max <= fg)
            mis = wrong & ~loc & (other_max >= fg)
            rest = wrong & ~loc & ~mis
            dup = rest & (on_found >= fg)
            back = rest & ~dup & (iou.max(axis=1) <= bg)
            for mask, name in ((loc, "localisation"), (mis, "classification"), (dup, "duplicate"),
                               (back, "background"), (rest & ~dup & ~back, "both")):
                kind[mask] = TYPES.index(name)
            # A localisation or classification fix targets an object; where that object is still
            # to be found, the fix claims it (so it is not missed), and the highest-scoring claimer
            # (the first, by score) is the one the fix turns into its true positive.
            target = np.where(loc, own_j, np.where(mis, other_j, -1))
            claims = (target >= 0) & ~found[np.maximum(target, 0)]
            claimed[target[claims]] = True
            size[claims] = gt_size[target[claims]]
            first = np.unique(target[claims], return_index=True)[1]
            winners = np.flatnonzero(claims)[first]
            fixed[winners] = np.where(loc[winners], cls[winners], gt[target[winners], 0].astype(int))
        for j in np.flatnonzero(~found & ~claimed):
            missed[i, int(gt[j, 0]), gt_size[j]] += 1
        per_image.append((np.full(len(det), i), cls, det[:, 4], correct, kind, fixed, size))
    columns = [np.concatenate(col) for col in zip(*per_image)] if per_image else [np.zeros(0)] * 7
    image, cls, score, correct, kind, fixed, size = columns
    order = np.argsort(-score, kind="stable")  # AP's ranking, ties in image order
    return Classified(image=image[order].astype(int), cls=cls[order].astype(int), correct=correct[order].astype(bool),
                      kind=kind[order].astype(int), fixed_cls=fixed[order].astype(int), size=size[order].astype(int),
                      objects=objects, missed=missed)


def error_analysis(split: Split, dets: list[np.ndarray], fg: float = FG, bg: float = BG) -> ErrorAnalysis:
    """TIDE's error types and their dAP for one model's detections on the whole split."""
    return summary_of(classify(split, dets, fg, bg), split.classes)


#: The foreground thresholds of COCO's mAP50-95, for dAP averaged over them.
FG_RANGE = tuple(np.round(np.linspace(0.5, 0.95, 10), 2))


def dap_50_95(split: Split, dets: list[np.ndarray], bg: float = BG,
              at_50: Classified | None = None) -> dict[str, float]:
    """Each type's dAP averaged over foreground IoUs 0.50, 0.55, ..., 0.95 (background stays at
    ``bg``), as TIDE reports it beside the one at 0.5 (``at_50``: that classification, when the
    caller has it)."""
    per = [(at_50 if fg == FG and at_50 is not None else classify(split, dets, float(fg), bg)).daps()
           for fg in FG_RANGE]
    return {t: float(np.mean([d[t] for d in per])) for t in TYPES}


def summary_of(c: Classified, classes: list[str] | None = None) -> ErrorAnalysis:
    """The whole split's AP50, counts and dAP (overall and per class, named by ``classes``)."""
    counts = {t: int((c.kind == TYPES.index(t)).sum()) for t in TYPES[:-1]}
    counts["missed"] = int(c.missed.sum())
    names = classes or [str(k) for k in range(c.objects.shape[1])]
    by_class = {names[k]: d for k, d in enumerate(c.class_daps()) if not np.isnan(next(iter(d.values())))}
    return ErrorAnalysis(c.ap(), counts, c.daps(), by_class, c.size_daps())


#: An object's outcome for one model at a confidence, one letter each (stored compactly per model).
OUTCOMES = {"F": "found", "L": "localisation error", "C": "class error", "B": "both", "M": "missed"}


def object_outcomes(split: Split, dets: list[np.ndarray], confidence: float, found: list[bool],
                    fg: float = FG, bg: float = BG) -> str:
    """One letter per ground-truth object (image by image, in label order: the order COCO's ids
    and the Evaluate view's object columns follow): ``found`` (as COCO's matching at IoU ``fg``
    found it, at ``confidence``), else what the model's detections above ``confidence`` did near
    it, in TIDE's terms: a box of its class at IoU [bg, fg) is a localisation error, one of
    another class at IoU >= fg a class error, at [bg, fg) both; nothing near it: missed."""
    letters, k = [], 0
    for (h, w), gt, det in zip(split.sizes, split.boxes, dets):
        gt = np.asarray(gt, dtype=np.float64).reshape(-1, 5)
        det = np.asarray(det, dtype=np.float64).reshape(-1, 6)
        det = det[det[:, 4] >= confidence]
        iou = box_iou(gt[:, 1:5], np.clip(det[:, :4], 0, [w, h, w, h]))
        same = gt[:, 0:1].astype(int) == det[:, 5].astype(int)[None, :]
        for j in range(len(gt)):
            own = iou[j][same[j]].max(initial=0.0)
            other = iou[j][~same[j]].max(initial=0.0)
            letters.append("F" if found[k] else "L" if own >= bg else "C" if other >= fg else
                           "B" if other >= bg else "M")
            k += 1
    return "".join(letters)
