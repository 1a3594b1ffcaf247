"""Where the models run: one setting for the process (``--device`` of the app and the CLI, or
``$ATTENTION_LENS_DEVICE``): ``auto`` (the first CUDA device torch sees, else the CPU), ``cpu``,
``cuda`` or ``cuda:N``.

Models are placed once, when they are loaded (``modeling.catalog.prepare``); everything after
follows the model: inputs go to the model's device (``model_device``), outputs and captured maps
come back to the CPU. ONNX Runtime stays the CPU path (runtime.onnx_backend).
"""
from __future__ import annotations

import os
import re
import threading

import torch

DEVICE_ENV = "ATTENTION_LENS_DEVICE"
CHOICES = "auto, cpu, cuda, cuda:N or N (ultralytics' spelling of cuda:N)"


class DeviceError(ValueError):
    """A device setting this machine cannot honour; the message says why."""


def resolve_device(setting: str | None = None) -> torch.device:
    """The device ``setting`` names (None: ``$ATTENTION_LENS_DEVICE``, else ``auto``)."""
    text = (setting if setting is not None else os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d{1,2}))?|(\d{1,2})", text)
    if match is None:
        raise DeviceError(f"device {text[:20]!r}: expected {CHOICES}")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {text!r}: torch sees no CUDA device here (use cpu or auto)")
    index = int(match.group(1) or match.group(2) or 0)
    if index >= torch.cuda.device_count():
        raise DeviceError(f"device {text!r}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", index)


_chosen: list[torch.device] = []
_lock = threading.Lock()


def set_device(setting: str | None) -> torch.device:
    """Fix the process's device (the app's and CLI's ``--device``); returns it. Raises DeviceError."""
    device = resolve_device(setting)
    with _lock:
        _chosen[:] = [device]
    return device


def default_device() -> torch.device:
    """The process's device: what ``set_device`` fixed, else ``resolve_device()`` (read once)."""
    with _lock:
        if not _chosen:
            _chosen.append(resolve_device())
        return _chosen[0]


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's parameters are on (the CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def ultralytics_device(device: torch.device) -> str:
    """The same device as ultralytics' ``device=`` argument spells it: "cpu" or a CUDA index."""
    return "cpu" if device.type == "cpu" else str(device.index or 0)


def device_label(device: torch.device) -> str:
    """How the page and the JSON name a device: "cpu", or "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
