"""Attention modules for YOLO detectors, one file per mechanism.

- the tutorials' plug-in modules: ``se``, ``cbam`` (and ``ultralytics_cbam``, the layout
  ultralytics ships), ``eca``, ``coord_att``, ``ema``, ``polarized_sa``
- ``self_attention``: ultralytics' ``Attention`` and ``AAttn`` rebuilt with a tap on the softmax
- ``encoder_attention``: RT-DETR's encoder layer (ultralytics' ``AIFI``) rebuilt the same way
- ``gate``: where every map passes, so forward hooks can read it

Every module takes the input channel count first and keeps the input shape.
"""
from __future__ import annotations

from torch import nn

from .cbam import CBAM
from .coord_att import CoordAtt
from .eca import ECA
from .ema import EMA
from .encoder_attention import EncoderSelfAttention, TappedMultiheadAttention
from .gate import GATE_KINDS, Gate, gates_of
from .polarized_sa import PolarizedSA
from .se import SE
from .self_attention import AreaAttention, AttentionTap, SelfAttention
from .ultralytics_cbam import UltralyticsCBAM, _ChannelPart, _SpatialPart

#: The module a checkpoint names for every class of this package. Pickle records a class by its
#: module; where that module is missing, plain ultralytics pip-installs a package of the same name
#: (its AutoInstall, on by default). A name that begins with an underscore is not a valid package
#: name (PEP 508), so no package index can serve one: where the project is absent, loading one of
#: its checkpoints fails with "No module named '_attention_lens'" and installs nothing. The
#: top-level ``_attention_lens`` package re-exports these classes under that name.
CHECKPOINT_MODULE = "_attention_lens"

#: Where earlier versions' checkpoints name these classes; the loader reads them as the same classes
#: (by class name, from its own table, as for any checkpoint).
LEGACY_CHECKPOINT_MODULES = ("attention_lens.attention", "components.attention")

#: Every module class defined in this package: what a checkpoint may pickle.
CHECKPOINT_CLASSES: dict[str, type[nn.Module]] = {cls.__name__: cls for cls in (
    SE, CBAM, ECA, CoordAtt, EMA, PolarizedSA, Gate, AttentionTap, SelfAttention, AreaAttention,
    EncoderSelfAttention, TappedMultiheadAttention, UltralyticsCBAM, _ChannelPart, _SpatialPart)}
for _cls in CHECKPOINT_CLASSES.values():
    _cls.__module__ = CHECKPOINT_MODULE

#: YAML name -> class. The names are what model YAML rows use.
ATTENTION_MODULES: dict[str, type[nn.Module]] = {
    "SE": SE,
    "CBAM": CBAM,
    "ECA": ECA,
    "CoordAtt": CoordAtt,
    "EMA": EMA,
    "PolarizedSA": PolarizedSA,
}

#: Every attention layer a model YAML may name: the six above, plus the forms other code bases
#: ship that differ from the paper, kept under their own names (loaded from checkpoints as they are).
LAYER_CLASSES: dict[str, type[nn.Module]] = {**ATTENTION_MODULES, "UltralyticsCBAM": UltralyticsCBAM}


#: The self-attention detectors ship with, rebuilt by the loader from ultralytics' classes (never a
#: YAML row: they sit inside C2PSA, PSA, A2C2f blocks; RT-DETR's AIFI is one). Ultralytics class name -> ours.
BUILT_IN_ATTENTION: dict[str, type[nn.Module]] = {"Attention": SelfAttention, "AAttn": AreaAttention,
                                                  "AIFI": EncoderSelfAttention}


def create_attention(name: str, channels: int, *args, **kwargs) -> nn.Module:
    """Build the attention module registered as ``name`` for ``channels`` input channels."""
    try:
        cls = ATTENTION_MODULES[name]
    except KeyError:
        raise ValueError(f"unknown attention {name!r}; expected one of {list(ATTENTION_MODULES)}") from None
    return cls(channels, *args, **kwargs)


def attention_modules(model: nn.Module, built_in: bool = True) -> list[tuple[str, int, nn.Module]]:
    """(qualified name, layer index, module) for every attention module in a detection model;
    without ``built_in``, only the modules added to it (what makes a variant of its base), not the
    self-attention its base ships with (YOLO11's C2PSA, YOLO12's area attention)."""
    types = tuple(LAYER_CLASSES.values()) + (tuple(BUILT_IN_ATTENTION.values()) if built_in else ())
    found = []
    for name, module in model.named_modules():
        if isinstance(module, types):
            parts = name.split(".")
            layer = int(parts[1]) if len(parts) > 1 and parts[0] == "model" and parts[1].isdigit() else -1
            found.append((name, layer, module))
    return found


__all__ = ["CHECKPOINT_MODULE", "LEGACY_CHECKPOINT_MODULES", "CHECKPOINT_CLASSES", "ATTENTION_MODULES", "LAYER_CLASSES", "BUILT_IN_ATTENTION", "SelfAttention", "AreaAttention", "EncoderSelfAttention", "AttentionTap", "UltralyticsCBAM", "GATE_KINDS", "Gate", "gates_of", "create_attention",
           "attention_modules", "SE", "CBAM", "ECA", "CoordAtt", "EMA", "PolarizedSA"]
