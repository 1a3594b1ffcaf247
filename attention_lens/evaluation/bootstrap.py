"""A paired bootstrap over images for each Δ between two detectors on one split.

The same resampled images for both models in each round; each round's AP is re-accumulated from
pycocotools' own per-image matches (``evaluation.coco_matches``: no re-matching) by its
accumulate rule, vectorised (``Resampler``; tested equal to pycocotools' accumulate). The
resamples depend only on (seed, number of images), so series drawn with one seed are paired.
"""
from __future__ import annotations

import numpy as np

from attention_lens.evaluation.coco import MAX_DETS

#: Rounds a request may ask for: each is ~1 ms per model on BCCD's test split, and more than a
#: few thousand no longer moves a 95% interval's ends by a visible amount.
MIN_ROUNDS, MAX_ROUNDS = 100, 2000


def check_rounds(rounds, minimum: int = MIN_ROUNDS) -> int:
    """``rounds`` as an int within [minimum, MAX_ROUNDS], or ValueError naming the limits. A
    request gets MIN_ROUNDS (fewer give a coarse interval); code may ask for fewer (tests)."""
    if isinstance(rounds, float) and rounds.is_integer():
        rounds = int(rounds)
    if not isinstance(rounds, int) or isinstance(rounds, bool) or not minimum <= rounds <= MAX_ROUNDS:
        raise ValueError(f"Bootstrap rounds must be a whole number from {minimum} to {MAX_ROUNDS}.")
    return rounds


class Resampler:
    """(mAP50-95, mAP50) over any multiset of a split's images, from pycocotools' own per-image
    matches (``evalImgs``: no re-matching), accumulated the way ``COCOeval.accumulate`` does at
    area "all" and the largest maxDets: per class, the chosen images' detections sorted by score
    (stable, in the order the images were drawn), cumulative true and false positives per IoU
    threshold, precision made monotone from the right, read at the 101 recall thresholds,
    classes without ground truth left out. Equal to pycocotools' accumulate
    (tests/evaluation/test_bootstrap.py) at a small part of its cost (docs/PERFORMANCE.md, section 11).

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


def verdict(delta: float, low: float, high: float, seed_std: float | None, sigmas: float = 2.0,
            same_variant: bool = False) -> str:
    """Plain words: is the difference larger than image sampling noise and than seed noise?
    ``same_variant``: the model is another seed of the reference, so its difference *is* seed noise."""
    if same_variant:
        return "another seed of the reference (its Δ is seed noise)"
    beyond_images = low > 0 or high < 0
    if not beyond_images:
        return "within image sampling noise"
    if seed_std is None or not np.isfinite(seed_std):
        return "beyond image sampling noise (seed noise unknown)"
    return "beyond image sampling and seed noise" if abs(delta) >= sigmas * seed_std else "within seed noise"
