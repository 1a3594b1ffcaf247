"""The self-attention ultralytics' detectors carry, swapped for this project's tapped rebuilds.

A model built from its YAML by ultralytics' parser holds ultralytics' ``Attention`` (inside PSA,
PSABlock, C2PSA, C2fPSA), ``AAttn`` (inside YOLO12's ABlock, A2C2f) or ``AIFI`` (RT-DETR's encoder
layer, a YAML row). Right after the build, and before any weights are copied, each is replaced by
``attention_lens.attention.SelfAttention``, ``AreaAttention`` or ``EncoderSelfAttention``: the same
parameter names and shapes (so the checkpoint's tensors load as they are) and the same forward,
with a tap on the softmax. Nothing of ultralytics is patched: only the
freshly built module object is exchanged, found by its class, never by a name from the file.
"""
from __future__ import annotations

from torch import nn

from attention_lens.attention import AreaAttention, EncoderSelfAttention, SelfAttention


def adopt_built_in_attention(model: nn.Module) -> list[str]:
    """Swap every ultralytics ``Attention`` / ``AAttn`` in ``model`` for ours; a note per swap."""
    from ultralytics.nn.modules.block import AAttn, Attention
    from ultralytics.nn.modules.transformer import AIFI

    notes = []
    for name, module in list(model.named_modules()):
        if type(module) is Attention:
            dim = module.qkv.conv.in_channels
            ours = SelfAttention(dim, module.num_heads, module.key_dim / module.head_dim)
            what = "ultralytics Attention (YOLOv10 PSA / PSABlock)"
        elif type(module) is AAttn:
            ours = AreaAttention(module.qkv.conv.in_channels, module.num_heads, module.area)
            what = f"ultralytics AAttn (YOLO12 area attention, {module.area} area(s))"
        elif type(module) is AIFI:
            ma = module.ma
            if not ma.batch_first or ma.in_proj_weight is None or ma.bias_k is not None or not ma._qkv_same_embed_dim:
                raise ValueError(f"{name}: its encoder attention has a layout Attention Lens cannot rebuild")
            # ``act`` is the activation ultralytics' parser just built from the checked YAML (GELU by default).
            ours = EncoderSelfAttention(ma.embed_dim, module.fc1.out_features, ma.num_heads, module.act,
                                        module.normalize_before)
            what = "ultralytics AIFI (RT-DETR encoder self-attention on P5)"
        else:
            continue
        theirs = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        if {k: tuple(v.shape) for k, v in ours.state_dict().items()} != theirs:
            raise ValueError(f"{name}: its self-attention has a layout Attention Lens cannot rebuild")
        ours.load_state_dict(module.state_dict())  # whatever it holds now (the checkpoint's come later)
        ours.train(module.training)
        for attr in ("i", "f", "type", "np"):  # a YAML row's routing (AIFI is one), as the parser set it
            if hasattr(module, attr):
                setattr(ours, attr, getattr(module, attr))
        ours.loaded_as = f"{what}, rebuilt with a tap on its softmax"
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, ours)
        notes.append(f"{name}: {ours.loaded_as}")
    return notes
