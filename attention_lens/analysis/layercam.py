"""LayerCAM for models without attention (Jiang et al., IEEE TIP 2021, "LayerCAM").

A different kind of map from the attention gates: it shows where the detector's class scores
are sensitive, from gradients, not what a module chose to weight. For each input of the Detect
head (P3/P4/P5): CAM = ReLU(sum_c ReLU(dS/dA_c) * A_c), with S the summed top class scores of
the strongest candidate boxes of each level (so P4 and P5 get gradients even when the image's
strongest boxes sit at P3). Its hooks are the gates' keeper's (``runtime.capture.ThreadHooks``).
"""
from __future__ import annotations

import numpy as np
import torch

from attention_lens.analysis.heatmaps import normalize, to_original
from attention_lens.runtime.capture import ThreadHooks, forward_lock, raw_prediction
from attention_lens.runtime.detect import on_device, to_cpu
from attention_lens.runtime.letterbox import model_input


#: What runs LayerCAM, as the tables and the JSON name it (gradients: PyTorch, never ONNX Runtime).
LAYERCAM_BACKEND = "pytorch (LayerCAM needs gradients)"


def detect_inputs(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The layers whose outputs feed the Detect head (ultralytics' ``m.f`` of the last layer; a
    model without that layout, such as YOLOX, names them itself)."""
    if hasattr(model, "detect_inputs"):
        return model.detect_inputs()
    head = model.model[-1]
    return [model.model[i] for i in (head.f if isinstance(head.f, list) else [head.f])]


def layercam(model: torch.nn.Module, image_rgb: np.ndarray, imgsz: int = 320, top_k: int = 20) -> list[dict]:
    """One LayerCAM per Detect input, normalised to 0..1: in original image pixels (``map``) and on
    the feature grid (``grid``)."""
    return layercam_and_detections(model, image_rgb, imgsz, top_k)[0]


def layercam_grids(model: torch.nn.Module, x: torch.Tensor, top_k: int = 20):
    """(per image of ``x``, one LayerCAM per Detect input on its feature grid, un-normalised; the
    forward's raw prediction, on the CPU).

    The first Detect input to run (the parameters are frozen, so nothing before it needs a
    gradient) is handed on as a fresh leaf that requires grad; the later ones depend on it and stay
    in the graph. So the backward runs only through the layers after P3 (the neck above it and the
    head), not the backbone, and each map's gradient is still the total derivative dS/dA,
    through every path to the head. Each image's S is its own (its strongest candidates); images
    of a batch do not mix in an eval-mode forward, so one backward of their sum gives each image
    the gradient of its own S."""
    acts: dict[int, torch.Tensor] = {}

    def keep(i):
        def hand_on(out: torch.Tensor) -> torch.Tensor:
            acts[i] = out if out.requires_grad else out.detach().requires_grad_(True)
            return acts[i]
        return hand_on

    layers = detect_inputs(model)
    with ThreadHooks() as hooks:
        for k, m in enumerate(layers):
            hooks.on_output(m, keep(k))
        with forward_lock(model), torch.enable_grad():
            pred = raw_prediction(model(on_device(model, x)))
            scores = pred[:, 4:, :].amax(1)  # per image and candidate
            cells = [acts[k].shape[2] * acts[k].shape[3] for k in range(len(layers))]
            per_cell = scores.shape[1] // sum(cells)  # 1 anchor-free; 3 anchors per cell in classic yolov5
            sizes = [per_cell * c for c in cells]  # candidates per level
            total = sum(level.topk(min(top_k, level.shape[1]), dim=1).values.sum()
                        for level in scores.split(sizes, dim=1))
            grads = torch.autograd.grad(total, [acts[k] for k in range(len(layers))], allow_unused=True)
    per_level = []
    for k, (layer, g) in enumerate(zip(layers, grads)):
        a = acts[k].detach()
        g = torch.zeros_like(a) if g is None else g
        cams = (g.clamp_min(0) * a).sum(1).clamp_min(0).float().cpu().numpy()
        per_level.append((getattr(layer, "i", k), round(x.shape[2] / a.shape[2]), cams))
    grids = [[{"layer": i, "stride": stride, "grid": cams[n]} for i, stride, cams in per_level]
             for n in range(x.shape[0])]
    return grids, to_cpu(pred.detach())


def layercam_and_detections(model: torch.nn.Module, image_rgb: np.ndarray, imgsz: int = 320, top_k: int = 20, *,
                            conf: float = 0.25, iou: float = 0.7, map_hw: tuple[int, int] | None = None):
    """(LayerCAMs as ``layercam`` gives them, the detections of the same forward); ``map_hw``:
    draw each ``map`` at that size of the image (its display copy) instead of its own pixels."""
    import time

    from attention_lens.runtime.detect import from_prediction

    t0 = time.perf_counter()
    x = model_input(model, image_rgb, imgsz)
    grids, pred = layercam_grids(model, x, top_k)
    grids = grids[0]
    det = from_prediction(model, pred, x, image_rgb, conf=conf, iou=iou)
    det.ms = (time.perf_counter() - t0) * 1000
    for g in grids:
        cam = g["grid"]
        g["map"] = normalize(to_original(cam, tuple(x.shape[2:]), tuple(map_hw or image_rgb.shape[:2]), det.stretched))
        g["grid"] = normalize(cam)  # the same map on the feature grid
    return grids, det
