"""Where a model's attention is, and capturing it: the one hook keeper (``ThreadHooks``) every
map is read through (the gates' outputs, the attention modules' inputs, LayerCAM's activations),
plus the per-model lock a forward holds.

Hooks are registered for one call and removed after it. A hook acts only on forwards that run on
the thread that registered it, so two sessions sharing a model never see each other's maps.
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from attention_lens.attention import BUILT_IN_ATTENTION, Gate, attention_modules


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

    @property
    def has_self_attention(self) -> bool:
        """Whether any layer is a self-attention (the detectors' own, rebuilt with a tap)."""
        return any(isinstance(lay.module, tuple(BUILT_IN_ATTENTION.values())) for lay in self.layers)


_layouts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_layouts_lock = threading.Lock()


def attention_layout(model: torch.nn.Module) -> AttentionLayout:
    """The model's attention layout, found once per model: the analysis never changes a loaded
    model's structure (loaded models are shared, read-only), and a module scan would otherwise be
    paid per image and model in a data-set pass (docs/PERFORMANCE.md, section 11)."""
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


class ThreadHooks:
    """Forward hooks owned by one object, acting only on forwards of the thread that created it,
    all removed when its ``with`` block ends (however it ends)."""

    def __init__(self):
        self._owner = threading.get_ident()
        self._handles: list = []

    def on_output(self, module: torch.nn.Module, fn) -> None:
        """``fn(output)`` after each forward of ``module`` on the owner's thread; what it returns,
        if not None, replaces the output (as a forward hook's return value does)."""
        def hook(_module, _args, output):
            if threading.get_ident() == self._owner:
                return fn(output)
        self._handles.append(module.register_forward_hook(hook))

    def on_input(self, module: torch.nn.Module, fn) -> None:
        """``fn(first input)`` before each forward of ``module`` on the owner's thread."""
        def hook(_module, args):
            if threading.get_ident() == self._owner:
                fn(args[0])
        self._handles.append(module.register_forward_pre_hook(hook))

    def __enter__(self) -> "ThreadHooks":
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


@dataclass(frozen=True)
class Captured:
    """What one forward's capture recorded (``capture_gates``' two dicts) and the input it ran on:
    enough to derive any map view without another forward."""
    maps: dict  # gate qualified name -> its output (cpu)
    inputs: dict  # attention module name -> its input (cpu)
    input_hw: tuple[int, int]
    stretched: bool = False  # the input is RT-DETR's stretch of the image, not a letterbox


@contextmanager
def capture_gates(model: torch.nn.Module, maps: dict, inputs: dict):
    """Record every gate's output (and each attention module's input) for forwards on this thread."""
    def keep(into: dict, name: str):
        def record(t: torch.Tensor) -> None:
            into[name] = t.detach().cpu()
        return record

    layout = attention_layout(model)
    with ThreadHooks() as hooks:
        for name, gate in layout.gates:
            hooks.on_output(gate, keep(maps, name))
        for lay in layout.layers:
            hooks.on_input(lay.module, keep(inputs, lay.name))
        yield


def raw_prediction(output):
    """The raw prediction of a detection model's forward: ultralytics' eval forward returns
    (prediction, per-level outputs), an export-mode or foreign model the prediction alone."""
    return output[0] if isinstance(output, (list, tuple)) else output
