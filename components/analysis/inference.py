"""One detection pass on a shared, read-only model, optionally capturing attention maps.

Built from ultralytics' own predict pieces: LetterBox for the input, non_max_suppression, and
scale_boxes to bring boxes back to original image pixels.

Attention capture uses forward hooks on the model's gates only (nothing patches a forward),
registered for this call only and removed after it. A hook records only forwards that run on
the thread that registered it, so two sessions sharing a model never see each other's maps.
"""
from __future__ import annotations

import threading
import time
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from components.attention import Gate, attention_modules


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

    def as_records(self, model: str) -> list[dict]:
        return [{"model": model, "class": c, "confidence": round(float(s), 4),
                 "box": [round(float(v), 1) for v in b]} for b, s, c in zip(self.boxes, self.scores, self.classes)]


#: The image sizes (letterbox side, pixels) any view or evaluation accepts.
MIN_IMGSZ, MAX_IMGSZ = 32, 1280


class ImageSizeError(ValueError):
    """An image size outside [MIN_IMGSZ, MAX_IMGSZ] (or not a whole number)."""


def check_image_size(imgsz) -> int:
    """``imgsz`` as an int, or ImageSizeError: checked before anything of that size is allocated."""
    if isinstance(imgsz, str) and imgsz.strip().isdigit():
        imgsz = int(imgsz)
    if isinstance(imgsz, float) and imgsz.is_integer():
        imgsz = int(imgsz)
    if not isinstance(imgsz, int) or isinstance(imgsz, bool) or not MIN_IMGSZ <= imgsz <= MAX_IMGSZ:
        raise ImageSizeError(f"Image size must be a whole number of pixels from {MIN_IMGSZ} to {MAX_IMGSZ}.")
    return imgsz


def letterbox(image_rgb: np.ndarray, imgsz: int, stride: int = 32) -> torch.Tensor:
    """(1, 3, h, w) float tensor, letterboxed the way ultralytics' predictor does (rect, centred)."""
    from ultralytics.data.augment import LetterBox

    imgsz = check_image_size(imgsz)

    boxed = LetterBox((imgsz, imgsz), auto=True, stride=stride)(image=image_rgb)
    # Scaled in numpy (the same float32 division): a torch op this small still wakes PyTorch's
    # thread pool, which then competes with ONNX Runtime's spinning threads.
    chw = np.ascontiguousarray(boxed.transpose(2, 0, 1), dtype=np.float32)
    chw /= np.float32(255)
    return torch.from_numpy(chw).unsqueeze(0)


def letterbox_geometry(input_hw: tuple[int, int], original_hw: tuple[int, int]) -> tuple[float, float, int, int]:
    """(gain_x, gain_y, pad_x, pad_y) of a letterbox from ``original_hw`` to ``input_hw``:
    input pixel = original pixel * gain + pad, exactly as ultralytics' scale_boxes inverts it
    (each resized side rounded, the padding centred)."""
    (ih, iw), (h0, w0) = input_hw, original_hw
    gain = min(ih / h0, iw / w0)
    new_h, new_w = max(round(h0 * gain), 1), max(round(w0 * gain), 1)
    return new_w / w0, new_h / h0, round((iw - new_w) / 2 - 0.1), round((ih - new_h) / 2 - 0.1)


def model_stride(model: torch.nn.Module) -> int:
    return max(int(getattr(model, "stride", torch.tensor([32])).max()), 32)


_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def forward_lock(model: torch.nn.Module) -> threading.Lock:
    """The model's own lock, held for one forward. Ultralytics' Detect head caches anchors for the
    last input shape on the module, so two sessions with different image shapes must not run one
    shared model at the same moment; different models still run in parallel."""
    with _locks_guard:
        return _locks.setdefault(model, threading.Lock())


@dataclass(frozen=True)
class AttentionLayer:
    """One attention module of a model and the gates inside it."""
    name: str  # qualified module name
    layer: int  # index in the model's layer list (the CSP block, for attention inside one); -1 if none
    module: torch.nn.Module
    gates: tuple  # (qualified gate name, Gate) for each gate inside it, in model order


@dataclass(frozen=True)
class AttentionLayout:
    """Where a model's attention is: every gate (what the hooks record) and every attention module
    (whose input is recorded too), in ``named_modules`` order, the order of the exported graph's
    extra outputs."""
    gates: tuple  # (qualified name, Gate)
    layers: tuple  # AttentionLayer

    @property
    def gate_names(self) -> list[str]:
        return [n for n, _ in self.gates]

    @property
    def module_names(self) -> list[str]:
        return [lay.name for lay in self.layers]


_layouts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_layouts_lock = threading.Lock()


def attention_layout(model: torch.nn.Module) -> AttentionLayout:
    """The model's attention layout, found once per model: the analysis never changes a loaded
    model's structure (loaded models are shared, read-only), and a module scan costs ~0.6 ms,
    paid per image and model in a data-set pass otherwise."""
    with _layouts_lock:
        found = _layouts.get(model)
    if found is None:
        gates = tuple((n, m) for n, m in model.named_modules() if isinstance(m, Gate))
        layers = tuple(AttentionLayer(name, layer, module, tuple((f"{name}.{g}", m) for g, m in module.named_modules()
                                                                 if isinstance(m, Gate)))
                       for name, layer, module in attention_modules(model))
        found = AttentionLayout(gates, layers)
        with _layouts_lock:
            _layouts[model] = found
    return found


@contextmanager
def capture_gates(model: torch.nn.Module, maps: dict, inputs: dict):
    """Record every gate's output (and each attention module's input) for forwards on this thread."""
    owner = threading.get_ident()
    handles = []

    def on_gate(name):
        def hook(module, args, output):
            if threading.get_ident() == owner:
                maps[name] = output.detach().cpu()
        return hook

    def on_input(name):
        def hook(module, args):
            if threading.get_ident() == owner:
                inputs[name] = args[0].detach().cpu()
        return hook

    layout = attention_layout(model)
    try:
        for name, gate in layout.gates:
            handles.append(gate.register_forward_hook(on_gate(name)))
        for lay in layout.layers:
            handles.append(lay.module.register_forward_pre_hook(on_input(lay.name)))
        yield
    finally:
        for h in handles:
            h.remove()


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
           imgsz: int = 320, capture: bool = False, max_det: int = 300, x: torch.Tensor | None = None) -> Detections:
    """Run ``model`` on one RGB image; boxes come back in the image's own pixels.

    ``x`` is the letterboxed tensor when the caller already has it (several models, one image).
    The forward runs on ONNX Runtime once the model's checked export is ready (the maps are
    extra outputs of that graph), else on PyTorch; ``Detections.backend`` says which.
    """
    from components.analysis import onnx_backend

    x = letterbox(image_rgb, imgsz, model_stride(model)) if x is None else x
    maps, inputs = {}, {}
    t0 = time.perf_counter()
    with forward_lock(model), torch.no_grad():
        fast = onnx_backend.run(model, x, capture)
        if fast is not None:
            pred, gate_maps, gate_inputs = fast
            if capture:
                maps, inputs = gate_maps, gate_inputs
        elif capture:
            with capture_gates(model, maps, inputs):
                pred = model(x)
        else:
            pred = model(x)
        # After ORT, NMS's small ops run on one thread: a second pool would fight ORT's spinning ones.
        with one_thread() if fast is not None else nullcontext():
            det = from_prediction(model, pred, x, image_rgb, conf=conf, iou=iou, max_det=max_det)
    det.ms = (time.perf_counter() - t0) * 1000
    det.maps, det.inputs = maps, inputs
    det.backend = "onnxruntime" if fast is not None else "pytorch"
    return det


def detect_batch(model: torch.nn.Module, images_rgb: list[np.ndarray], x: torch.Tensor, *, conf: float = 0.25,
                 iou: float = 0.7, max_det: int = 300) -> list[Detections]:
    """``detect`` for several images letterboxed to one shape (``x``: (n, 3, h, w)), in one ONNX
    Runtime run when the model's graph takes batches (``Exported.batched``), else one by one.
    No maps. NMS per image, as for one; ``ms`` is the run's share per image."""
    from components.analysis import onnx_backend

    t0 = time.perf_counter()
    exported = onnx_backend.REGISTRY.session(model) if len(images_rgb) > 1 else None
    if exported is None or not exported.batched:
        return [detect(model, rgb, conf=conf, iou=iou, max_det=max_det, x=x[k:k + 1])
                for k, rgb in enumerate(images_rgb)]
    pred = exported.run(x, capture=False)[0]
    with torch.no_grad(), one_thread():
        dets = [from_prediction(model, pred[k:k + 1], x[k:k + 1], rgb, conf=conf, iou=iou, max_det=max_det)
                for k, rgb in enumerate(images_rgb)]
    for det in dets:
        det.ms, det.backend = (time.perf_counter() - t0) * 1000 / len(dets), "onnxruntime"
    return dets


def from_prediction(model: torch.nn.Module, pred, x: torch.Tensor, image_rgb: np.ndarray, *, conf: float = 0.25,
                    iou: float = 0.7, max_det: int = 300) -> Detections:
    """Detections from a forward's raw output ``pred`` on the letterboxed ``x``: NMS, then boxes
    scaled back to the image's own pixels (for a caller that ran the forward itself)."""
    import torchvision  # noqa: F401  (see below)
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import scale_boxes

    # Ultralytics' NMS runs torchvision's kernel only when torchvision is already imported; its
    # fallback is a Python loop, ~10x slower at the validation threshold (conf 0.001).
    with torch.no_grad():
        raw = pred[0] if isinstance(pred, (list, tuple)) else pred
        det = non_max_suppression(raw.detach(), conf, iou, max_det=max_det)[0]
        boxes = scale_boxes(x.shape[2:], det[:, :4].clone(), image_rgb.shape[:2]) if len(det) else det[:, :4]
    names = getattr(model, "names", {}) or {}
    classes = [str(names.get(int(c), int(c))) for c in det[:, 5].tolist()]
    return Detections(boxes.numpy().astype(np.float32), det[:, 4].numpy().astype(np.float32), classes, 0.0,
                      tuple(x.shape[2:]), tuple(image_rgb.shape[:2]))
