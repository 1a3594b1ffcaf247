"""The self-attention ultralytics' detectors carry, swapped for this project's tapped rebuilds.

A model built from its YAML by ultralytics' parser holds ultralytics' ``Attention`` (inside PSA,
PSABlock, C2PSA, C2fPSA) and ``AAttn`` (inside YOLO12's ABlock, A2C2f). Right after the build, and
before any weights are copied, each is replaced by ``attention_lens.attention.SelfAttention`` or
``AreaAttention``: the same parameter names and shapes (so the checkpoint's tensors load as they
are) and the same forward, with a tap on the softmax. Nothing of ultralytics is patched: only the
freshly built module object is exchanged, found by its class, never by a name from the file.
"""
from __future__ import annotations

from torch import nn

from attention_lens.attention import AreaAttention, SelfAttention


def adopt_built_in_attention(model: nn.Module) -> list[str]:
    """Swap every ultralytics ``Attention`` / ``AAttn`` in ``model`` for ours; a note per swap."""
    from ultralytics.nn.modules.block import AAttn, Attention

    notes = []
    for name, module in list(model.named_modules()):
        if type(module) is Attention:
            dim = module.qkv.conv.in_channels
            ours = SelfAttention(dim, module.num_heads, module.key_dim / module.head_dim)
            what = "ultralytics Attention (YOLOv10 PSA / PSABlock)"
        elif type(module) is AAttn:
            ours = AreaAttention(module.qkv.conv.in_channels, module.num_heads, module.area)
            what = f"ultralytics AAttn (YOLO12 area attention, {module.area} area(s))"
        else:
            continue
        theirs = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        if {k: tuple(v.shape) for k, v in ours.state_dict().items() if not k.startswith("tap.")} != theirs:
            raise ValueError(f"{name}: its self-attention has a layout Attention Lens cannot rebuild")
        ours.load_state_dict(module.state_dict())  # whatever it holds now (the checkpoint's come later)
        ours.train(module.training)
        ours.loaded_as = f"{what}, rebuilt with a tap on its softmax"
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, ours)
        notes.append(f"{name}: {ours.loaded_as}")
    return notes
