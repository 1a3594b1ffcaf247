"""Drawing detections with ultralytics' Annotator (cv2 path: no font downloads)."""
from __future__ import annotations

import numpy as np

ONLY_HERE_MARK = "+"
MISSED_COLOR = (150, 150, 150)


def class_colors(names: list[str]) -> dict[str, tuple]:
    """The same colour for a class name in every model's image (ultralytics' palette, BGR)."""
    from ultralytics.utils.plotting import colors

    return {n: colors(i, bgr=True) for i, n in enumerate(names)}


def draw(image_rgb: np.ndarray, boxes, scores, classes, palette: dict, status: list[str] | None = None,
         missed_boxes=(), missed_classes=()) -> np.ndarray:
    """RGB image with this model's boxes, its "only here" boxes marked, and missed reference boxes."""
    from ultralytics.utils.plotting import Annotator

    bgr = np.ascontiguousarray(image_rgb[..., ::-1])
    ann = Annotator(bgr, pil=False)
    for box, cls in zip(missed_boxes, missed_classes):
        ann.box_label(list(map(float, box)), f"missed {cls}", color=MISSED_COLOR)
    for i, (box, score, cls) in enumerate(zip(boxes, scores, classes)):
        only = status is not None and status[i] == "only here"
        label = f"{ONLY_HERE_MARK}{cls} {score:.2f}" if only else f"{cls} {score:.2f}"
        ann.box_label(list(map(float, box)), label, color=palette.get(cls, (0, 0, 255)))
    return np.ascontiguousarray(ann.result()[..., ::-1])
