"""One image of an evaluated split, opened: its ground truth and each model's boxes, marked.

A grid (``result_grid``): the ground truth first, then each model with its boxes at
the evaluation's confidence as true positives (solid, in class colours) or false positives
(dashed), and the ground-truth boxes it missed (grey, dotted). True / false / missed come from
pycocotools' own matches at IoU 0.5 (evaluation.image_outcomes), the same ones every count of
the Evaluate view uses. Without the split's pixels (the zoo's stored numbers) the boxes are
drawn on a blank canvas of the image's size.
"""
from __future__ import annotations

import numpy as np

from attention_lens.evaluation.coco import image_outcomes
from attention_lens.analysis.images import display_copy, display_size, load_image
from attention_lens.data.datasets import Split

GROUND_TRUTH = "ground truth"


def review_records(split: Split, index: int, detections: dict[str, list[np.ndarray]], confidence: float) -> list[dict]:
    """The boxes of every panel as /compare-style records (model, class, confidence, box, diff):
    diff is "true positive", "false positive" or "missed"."""
    gt = split.boxes[index]
    records = [{"model": GROUND_TRUTH, "class": split.classes[int(c)], "confidence": None,
                "box": [float(v) for v in b], "diff": "ground truth"} for c, *b in gt]
    for name, per_image in detections.items():
        dets = per_image[index]
        found, true = image_outcomes(split, index, dets, confidence)
        kept = dets[dets[:, 4] >= confidence] if len(dets) else dets
        for row, ok in zip(kept, true):
            records.append({"model": name, "class": split.classes[int(row[5])], "confidence": float(row[4]),
                            "box": [float(v) for v in row[:4]], "diff": "true positive" if ok else "false positive"})
        records += [{"model": name, "class": split.classes[int(c)], "confidence": None, "box": [float(v) for v in b],
                     "diff": "missed"} for (c, *b), hit in zip(gt, found) if not hit]
    return records


def review_figure(split: Split, index: int, detections: dict[str, list[np.ndarray]], confidence: float):
    """(plotly grid figure, per-panel counts) for image ``index`` of the split."""
    from attention_lens.views.result_grid import results_grid

    records = review_records(split, index, detections, confidence)
    h, w = split.sizes[index]
    if split.has_pixels:
        view, scale = display_copy(load_image(split.paths[index]))
    else:
        (dh, dw), scale = display_size((h, w))
        view = np.full((dh, dw, 3), 235, dtype=np.uint8)
    panels = [GROUND_TRUTH, *detections]
    counts = {}
    for p in panels:
        mine = [r for r in records if r["model"] == p]
        counts[p] = {k: sum(r["diff"] == k for r in mine) for k in ("true positive", "false positive", "missed")}
    subtitles = {GROUND_TRUTH: f"{len(split.boxes[index])} objects"}
    subtitles.update({p: f"{c['true positive']} true, {c['false positive']} false, {c['missed']} missed"
                      for p, c in counts.items() if p != GROUND_TRUTH})
    return results_grid(view, scale, records, panels, subtitles), counts
