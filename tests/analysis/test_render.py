"""Box labels never cover each other; the stronger box keeps its label."""
from __future__ import annotations

import numpy as np
from ultralytics.utils.plotting import Annotator

from attention_lens.analysis.render import draw

RED, BLUE = (0, 0, 255), (255, 0, 0)


def annotator_drawing(image, boxes_labels):
    """The expected image, drawn with ultralytics' Annotator directly: (box, label or "", colour)."""
    ann = Annotator(np.ascontiguousarray(image[..., ::-1]), pil=False)
    for box, _label, color in boxes_labels:
        ann.box_label(box, "", color=color)
    for box, label, color in boxes_labels:
        if label:
            ann.box_label(box, label, color=color)
    return ann.result()[..., ::-1]


def test_crowded_labels_keep_only_the_strongest():
    image = np.full((200, 300, 3), 40, np.uint8)
    strong, weak = [60.0, 80.0, 160.0, 150.0], [64.0, 82.0, 150.0, 160.0]  # label spots overlap
    got = draw(image, np.array([weak, strong]), np.array([0.4, 0.9]), ["RBC", "WBC"], {"RBC": RED, "WBC": BLUE})
    want = annotator_drawing(image, [(weak, "", RED), (strong, "WBC 0.90", BLUE)])
    assert np.array_equal(got, want)


def test_separate_boxes_keep_both_labels():
    image = np.full((200, 300, 3), 40, np.uint8)
    a, b = [20.0, 60.0, 90.0, 120.0], [180.0, 100.0, 260.0, 180.0]
    got = draw(image, np.array([a, b]), np.array([0.4, 0.9]), ["RBC", "WBC"], {"RBC": RED, "WBC": BLUE})
    want = annotator_drawing(image, [(a, "RBC 0.40", RED), (b, "WBC 0.90", BLUE)])
    assert np.array_equal(got, want)


def test_a_class_keeps_its_colour_whatever_else_an_image_or_view_holds():
    """Issue 35: RBC was cyan on one image and WBC on another; Evaluate's review had a third mapping."""
    from attention_lens.analysis.render import class_colors

    every = class_colors(["Platelets", "RBC", "WBC"])
    assert len(set(every.values())) == 3
    for names in (["RBC"], ["WBC", "RBC"], ["WBC", "Platelets", "RBC"], ["RBC", "WBC", "Platelets", "cat", "dog"]):
        got = class_colors(names)
        assert all(got[n] == every[n] for n in names if n in every), names
    many = class_colors([f"class {i}" for i in range(20)])
    assert len(set(many.values())) == 20  # up to the palette's size, no two classes share a colour
