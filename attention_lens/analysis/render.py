"""Drawing detections with ultralytics' Annotator (cv2 path: no font downloads).

Labels never cover each other: boxes are drawn first, then labels in order of confidence, and a
label that would overlap one already placed is left out (its box stays). Every box, with its
confidence, is listed in the detections table beside the images.
"""
from __future__ import annotations

import numpy as np

ONLY_HERE_MARK = "+"
MISSED_COLOR = (150, 150, 150)


def class_colors(names: list[str]) -> dict[str, tuple]:
    """One colour per class name in every view and image (ultralytics' palette of 20, BGR): each
    name's slot comes from the name itself (CRC-32), not from its place in a list, so RBC keeps its
    colour whichever classes an image or a view holds. Two names wanting one slot: the one first
    in sorted order keeps it, the other takes the next free slot."""
    import zlib

    from ultralytics.utils.plotting import colors

    taken, slots = set(), {}
    for name in sorted(set(names)):
        slot = zlib.crc32(str(name).encode()) % len(colors.palette)
        while slot in taken and len(taken) < len(colors.palette):
            slot = (slot + 1) % len(colors.palette)
        taken.add(slot)
        slots[name] = slot
    return {n: colors(slots[n], bgr=True) for n in names}


def label_rect(box, label: str, font_scale: float, thickness: int, image_width: int) -> tuple[int, int, int, int]:
    """Where ultralytics' Annotator (cv2 path) puts ``label`` for ``box``: above the box when there
    is room, else inside its top edge, shifted left to stay in the image. (x1, y1, x2, y2)."""
    import cv2

    w, h = cv2.getTextSize(label, 0, fontScale=font_scale, thickness=thickness)[0]
    h += 3
    x1, y1 = int(box[0]), int(box[1])
    x1 = min(x1, image_width - w)
    return (x1, y1 - h, x1 + w, y1) if y1 >= h else (x1, y1, x1 + w, y1 + h)


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw(image_rgb: np.ndarray, boxes, scores, classes, palette: dict, status: list[str] | None = None,
         missed_boxes=(), missed_classes=()) -> np.ndarray:
    """RGB image with this model's boxes, its "only here" boxes marked, and missed reference boxes."""
    from ultralytics.utils.plotting import Annotator

    bgr = np.ascontiguousarray(image_rgb[..., ::-1])
    ann = Annotator(bgr, pil=False)
    items = [(list(map(float, box)), f"missed {cls}", MISSED_COLOR, -1.0)
             for box, cls in zip(missed_boxes, missed_classes)]
    for i, (box, score, cls) in enumerate(zip(boxes, scores, classes)):
        mark = ONLY_HERE_MARK if status is not None and status[i] == "only here" else ""
        items.append((list(map(float, box)), f"{mark}{cls} {score:.2f}", palette.get(cls, (0, 0, 255)), float(score)))
    for box, _label, color, _score in items:
        ann.box_label(box, "", color=color)
    placed = []
    for box, label, color, _score in sorted(items, key=lambda item: -item[3]):
        rect = label_rect(box, label, ann.sf, ann.tf, bgr.shape[1])
        if not any(_overlaps(rect, other) for other in placed):
            placed.append(rect)
            ann.box_label(box, label, color=color)
    return np.ascontiguousarray(ann.result()[..., ::-1])
