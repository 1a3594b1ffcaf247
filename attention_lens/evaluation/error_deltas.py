"""How a model's errors differ from a reference's: each TIDE type's dAP on the whole split and
on bootstrap resamples of its images (paired between models by the seed), the paired interval of
the difference with the verdict the mAP's Δ gets, and a sentence of the clear ones.
"""
from __future__ import annotations

import numpy as np

from attention_lens.evaluation.bootstrap import verdict
from attention_lens.evaluation.error_types import TYPES, Classified
from attention_lens.evaluation.ranked_ap import class_aps_of_rounds, mean_aps

#: Bootstrap rounds computed together: their (rounds x detections) cumulative sums stay a few MB.
SERIES_CHUNK = 128

#: How a type reads in a sentence.
_PHRASES = {"classification": "classification errors", "localisation": "localisation errors",
            "both": "errors of class and place at once", "duplicate": "duplicates",
            "background": "background detections", "missed": "missed objects"}


def errors_against(ref_series: np.ndarray, model_series: np.ndarray, seed_std: dict[str, float] | None = None,
                   same_variant: bool = False, level: float = 0.95) -> dict:
    """Per type, the model's dAP minus the reference's (negative: it loses less AP to that type)
    with a paired percentile interval over the resampled images (the two ``dap_series`` drawn with
    one seed) and the verdict the mAP's Δ gets (``bootstrap.verdict``, the reference's seeds'
    spread of that type's dAP as the seed noise)."""
    diff = np.asarray(model_series) - np.asarray(ref_series)
    lo, hi = np.nanpercentile(diff[1:], [50 * (1 - level), 50 * (1 + level)], axis=0)
    out = {}
    for j, t in enumerate(TYPES):
        std = (seed_std or {}).get(t)
        out[t] = {"delta": float(diff[0, j]), "low": float(lo[j]), "high": float(hi[j]), "seed std": std,
                  "verdict": verdict(float(diff[0, j]), float(lo[j]), float(hi[j]), std, same_variant=same_variant)}
    return out


def why_sentence(name: str, against: dict) -> str:
    """Plain words from the intervals that exclude zero: "EMA s0: fewer missed objects, dAP -0.021
    [-0.034, -0.008]; other error types within image sampling noise"."""
    clear = [(t, a) for t, a in against.items() if a["low"] > 0 or a["high"] < 0]
    if not clear:
        return f"{name}: every error type within image sampling noise"
    parts = [f"{'fewer' if a['delta'] < 0 else 'more'} {_PHRASES[t]}, dAP {a['delta']:+.3f} "
             f"[{a['low']:+.3f}, {a['high']:+.3f}]" + ("" if "beyond" in a["verdict"] else f" ({a['verdict']})")
             for t, a in sorted(clear, key=lambda ta: -abs(ta[1]["delta"]))]
    rest = "; other error types within image sampling noise" if len(clear) < len(against) else ""
    return f"{name}: " + "; ".join(parts) + rest


def dap_series(classified: Classified, rounds: int, seed: int = 0) -> np.ndarray:
    """(rounds + 1, types): each type's dAP on the whole split, then on ``rounds`` resamples of its
    images with replacement, drawn as ``bootstrap.bootstrap_series`` draws them (the same seed
    gives the same images), so two models' series are paired image for image.

    Each variant's ``Classified.plan`` is built once and serves every round, and the rounds go
    through it together, ``SERIES_CHUNK`` at a time (``class_aps_of_rounds``; tested equal to
    ``Classified.daps`` with each resample's weights)."""
    n = len(classified.objects)
    rng = np.random.default_rng(seed)
    weights = np.stack([np.ones(n)] + [np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
                                       for _ in range(rounds)])
    plans = [classified.plan(variant) for variant in (None, *TYPES)]
    maps = np.stack([mean_aps(np.vstack([class_aps_of_rounds(plan, weights[k:k + SERIES_CHUNK])
                                          for k in range(0, len(weights), SERIES_CHUNK)]))
                     for plan in plans], axis=1)  # (rounds + 1, 1 + types)
    return np.maximum(maps[:, 1:] - maps[:, :1], 0.0)
