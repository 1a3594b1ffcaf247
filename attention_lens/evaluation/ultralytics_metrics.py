"""The metrics ultralytics' validator reports (``yolo val``), computed from the evaluation pass's detections.

Two definitions of mAP are in use and they differ by more than the effects people look for: COCO's
(pycocotools; 101-point interpolation, at most 100 detections an image, areas) and ultralytics'
(``ap_per_class``: a continuous precision envelope, every detection up to 300, matches made in the
letterboxed input's pixels). This module reproduces the second from the same detections the
COCO numbers use, with ultralytics' own pieces: ``BaseValidator.match_predictions`` for the matches
at IoU 0.50:0.95, ``box_iou`` and ``DetMetrics`` (``ap_per_class``) for P, R, mAP50 and mAP50-95.
The detections come from the validator's input (``runtime.letterbox.val_letterbox``) and NMS
(multi-label), so on the same checkpoint, split and image size the result equals ``yolo val``
at rect batches of one (tested on the zoo).

Matching happens where the validator matches: in the input's pixels. The evaluation pass keeps
boxes in the image's pixels, unclipped, so the input's boxes are a scaling away (the padding
shifts both boxes alike and leaves every IoU as it is).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from attention_lens.data.datasets import Split
from attention_lens.runtime.letterbox import val_resized_hw

#: ultralytics' IoU thresholds: 0.50, 0.55, ..., 0.95.
IOU_THRESHOLDS = torch.linspace(0.5, 0.95, 10)


def ultralytics_metrics(split: Split, dets: list[np.ndarray], imgsz: int) -> dict:
    """{"P", "R", "mAP50", "mAP50-95", "per_class": {class: {"mAP50", "mAP50-95"}}} as ultralytics'
    validator computes them, for detections (per image (n, 6): x1, y1, x2, y2, score, class in
    the image's pixels, unclipped) made at ``imgsz``."""
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.utils.metrics import DetMetrics, box_iou

    validator = SimpleNamespace(iouv=IOU_THRESHOLDS)  # all match_predictions reads of the validator
    metrics = DetMetrics(names=dict(enumerate(split.classes)))
    for name, (h0, w0), gt, det in zip(split.images, split.sizes, split.boxes, dets):
        h1, w1 = val_resized_hw((h0, w0), imgsz)
        scale = torch.tensor([w1 / w0, h1 / h0, w1 / w0, h1 / h0], dtype=torch.float32)
        det = np.asarray(det, dtype=np.float64).reshape(-1, 6)
        det = det[np.argsort(-det[:, 4], kind="stable")]  # the validator's order: by confidence
        pred_cls = torch.from_numpy(det[:, 5]).float()
        true_cls = torch.from_numpy(np.asarray(gt)[:, 0]).float()
        if len(det) and len(gt):
            iou = box_iou(torch.from_numpy(np.asarray(gt)[:, 1:5]).float() * scale,
                          torch.from_numpy(det[:, :4]).float() * scale)
            tp = BaseValidator.match_predictions(validator, pred_cls, true_cls, iou).numpy()
        else:
            tp = np.zeros((len(det), len(IOU_THRESHOLDS)), dtype=bool)
        metrics.update_stats({"tp": tp, "conf": det[:, 4], "pred_cls": det[:, 5], "target_cls": true_cls.numpy(),
                              "target_img": np.unique(true_cls.numpy()), "im_name": name})
    metrics.process()
    box = metrics.box
    per_class = {}
    for j, c in enumerate(box.ap_class_index):
        _, _, ap50, ap = box.class_result(j)
        per_class[split.classes[int(c)]] = {"mAP50": float(ap50), "mAP50-95": float(ap)}
    return {"P": float(box.mp), "R": float(box.mr), "mAP50": float(box.map50), "mAP50-95": float(box.map),
            "per_class": per_class}
