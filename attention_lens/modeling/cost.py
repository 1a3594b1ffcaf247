"""What a model would cost, measured on torch's meta device before anything real is allocated.

A checkpoint declares its architecture (a YAML, or tensor shapes for YOLOX); a few hundred bytes
of it can ask for billions of parameters or activation maps of tens of gigabytes. The loader
therefore builds every model twice: first under ``torch.device("meta")``, where tensors have
shapes and no storage, to check the weights' names and shapes against the file and to measure
the parameters and the activations of one forward; then, only if those fit, for real.

The activation figure is the sum of every module's output bytes in one forward at batch 1 (an
upper bound of what the forward allocates; its peak is lower), per input pixel, so that a request
can be checked at the image size it asks for (``ModelCost.activation_bytes``). Self-attention is
the exception: its (heads, queries, keys) matrices grow with the square of the pixels, so their
bytes are counted apart, three times (the scores, their scaled copy and the softmax; the tap
sees the last) and scaled with the fourth power of the image side.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: The largest model a checkpoint may declare (yolov8x: 68 M, rtdetr-x: 67 M).
MAX_PARAMS = 100_000_000
#: One forward's summed activation bytes a request may ask for (yolov8n at 640: ~0.2 GB).
MAX_ACTIVATION_BYTES = 3 * 2**30
#: The smallest image size the views offer: a model too large even there is refused at load.
SMALLEST_SIZE = 320
_PROBE_SIZE = 256


#: Matrices of the size of the softmax attention one self-attention forward holds at once.
ATTENTION_COPIES = 3


@dataclass(frozen=True)
class ModelCost:
    params: int
    activation_bytes_per_pixel: float
    attention_bytes_per_pixel_squared: float = 0.0  # self-attention matrices: pixels x pixels

    def activation_bytes(self, imgsz: int) -> float:
        """Summed activation bytes of one forward on an ``imgsz`` x ``imgsz`` letterbox."""
        return self.input_bytes(int(imgsz) ** 2)

    def input_bytes(self, pixels: int) -> float:
        """Summed activation bytes of one forward on an input of ``pixels`` (any shape)."""
        return self.activation_bytes_per_pixel * pixels + self.attention_bytes_per_pixel_squared * pixels ** 2

    def attention_bytes(self, imgsz: int) -> float:
        """Bytes of the softmax attention matrices alone (one copy: what a capture keeps)."""
        return self.attention_bytes_per_pixel_squared * int(imgsz) ** 4 / ATTENTION_COPIES

    def largest_size(self, budget: float, step: int = 32) -> int:
        """The largest image size (a multiple of ``step``) whose forward fits ``budget`` bytes; 0 if none."""
        size = 0
        while self.activation_bytes(size + step) <= budget and size + step <= 8192:
            size += step
        return size


class CostError(ValueError):
    """A model, or a request, that would cost more than the budget; the message names the limit."""


def on_meta() -> bool:
    """True inside ``with torch.device("meta")``: builders then skip what needs real values."""
    return torch.empty(()).device.type == "meta"


def measure(model: nn.Module) -> ModelCost:
    """Parameters and activation bytes per pixel of a model built on the meta device.

    The forward runs the body up to the head (ultralytics' routed layers, or YOLOX's backbone and
    neck): heads decode with values (anchors, strides) that meta tensors do not have, and their
    outputs are small beside the body's."""
    from attention_lens.attention import AttentionTap

    params = sum(p.numel() for p in model.parameters())
    yaml = getattr(model, "yaml", None)
    channels = (yaml.get("channels", yaml.get("ch", 3)) if isinstance(yaml, dict) else 3)
    total, attention = 0, 0

    def count(module, _inputs, output):
        nonlocal total, attention
        for t in output if isinstance(output, (list, tuple)) else (output,):
            if isinstance(t, torch.Tensor):
                if isinstance(module, AttentionTap):
                    attention += t.numel() * t.element_size()
                else:
                    total += t.numel() * t.element_size()

    hooks = [m.register_forward_hook(count) for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            x = torch.zeros(1, channels, _PROBE_SIZE, _PROBE_SIZE, device="meta")
            layers = getattr(model, "model", None)
            if isinstance(layers, nn.Sequential):
                _routed(layers, x)
            else:
                model.backbone(x)
    finally:
        for h in hooks:
            h.remove()
    return ModelCost(params, total / _PROBE_SIZE ** 2, ATTENTION_COPIES * attention / _PROBE_SIZE ** 4)


def _routed(layers: nn.Sequential, x: torch.Tensor) -> None:
    """Ultralytics' routing (``m.f``: -1, an index, or a list) through every layer but the head."""
    outputs = []
    for m in layers[:-1]:
        f = getattr(m, "f", -1)
        if f != -1:
            x = outputs[f] if isinstance(f, int) else [x if j == -1 else outputs[j] for j in f]
        m.eval()
        x = m(x)
        outputs.append(x)


def check_model(cost: ModelCost, label: str) -> None:
    """Refuse a model larger than the budget, at the smallest image size the views offer."""
    if cost.params > MAX_PARAMS:
        raise CostError(f"{label}: its architecture declares {cost.params / 1e6:.0f} M parameters; at most "
                        f"{MAX_PARAMS // 1_000_000} M are accepted (nothing was built)")
    need = cost.activation_bytes(SMALLEST_SIZE)
    if need > MAX_ACTIVATION_BYTES:
        raise CostError(f"{label}: one forward at {SMALLEST_SIZE} px would take {need / 2**30:.1f} GB of "
                        f"activations; at most {MAX_ACTIVATION_BYTES / 2**30:.0f} GB are accepted (nothing was built)")


def check_request(models: dict[str, nn.Module], imgsz: int) -> None:
    """Refuse a request whose forwards at ``imgsz`` would exceed the activation budget."""
    for name, model in models.items():
        cost = getattr(model, "cost", None)
        if cost is not None and cost.activation_bytes(imgsz) > MAX_ACTIVATION_BYTES:
            fits = cost.largest_size(MAX_ACTIVATION_BYTES)
            raise CostError(f"{name} at {int(imgsz)} px would take {cost.activation_bytes(imgsz) / 2**30:.1f} GB of "
                            f"activations (the limit is {MAX_ACTIVATION_BYTES / 2**30:.0f} GB); pick {fits} px or less.")
