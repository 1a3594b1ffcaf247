"""Other code bases' attention classes, mapped onto this project's modules from their tensors.

A tutorial's EMA, SE, PSA, ECA or CoordAtt pasted into a fork (at any module path), the EMA
tutorial's C3 blocks with EMA inside, and ultralytics' own CBAM: each mapper reads the layer's
hyper-parameters from its tensors' shapes (and a few plain attributes), and says how the YAML row
and the tensor names become ours; None where the layout is not the one it knows. Each mapping is
exact (tests compare outputs with the original classes); where the original differs from the
paper the layer is loaded as what it is, and the note says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from attention_lens.attention import LAYER_CLASSES
from attention_lens.modeling.checkpoints import PickledObject
from attention_lens.modeling.integration import CSP_ATTENTION


@dataclass
class Mapped:
    """How one foreign layer becomes ours: the YAML row's name and args, and its tensors renamed."""

    name: str
    args: list
    tensors: dict[str, torch.Tensor]
    note: str
    keep_repeats: bool = False  # a CSP block: the row's repeat count stays


def _keys(t, *names):
    return all(n in t for n in names)


def map_ema(layer: PickledObject, t: dict) -> Mapped | None:
    if not _keys(t, "conv1x1.weight", "conv3x3.weight", "gn.weight"):
        return None
    groups = layer.attr("groups")
    if not isinstance(groups, int) or groups < 1:
        return None
    return Mapped("EMA", [groups], dict(t), f"{layer.path} (EMA, {groups} groups)")


def map_se(layer: PickledObject, t: dict) -> Mapped | None:
    for a, b in (("l1", "l2"), ("fc.0", "fc.2"), ("fc1", "fc2"), ("excitation.0", "excitation.2")):
        w1, w2 = t.get(f"{a}.weight"), t.get(f"{b}.weight")
        if w1 is not None and w2 is not None and w1.dim() == 2 and w2.dim() == 2 and len(t) <= 4:
            hidden, c = w1.shape
            if tuple(w2.shape) != (c, hidden) or c // (c // hidden) != hidden:
                return None
            b1, b2 = t.get(f"{a}.bias"), t.get(f"{b}.bias")
            note = f"{layer.path} (SE, r={c // hidden})"
            if b1 is None and b2 is None:
                note += ": no biases in the original, loaded as zero biases (the same function)"
            return Mapped("SE", [c // hidden], {
                "fc1.weight": w1, "fc1.bias": b1 if b1 is not None else torch.zeros(hidden),
                "fc2.weight": w2, "fc2.bias": b2 if b2 is not None else torch.zeros(c)}, note)
    return None


def map_polarized(layer: PickledObject, t: dict) -> Mapped | None:
    names = ("ch_wv", "ch_wq", "ch_wz", "sp_wv", "sp_wq")
    if not all(f"{n}.weight" in t and f"{n}.bias" in t for n in names) or "ln.weight" not in t:
        return None
    layout = "parallel" if "parallel" in layer.name.lower() else "sequential"
    return Mapped("PolarizedSA", [layout], dict(t), f"{layer.path} (polarized self-attention, {layout})")


def map_eca(layer: PickledObject, t: dict) -> Mapped | None:
    w = t.get("conv.weight")
    if w is None or len(t) != 1 or w.dim() != 3 or w.shape[:2] != (1, 1):
        return None
    return Mapped("ECA", [int(w.shape[-1])], dict(t), f"{layer.path} (ECA, k={w.shape[-1]})")


def map_coordatt(layer: PickledObject, t: dict) -> Mapped | None:
    if not _keys(t, "conv1.weight", "conv1.bias", "bn1.weight", "conv_h.weight", "conv_w.weight"):
        return None
    mip, c = t["conv1.weight"].shape[:2]
    r = next((r for r in [32, *range(1, c + 1)] if max(8, c // r) == mip), None)
    if r is None:
        return None
    return Mapped("CoordAtt", [r], dict(t), f"{layer.path} (coordinate attention, r={r})")


def map_ultralytics_cbam(layer: PickledObject, t: dict) -> Mapped | None:
    w = t.get("spatial_attention.cv1.weight")
    if w is None or not _keys(t, "channel_attention.fc.weight", "channel_attention.fc.bias") or len(t) != 3:
        return None
    return Mapped("UltralyticsCBAM", [int(w.shape[-1])], dict(t),
                  f"{layer.path} (ultralytics' CBAM: mean-pooled channel gate, 1x1 conv; not the paper's)")


#: The EMA tutorial's C3 blocks with EMA inside -> (our CSP position, the wrapped conv).
C3_EMA_POSITIONS = {"C3_EMA1": ("main", "cv1"), "C3_EMA2": ("shortcut", "cv2"), "C3_EMA3": ("concat", "cv3")}


def map_c3_ema(layer: PickledObject, t: dict, row: list) -> Mapped | None:
    position, conv = C3_EMA_POSITIONS[layer.name]
    ema = {k[len("m1.0."):]: v for k, v in t.items() if k.startswith("m1.0.")}
    children = layer.children().get("m1")
    groups = (children.children().get("0") if children else None)
    groups = groups.attr("groups") if groups else None
    if not {"conv1x1.weight", "conv3x3.weight", "gn.weight"} <= set(ema) or not isinstance(groups, int):
        return None
    inner, outer = ("1", "0") if position == "main" else ("0", "1")  # main: Sequential(cv1, EMA); else (EMA, conv)
    renamed = {}
    for k, v in t.items():
        if k.startswith("m1.0."):
            renamed[f"{conv}.{inner}.{k[len('m1.0.'):]}"] = v
        elif k.startswith(f"{conv}."):
            renamed[f"{conv}.{outer}.{k[len(conv) + 1:]}"] = v
        else:
            renamed[k] = v
    return Mapped(CSP_ATTENTION, ["C3", list(row[3]), "EMA", [groups], position], renamed,
                  f"{layer.path} (C3 with EMA, {groups} groups, position {position})", keep_repeats=True)


#: Class names other code bases give their attention layers -> mapper (tried on the tensors).
FOREIGN = {
    "EMA": map_ema, "EMA_attention": map_ema,
    "SE": map_se, "SEAttention": map_se, "SELayer": map_se, "SEBlock": map_se,
    "PSA": map_polarized, "PolarizedSelfAttention": map_polarized,
    "SequentialPolarizedSelfAttention": map_polarized, "ParallelPolarizedSelfAttention": map_polarized,
    "ECA": map_eca, "ECAAttention": map_eca, "eca_layer": map_eca,
    "CoordAtt": map_coordatt, "CA": map_coordatt, "CoordAttention": map_coordatt,
    "CBAM": map_ultralytics_cbam,
}


def known_names() -> list[str]:
    return sorted(set(FOREIGN) | set(LAYER_CLASSES) | set(C3_EMA_POSITIONS))
