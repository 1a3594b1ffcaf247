"""One detection pass on a shared, read-only model, optionally capturing attention maps.

Built from ultralytics' own predict pieces: LetterBox for the input, non_max_suppression, and
scale_boxes to bring boxes back to original image pixels. RT-DETR decodes as ultralytics'
RT-DETR predictor does: its decoder already picked the top queries, so no NMS, a confidence
threshold, and normalised boxes scaled by the image's own size (the input was stretched). The
forward runs on ONNX Runtime once the model's checked export is ready (onnx_backend.py), else on
PyTorch with the gates hooked (capture.py).
"""
from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from attention_lens.device import model_device
from attention_lens.runtime import onnx_backend
from attention_lens.runtime.capture import capture_gates, forward_lock, raw_prediction
from attention_lens.runtime.letterbox import is_detr, model_input, stretches_input


@dataclass
class Detections:
    boxes: np.ndarray  # (n, 4) xyxy in original image pixels
    scores: np.ndarray  # (n,)
    classes: list[str]  # class name per box
    ms: float  # forward + NMS time
    input_shape: tuple[int, int]  # letterboxed tensor (h, w)
    image_shape: tuple[int, int]  # original (h, w)
    maps: dict = field(default_factory=dict)  # gate qualified name -> captured tensor (cpu)
    inputs: dict = field(default_factory=dict)  # attention module name -> its input tensor (cpu)
    backend: str = "pytorch"  # what ran the forward: "onnxruntime" or "pytorch"
    stretched: bool = False  # the image was stretched to the input (RT-DETR), not letterboxed
    item: int = 0  # which batch item of ``maps`` / ``inputs`` is this image's (they may be a batch's)

    def as_records(self, model: str) -> list[dict]:
        return [{"model": model, "class": c, "confidence": round(float(s), 4),
                 "box": [round(float(v), 1) for v in b]} for b, s, c in zip(self.boxes, self.scores, self.classes)]


@contextmanager
def one_thread():
    """PyTorch ops on one thread for the block (the calling thread's setting, restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def detect(model: torch.nn.Module, image_rgb: np.ndarray, *, conf: float = 0.25, iou: float = 0.7,
           imgsz: int = 320, capture: bool = False, max_det: int = 300, x: torch.Tensor | None = None,
           ratio_pad: tuple | None = None) -> Detections:
    """Run ``model`` on one RGB image; boxes come back in the image's own pixels.

    ``x`` is the letterboxed tensor when the caller already has it (several models, one image);
    with ``ratio_pad`` it is the validator's input (see ``from_prediction``).
    The forward runs on ONNX Runtime once the model's checked export is ready (the maps are
    extra outputs of that graph), else on PyTorch on the model's device (the input goes there,
    the prediction and maps come back); ``Detections.backend`` says which.
    """
    x = model_input(model, image_rgb, imgsz) if x is None else x
    maps, inputs = {}, {}
    t0 = time.perf_counter()
    with forward_lock(model), torch.no_grad():
        fast = onnx_backend.run_if_ready(model, x, capture)
        if fast is not None:
            pred, gate_maps, gate_inputs = fast
            if capture:
                maps, inputs = gate_maps, gate_inputs
        elif capture:
            with capture_gates(model, maps, inputs):
                pred = to_cpu(model(on_device(model, x)))
        else:
            pred = to_cpu(model(on_device(model, x)))
        # After ORT, NMS's small ops run on one thread: a second pool would fight ORT's spinning ones.
        with one_thread() if fast is not None else nullcontext():
            det = from_prediction(model, pred, x, image_rgb, conf=conf, iou=iou, max_det=max_det, ratio_pad=ratio_pad)
    det.ms = (time.perf_counter() - t0) * 1000
    det.maps, det.inputs = maps, inputs
    det.backend = "onnxruntime" if fast is not None else onnx_backend.pytorch_label(model)
    return det


def batches_on_torch(model: torch.nn.Module) -> bool:
    """Whether a batch of images goes through PyTorch in one forward: on a GPU, and on the CPU for
    a model without an ONNX Runtime session (eight 256 x 352 images in one forward took 0.8 of eight
    forwards here; docs/PERFORMANCE.md, section 11). A CPU model with a session runs its batches
    through the graph."""
    return model_device(model).type != "cpu" or onnx_backend.REGISTRY.session(model) is None


#: What one batched run of a model may cost, summed over its images by the model's measured
#: one-forward bytes (``modeling.cost``: every module's output, self-attention matrices three times;
#: an upper bound). A batch multiplies what one image costs, and a capture keeps each image's
#: attention matrices until they are scored: yolo12n at 1280, eight images in one captured run kept
#: 3.8 GB (docs/PERFORMANCE.md, section 8), where the Evaluate job has 6 GB (``jobs.lane``).
BATCH_BYTES = 2 * 2**30


def images_per_run(model: torch.nn.Module, input_hw: tuple[int, int], most: int) -> int:
    """How many images of one input shape one batched run of ``model`` takes: as many (up to
    ``most``) as their one-forward bytes fit in ``BATCH_BYTES``, at least one (a single image is
    bounded where the model is loaded and the request is checked); one for a model without a
    measured cost (not loaded by ``modeling.load``)."""
    cost = getattr(model, "cost", None)
    if cost is None or most <= 1:
        return 1
    per_image = cost.input_bytes(int(input_hw[0]) * int(input_hw[1]))
    return int(max(1, min(most, BATCH_BYTES // max(per_image, 1))))


def runs(model: torch.nn.Module, x: torch.Tensor) -> list[slice]:
    """The images of ``x`` ((n, 3, h, w), one shape) as the batched runs ``images_per_run`` allows."""
    step = images_per_run(model, tuple(x.shape[2:]), len(x))
    return [slice(start, min(start + step, len(x))) for start in range(0, len(x), step)]


def on_device(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the model's device and in its float type (no copy for a float32 model on the CPU)."""
    device = model_device(model)
    dtype = next((p.dtype for p in model.parameters()), x.dtype)
    if x.device == device and x.dtype == dtype:
        return x
    return x.to(device, dtype=dtype, non_blocking=True)


def to_cpu(pred):
    """A forward's output (a tensor, or nested lists and tuples of them) on the CPU in float32 (a
    float16 pass's too): what decoding reads (torchvision's CPU NMS takes no float16)."""
    if isinstance(pred, torch.Tensor):
        t = pred if pred.device.type == "cpu" else pred.cpu()
        return t.float() if t.is_floating_point() and t.dtype != torch.float32 else t
    if isinstance(pred, (list, tuple)):
        return type(pred)(to_cpu(p) for p in pred)
    if isinstance(pred, dict):
        return {k: to_cpu(v) for k, v in pred.items()}
    return pred


def detect_batch(model: torch.nn.Module, images_rgb: list[np.ndarray], x: torch.Tensor, *, conf: float = 0.25,
                 iou: float = 0.7, max_det: int = 300, ratio_pads: list | None = None,
                 capture: bool = False) -> list[Detections]:
    """``detect`` for several images letterboxed to one shape (``x``: (n, 3, h, w)), in one PyTorch
    forward where ``batches_on_torch``, else in one ONNX Runtime run when the model's graph takes
    batches (``Exported.batched``), else one by one.
    NMS per image, as for one; ``ms`` is the run's share per image. ``ratio_pads``: the images are
    the validator's inputs (``letterbox.val_letterbox``), see ``from_prediction``. ``capture``: the
    run's gate maps too, every image's ``maps`` / ``inputs`` its run's with its ``item``. A run
    takes at most ``images_per_run`` images; more go in several runs."""
    t0 = time.perf_counter()
    pads = list(ratio_pads) if ratio_pads is not None else [None] * len(images_rgb)
    spans = runs(model, x)
    if len(spans) > 1:
        return [det for run in spans for det in detect_batch(model, images_rgb[run], x[run], conf=conf, iou=iou,
                                                             max_det=max_det, ratio_pads=pads[run], capture=capture)]
    if len(images_rgb) > 1 and batches_on_torch(model):  # the batch in one PyTorch forward
        maps, inputs = {}, {}
        with forward_lock(model), torch.no_grad(), capture_gates(model, maps, inputs) if capture else nullcontext():
            pred = raw_prediction(to_cpu(model(on_device(model, x))))
        dets = [from_prediction(model, pred[k:k + 1], x[k:k + 1], rgb, conf=conf, iou=iou, max_det=max_det,
                                ratio_pad=pads[k]) for k, rgb in enumerate(images_rgb)]
        for k, det in enumerate(dets):
            det.ms, det.backend = (time.perf_counter() - t0) * 1000 / len(dets), onnx_backend.pytorch_label(model)
            det.maps, det.inputs, det.item = maps, inputs, k
        return dets
    exported = onnx_backend.REGISTRY.session(model) if len(images_rgb) > 1 else None
    if exported is None or not exported.batched:
        return [detect(model, rgb, conf=conf, iou=iou, max_det=max_det, x=x[k:k + 1], ratio_pad=pads[k],
                       capture=capture) for k, rgb in enumerate(images_rgb)]
    pred, maps, inputs = exported.run(x, capture=capture)
    with torch.no_grad(), one_thread():
        dets = [from_prediction(model, pred[k:k + 1], x[k:k + 1], rgb, conf=conf, iou=iou, max_det=max_det,
                                ratio_pad=pads[k]) for k, rgb in enumerate(images_rgb)]
    for k, det in enumerate(dets):
        det.ms, det.backend = (time.perf_counter() - t0) * 1000 / len(dets), "onnxruntime"
        det.maps, det.inputs, det.item = maps, inputs, k
    return dets


def from_prediction(model: torch.nn.Module, pred, x: torch.Tensor, image_rgb: np.ndarray, *, conf: float = 0.25,
                    iou: float = 0.7, max_det: int = 300, ratio_pad: tuple | None = None) -> Detections:
    """Detections from a forward's raw output ``pred`` on the letterboxed ``x``: NMS, then boxes
    scaled back to the image's own pixels (for a caller that ran the forward itself).

    ``ratio_pad``: ``x`` is the validator's input (``letterbox.val_letterbox``); NMS and the way
    back are then the validator's: multi-label NMS (a box may count for several classes), and
    boxes brought back unclipped (the validator matches in the input's pixels, where a box may
    reach into the padding)."""
    import torchvision  # noqa: F401  (see below)
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import scale_boxes

    stretched = stretches_input(model)
    with torch.no_grad():
        raw = raw_prediction(pred).detach()
        if is_detr(model):
            det = _detr_rows(raw, image_rgb.shape[:2], conf, max_det)
        else:
            # Ultralytics' NMS runs torchvision's kernel only when torchvision is already imported;
            # its fallback is a Python loop, ~10x slower at the validation threshold (conf 0.001).
            det = non_max_suppression(raw, conf, iou, max_det=max_det, multi_label=ratio_pad is not None)[0]
            if ratio_pad is not None:  # scale_boxes' arithmetic without its final clip
                (gain_h, gain_w), (pad_x, pad_y) = ratio_pad
                det[:, :4] = (det[:, :4] - torch.tensor([pad_x, pad_y, pad_x, pad_y])) / torch.tensor(
                    [gain_w, gain_h, gain_w, gain_h])
            elif len(det):
                det[:, :4] = scale_boxes(x.shape[2:], det[:, :4].clone(), image_rgb.shape[:2])
    names = getattr(model, "names", {}) or {}
    classes = [str(names.get(int(c), int(c))) for c in det[:, 5].tolist()]
    return Detections(det[:, :4].numpy().astype(np.float32), det[:, 4].numpy().astype(np.float32), classes, 0.0,
                      tuple(x.shape[2:]), tuple(image_rgb.shape[:2]), stretched=stretched)


def _detr_rows(raw: torch.Tensor, image_hw: tuple[int, int], conf: float, max_det: int) -> torch.Tensor:
    """(n, 6) x1, y1, x2, y2 (image pixels), score, class from RT-DETR's (1, queries, 6) output
    [cx, cy, w, h normalised, score, class], ranked by score, as ultralytics' RTDETRPredictor.postprocess
    reads it: scores above ``conf``, the first ``max_det``, boxes times the image's own width and
    height. Its validator scales by the input's side and back by the stretch's gain, the same boxes
    up to float rounding."""
    from ultralytics.utils.ops import xywh2xyxy

    pred = raw[0].float()
    keep = pred[pred[:, 4] > conf][:max_det].clone()
    h0, w0 = image_hw
    keep[:, :4] = xywh2xyxy(keep[:, :4]) * torch.tensor([w0, h0, w0, h0], dtype=torch.float32)
    return keep
