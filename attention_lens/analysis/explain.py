"""Explaining one detection: which pixels made this box, in each model, by Grad-CAM-style methods.

The methods come from the maintained pytorch-grad-cam package (Gildenblat et al.,
github.com/jacobgil/pytorch-grad-cam). What this module adds for detectors:

- ``BoxTarget``: the quantity explained for one box: the class score of the candidate that best
  matches the box plus that candidate's IoU with it (the score-plus-IoU target the package's own
  Faster R-CNN tutorial uses), on the head's raw output (4 box + nc class rows per candidate);
- the CAM taken at the Detect head's inputs (P3/P4/P5), un-letterboxed into image pixels; for
  RT-DETR, at its decoder's inputs, on the class scores of every query of its last decoder layer
  (the sigmoid of the class logits, before the top-k: the same score-plus-IoU target as a YOLO's);
- the energy-inside-the-box ratio: the share of the map's total inside the explained box;
- safety on a shared model: pytorch-grad-cam hooks the target layers for the object's life and
  its hooks record any forward. They live only inside the model's forward lock (which every
  forward of the app takes), are removed on exit, and parameter gradients are never kept.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from attention_lens.analysis.heatmaps import to_original
from attention_lens.runtime.capture import Captured, capture_gates, forward_lock, raw_prediction
from attention_lens.runtime.detect import on_device
from attention_lens.runtime.letterbox import is_detr, letterbox_geometry, model_input, stretches_input
from attention_lens.analysis.layercam import detect_inputs

METHOD_NAMES = ("Grad-CAM", "Grad-CAM++", "XGradCAM", "EigenCAM", "HiResCAM", "LayerCAM", "EigenGradCAM")
LEVELS = {"P3": 0, "P4": 1, "P5": 2}


class ExplainError(ValueError):
    """A user-facing problem with an explanation request."""


def method_class(name: str):
    import pytorch_grad_cam as cams

    classes = {"Grad-CAM": cams.GradCAM, "Grad-CAM++": cams.GradCAMPlusPlus, "XGradCAM": cams.XGradCAM,
               "EigenCAM": cams.EigenCAM, "HiResCAM": cams.HiResCAM, "LayerCAM": cams.LayerCAM,
               "EigenGradCAM": cams.EigenGradCAM}
    if name not in classes:
        raise ExplainError(f"Unknown method {str(name)[:40]!r}; pick one of {', '.join(METHOD_NAMES)}.")
    return classes[name]


class _RawScores(torch.nn.Module):
    """The detector's raw candidates, (b, 4 + nc, n) with boxes xywh in input pixels, as the one
    output pytorch-grad-cam expects (ultralytics heads return (y, features) in eval mode). For
    RT-DETR the candidates are its last decoder layer's queries, all of them (its eval output is
    (top-k, (decoder boxes, decoder logits, ...)), boxes normalised to the input)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.detr = is_detr(model)

    def forward(self, x):
        pred = self.model(x)
        if self.detr:
            boxes, logits = pred[1][0][-1], pred[1][1][-1]  # (b, queries, 4) and (b, queries, nc)
            size = x.new_tensor([x.shape[3], x.shape[2], x.shape[3], x.shape[2]])
            return torch.cat([boxes * size, logits.sigmoid()], -1).transpose(1, 2)
        return raw_prediction(pred)


class BoxTarget:
    """Score of ``class_id`` for the candidate best matching ``box`` (xyxy, input pixels), plus
    that candidate's IoU with the box: the higher, the more this evidence made this detection."""

    def __init__(self, class_id: int, box: torch.Tensor):
        self.class_id, self.box = int(class_id), box.reshape(1, 4).float()
        self.candidates = 0
        self.matched: tuple | None = None  # (score, iou, xyxy input pixels, index) of the candidate explained

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import box_iou
        from ultralytics.utils.ops import xywh2xyxy

        candidates = xywh2xyxy(output[:4].T)
        self.candidates = len(candidates)
        iou = box_iou(self.box.to(candidates.device, candidates.dtype), candidates)[0]
        score = output[4 + self.class_id]
        best = int(torch.argmax((iou * score).detach()))
        self.matched = (float(score[best].detach()), float(iou[best].detach()),
                        candidates[best].detach().float().cpu(), best)
        return score[best] + iou[best]


@dataclass
class Explanation:
    model: str
    cam: np.ndarray  # (h, w) in display pixels, 0..1
    box: np.ndarray  # the chosen box, original pixels
    class_name: str
    method: str
    matched: np.ndarray | None  # the model's own candidate explained (best score x IoU), original pixels
    confidence: float | None  # its class score (None for methods without a target: EigenCAM)
    iou: float | None  # its IoU with the chosen box
    level: str | None  # the head level (P3, P4, P5) that candidate comes from: layers above it get no gradient;
    # "decoder query" for RT-DETR (its queries read every level through deformable attention)
    energy_in_box: float
    box_share: float  # the box's share of the image area: the energy a uniform map would give
    ms: float
    captured: Captured | None = None  # the maps the CAM's own forward recorded (``explain_box(capture=True)``)


#: Below this spread (max - min of the 0..1 map) a map shows nothing: a flat or empty map.
FLAT_SPREAD = 0.05
#: Above this share of its mass inside the chosen box, a map never leaves the box: the method's
#: gradients reach only the candidate's receptive field, so the number cannot tell models apart.
CONFINED_ENERGY = 0.95
#: The confidence the Compare view shows boxes at (its slider's default).
SHOWN_CONFIDENCE = 0.25


def energy_ratio(e: Explanation) -> float:
    """Energy in the box over the box's share of the image: 1 = no preference for the box (what
    a uniform map gives), above 1 = concentrated on it."""
    return e.energy_in_box / e.box_share if e.box_share > 0 else float("nan")


def explanation_notes(e: Explanation, confidence: float = SHOWN_CONFIDENCE) -> list[str]:
    """What a reader must know before trusting one explanation, in plain words."""
    notes = []
    spread = float(e.cam.max() - e.cam.min()) if e.cam.size else 0.0
    if spread < FLAT_SPREAD:
        notes.append("flat map: it shows nothing (no gradient or activation differs over the image)")
    elif e.energy_in_box >= CONFINED_ENERGY:
        notes.append("the map never leaves the box: this method only sees the candidate's own receptive field, "
                     "so its energy cannot tell models apart (try Grad-CAM or EigenCAM)")
    if e.confidence is None:
        notes.append(f"{e.method} is not class-targeted: it shows the activations' main component, whatever the box")
    elif e.confidence < confidence:
        notes.append(f"the matched candidate scores {e.confidence:.3f}, below the {confidence:g} the Compare view "
                     "shows: this explains a box the model would not report")
    return notes


def to_input_box(box, input_hw, original_hw, stretched: bool = False) -> torch.Tensor:
    """A box in original pixels -> letterboxed (or stretched) input pixels (scale_boxes inverted)."""
    gx, gy, px, py = letterbox_geometry(input_hw, original_hw, stretched)
    x1, y1, x2, y2 = (float(v) for v in box)
    return torch.tensor([x1 * gx + px, y1 * gy + py, x2 * gx + px, y2 * gy + py])


def energy_in_box(cam: np.ndarray, box) -> float:
    """Share of the map's total mass that lies inside ``box`` (pixel coordinates of ``cam``)."""
    h, w = cam.shape
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    total = float(cam.sum())
    return 0.0 if total <= 0 or x2 <= x1 or y2 <= y1 else float(cam[y1:y2, x1:x2].sum()) / total


def explain_box(model: torch.nn.Module, name: str, image_rgb: np.ndarray, box, class_name: str, *,
                method: str = "Grad-CAM", levels=("P3", "P4", "P5"), imgsz: int = 320,
                display_hw: tuple[int, int] | None = None, capture: bool = False) -> Explanation:
    """The CAM of ``method`` for one box (original pixels) of class ``class_name`` in ``model``:
    the model's own candidate that best matches the box (class score x IoU) is what is explained.
    ``capture``: the attention maps are recorded during the CAM's own forward (each method here runs
    one forward on the one input), so the box's self-attention needs no forward of its own."""
    names = {str(v): int(k) for k, v in (getattr(model, "names", {}) or {}).items()}
    if class_name not in names:
        raise ExplainError(f"{name} has no class {class_name[:40]!r} (its classes: {', '.join(list(names)[:12])}).")
    chosen = [LEVELS[lv] for lv in levels if lv in LEVELS]
    if not chosen:
        raise ExplainError("Pick at least one layer: P3, P4 or P5.")
    inputs = detect_inputs(model)
    layers = [inputs[i] for i in chosen if i < len(inputs)]
    cls = method_class(method)
    original_hw = tuple(image_rgb.shape[:2])
    display_hw = tuple(display_hw or original_hw)
    stretched = stretches_input(model)
    x = on_device(model, model_input(model, image_rgb, imgsz)).requires_grad_(True)  # the parameters are frozen
    target = BoxTarget(names[class_name], to_input_box(box, tuple(x.shape[2:]), original_hw, stretched))
    t0 = time.perf_counter()
    maps, taken = {}, {}
    with forward_lock(model), torch.enable_grad():
        try:
            with cls(model=_RawScores(model), target_layers=layers) as cam, \
                    (capture_gates(model, maps, taken) if capture else nullcontext()):
                grey = cam(input_tensor=x, targets=[target])[0]
        finally:
            for p in model.parameters():  # nothing accumulates on the shared model
                p.grad = None
    ms = (time.perf_counter() - t0) * 1000
    heat = np.clip(to_original(grey, tuple(x.shape[2:]), display_hw, stretched), 0, None)
    s = display_hw[1] / original_hw[1]
    shown = np.asarray(box, float) * s
    area = max(0.0, (shown[2] - shown[0]) * (shown[3] - shown[1])) / float(display_hw[0] * display_hw[1])
    matched = confidence = iou = level = None
    if target.matched is not None:
        from ultralytics.utils.ops import scale_boxes

        confidence, iou, candidate, index = target.matched
        if stretched:  # the stretch undone, clipped to the image as scale_boxes clips
            gx, gy, _, _ = letterbox_geometry(tuple(x.shape[2:]), original_hw, True)
            matched = (candidate / candidate.new_tensor([gx, gy, gx, gy])).numpy()
            matched = np.clip(matched, 0, [original_hw[1], original_hw[0]] * 2)
            level = "decoder query"
        else:
            matched = scale_boxes(tuple(x.shape[2:]), candidate[None].clone(), original_hw)[0].numpy()
            level = candidate_level(index, tuple(x.shape[2:]), target.candidates)
    captured = Captured(maps, taken, tuple(x.shape[2:]), stretched) if capture else None
    return Explanation(name, heat, np.asarray(box, float), class_name, method, matched, confidence, iou, level,
                       energy_in_box(heat, shown), min(1.0, area), ms, captured)


def candidate_level(index: int, input_hw: tuple[int, int], candidates: int, strides=(8, 16, 32)) -> str | None:
    """Which head level a candidate index belongs to: the head lists P3's cells, then P4's, then
    P5's (each cell one candidate, or one per anchor in classic yolov5)."""
    cells = [(input_hw[0] // s) * (input_hw[1] // s) for s in strides]
    if not candidates or candidates % sum(cells):
        return None
    per_cell = candidates // sum(cells)
    end = 0
    for name, n in zip(LEVELS, cells):
        end += n * per_cell
        if index < end:
            return name
    return None
