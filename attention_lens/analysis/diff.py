"""Matching one model's detections against a reference model's: by class, then IoU."""
from __future__ import annotations

import numpy as np
from torchvision.ops import box_iou


def match(boxes: np.ndarray, classes: list[str], ref_boxes: np.ndarray, ref_classes: list[str],
          iou: float = 0.5, scores: np.ndarray | None = None) -> tuple[list[str], list[int]]:
    """Greedy one-to-one matching, most confident first, same class name, IoU >= ``iou``.

    Returns a status per box ("matched" or "only here") and the indices of reference boxes
    that nothing matched ("missed").
    """
    import torch

    n, m = len(boxes), len(ref_boxes)
    status = ["only here"] * n
    if n == 0 or m == 0:
        return status, list(range(m))
    ious = box_iou(torch.as_tensor(boxes, dtype=torch.float32), torch.as_tensor(ref_boxes, dtype=torch.float32)).numpy()
    same = np.array([[a == b for b in ref_classes] for a in classes])
    ious = np.where(same, ious, 0.0)
    order = np.argsort(-scores) if scores is not None else np.arange(n)
    taken = np.zeros(m, dtype=bool)
    for i in order:
        candidates = np.where(~taken & (ious[i] >= iou))[0]
        if len(candidates):
            j = candidates[np.argmax(ious[i, candidates])]
            taken[j] = True
            status[i] = "matched"
    return status, [j for j in range(m) if not taken[j]]
