"""A model's identity for caches: everything its outputs depend on, never its name.

Two models share a key only when they compute the same thing: the same module types and
settings (``extra_repr``), the same wiring (ultralytics' ``from`` indices and the architecture
dict the model was built from) and the same tensors (names, dtypes, shapes, bytes). A rewired
upload (one Concat's ``from`` changed, same weights) therefore gets a key of its own (issue 31).
"""
from __future__ import annotations

import hashlib
import json
import threading
import weakref

import torch

#: Plain attributes of a module that route data between layers (ultralytics' ``m.f``, ``m.i``).
_WIRING = ("f", "i")


def model_identity(model: torch.nn.Module, salt: str = "") -> str:
    """sha256 (hex) over ``salt``, the model's structure, wiring and tensors."""
    h = hashlib.sha256(salt.encode())
    h.update(type(model).__qualname__.encode())
    yaml = getattr(model, "yaml", None)
    if isinstance(yaml, dict):
        h.update(json.dumps(yaml, sort_keys=True, default=str).encode())
    for name, m in model.named_modules():
        wiring = [getattr(m, a, None) for a in _WIRING]
        h.update(f"{name}:{type(m).__module__}.{type(m).__qualname__}:{m.extra_repr()}:{wiring}\n".encode())
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


_known: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_known_lock = threading.Lock()


def loaded_identity(model: torch.nn.Module, salt: str = "") -> str:
    """``model_identity`` of a loaded model, hashed once per model object (a loaded model is shared
    and never changed: every cache keyed by it, the ONNX graphs and a split's detections, asks
    here instead of hashing every tensor again). ``salt`` is hashed with it, not into it."""
    with _known_lock:
        found = _known.get(model)
    if found is None:
        found = model_identity(model)
        with _known_lock:
            _known[model] = found
    return hashlib.sha256(f"{salt}{found}".encode()).hexdigest() if salt else found
