"""Megvii YOLOX detectors, built here from a state dict (YOLOX .pth files store no architecture).

YOLOX (Ge et al., 2021, arXiv 2107.08430): a CSPDarknet backbone (Focus stem, four CSP stages,
SPP in the last), a PAFPN neck, and a decoupled anchor-free head (per level: a 1x1 stem, then a
classification branch and a regression branch of two 3x3 convs each, predicting class logits,
box offsets and objectness). Boxes decode as xy = (t_xy + cell) * stride, wh = exp(t_wh) * stride.

Everything about the model is read from the tensors: the width from the stem's channels, the
depth from the number of bottlenecks, depthwise convs (nano) from their names, the classes from
the classification convs. Attention on the three backbone outputs, as the YOLOX tutorial adds it
(modules on YOLOPAFPN applied to dark3/4/5 before the neck), is found by tensor layout and placed
by its channel count; each form is loaded as what it is (``loaded_as`` says how).

Eval output is what the rest of the app expects from a head: (b, 4 + nc, n), xywh in input pixels
and per-class scores, a class score being objectness times class probability (as YOLOX scores a box).
"""
from __future__ import annotations

import re

import torch
from torch import nn
from ultralytics.nn.modules.conv import Conv, Focus  # same math and parameter names as YOLOX's

from attention_lens.attention import CBAM, ECA, SE, CoordAtt
from attention_lens.modeling.checkpoints import CheckpointError


class DWConv(nn.Module):
    """A depthwise kxk conv then a pointwise 1x1 conv, each with BN and SiLU."""

    def __init__(self, c1: int, c2: int, k: int, s: int = 1):
        super().__init__()
        self.dconv = Conv(c1, c1, k, s, g=c1)
        self.pconv = Conv(c1, c2, 1, 1)

    def forward(self, x):
        return self.pconv(self.dconv(x))


def _conv(depthwise: bool):
    return DWConv if depthwise else Conv


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool, depthwise: bool):
        super().__init__()
        self.conv1 = Conv(c1, c2, 1, 1)
        self.conv2 = _conv(depthwise)(c2, c2, 3, 1)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return x + y if self.add else y


class CSPLayer(nn.Module):
    """Two 1x1 branches, n bottlenecks on the first, concatenated and fused by a 1x1 conv."""

    def __init__(self, c1: int, c2: int, n: int, shortcut: bool, depthwise: bool):
        super().__init__()
        h = c2 // 2
        self.conv1, self.conv2, self.conv3 = Conv(c1, h, 1, 1), Conv(c1, h, 1, 1), Conv(2 * h, c2, 1, 1)
        self.m = nn.Sequential(*(Bottleneck(h, h, shortcut, depthwise) for _ in range(n)))

    def forward(self, x):
        return self.conv3(torch.cat((self.m(self.conv1(x)), self.conv2(x)), 1))


class SPPBottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, kernels=(5, 9, 13)):
        super().__init__()
        h = c1 // 2
        self.conv1 = Conv(c1, h, 1, 1)
        self.m = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.conv2 = Conv(h * (len(kernels) + 1), c2, 1, 1)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [m(x) for m in self.m], 1))


class CSPDarknet(nn.Module):
    def __init__(self, base: int, depth: int, depthwise: bool):
        super().__init__()
        C = _conv(depthwise)
        self.stem = Focus(3, base, 3)
        self.dark2 = nn.Sequential(C(base, base * 2, 3, 2), CSPLayer(base * 2, base * 2, depth, True, depthwise))
        self.dark3 = nn.Sequential(C(base * 2, base * 4, 3, 2), CSPLayer(base * 4, base * 4, depth * 3, True, depthwise))
        self.dark4 = nn.Sequential(C(base * 4, base * 8, 3, 2), CSPLayer(base * 8, base * 8, depth * 3, True, depthwise))
        self.dark5 = nn.Sequential(C(base * 8, base * 16, 3, 2), SPPBottleneck(base * 16, base * 16),
                                   CSPLayer(base * 16, base * 16, depth, False, depthwise))

    def forward(self, x):
        x3 = self.dark3(self.dark2(self.stem(x)))
        x4 = self.dark4(x3)
        return x3, x4, self.dark5(x4)


class PAFPN(nn.Module):
    """Top-down then bottom-up fusion of dark3/4/5; ``attention`` maps a level (3, 4, 5) to the
    module applied to that backbone output first (the tutorial's placement)."""

    def __init__(self, base: int, depth: int, neck_depth: int, depthwise: bool):
        super().__init__()
        c3, c4, c5 = base * 4, base * 8, base * 16
        C = _conv(depthwise)
        self.backbone = CSPDarknet(base, depth, depthwise)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = Conv(c5, c4, 1, 1)
        self.C3_p4 = CSPLayer(2 * c4, c4, neck_depth, False, depthwise)
        self.reduce_conv1 = Conv(c4, c3, 1, 1)
        self.C3_p3 = CSPLayer(2 * c3, c3, neck_depth, False, depthwise)
        self.bu_conv2 = C(c3, c3, 3, 2)
        self.C3_n3 = CSPLayer(2 * c3, c4, neck_depth, False, depthwise)
        self.bu_conv1 = C(c4, c4, 3, 2)
        self.C3_n4 = CSPLayer(2 * c4, c5, neck_depth, False, depthwise)
        self.attention_at: dict[int, str] = {}  # level -> attribute name of its attention module

    def forward(self, x):
        feats = list(self.backbone(x))
        for level, name in self.attention_at.items():
            feats[level - 3] = getattr(self, name)(feats[level - 3])
        x3, x4, x5 = feats
        fpn0 = self.lateral_conv0(x5)
        f4 = self.C3_p4(torch.cat([self.upsample(fpn0), x4], 1))
        fpn1 = self.reduce_conv1(f4)
        p3 = self.C3_p3(torch.cat([self.upsample(fpn1), x3], 1))
        p4 = self.C3_n3(torch.cat([self.bu_conv2(p3), fpn1], 1))
        p5 = self.C3_n4(torch.cat([self.bu_conv1(p4), fpn0], 1))
        return p3, p4, p5


class DecoupledHead(nn.Module):
    def __init__(self, nc: int, channels: list[int], hidden: int, depthwise: bool):
        super().__init__()
        C = _conv(depthwise)
        self.nc = nc
        self.stems = nn.ModuleList(Conv(c, hidden, 1, 1) for c in channels)
        self.cls_convs = nn.ModuleList(nn.Sequential(C(hidden, hidden, 3, 1), C(hidden, hidden, 3, 1)) for _ in channels)
        self.reg_convs = nn.ModuleList(nn.Sequential(C(hidden, hidden, 3, 1), C(hidden, hidden, 3, 1)) for _ in channels)
        self.cls_preds = nn.ModuleList(nn.Conv2d(hidden, nc, 1) for _ in channels)
        self.reg_preds = nn.ModuleList(nn.Conv2d(hidden, 4, 1) for _ in channels)
        self.obj_preds = nn.ModuleList(nn.Conv2d(hidden, 1, 1) for _ in channels)
        self.register_buffer("strides", torch.tensor([8.0, 16.0, 32.0]), persistent=False)

    def forward(self, feats):
        out = []
        for k, x in enumerate(feats):
            x = self.stems[k](x)
            reg = self.reg_convs[k](x)
            box, obj = self.reg_preds[k](reg), self.obj_preds[k](reg).sigmoid()
            cls = self.cls_preds[k](self.cls_convs[k](x)).sigmoid()
            b, _, h, w = box.shape
            ys, xs = torch.meshgrid(torch.arange(h, dtype=box.dtype), torch.arange(w, dtype=box.dtype), indexing="ij")
            cell = torch.stack((xs, ys)).view(1, 2, h, w)
            s = self.strides[k]
            xy, wh = (box[:, :2] + cell) * s, box[:, 2:].exp() * s
            out.append(torch.cat((xy, wh, cls * obj), 1).flatten(2))
        return torch.cat(out, 2)


class YOLOXModel(nn.Module):
    """A YOLOX detector: ``backbone`` (PAFPN with its CSPDarknet) and ``head``, YOLOX's own names."""

    def __init__(self, nc: int, base: int, depth: int, neck_depth: int, hidden: int, depthwise: bool):
        super().__init__()
        self.backbone = PAFPN(base, depth, neck_depth, depthwise)
        self.head = DecoupledHead(nc, [base * 4, base * 8, base * 16], hidden, depthwise)
        self.stride = torch.tensor([8.0, 16.0, 32.0])
        self.base_name = "yolox-nano" if depthwise else "yolox-" + {24: "tiny", 32: "s", 48: "m", 64: "l", 80: "x"}.get(
            base, f"w{base}")

    def forward(self, x):
        return self.head(self.backbone(x))

    def detect_inputs(self) -> list[nn.Module]:
        """The layers whose outputs feed the head (for LayerCAM)."""
        return [self.backbone.C3_p3, self.backbone.C3_n3, self.backbone.C3_n4]


# ----------------------------------------------------------------------------- from a state dict
_NECK = {"backbone", "upsample", "lateral_conv0", "C3_p4", "reduce_conv1", "C3_p3", "bu_conv2", "C3_n3", "bu_conv1",
         "C3_n4"}


def is_yolox_state(sd: dict) -> bool:
    return "backbone.backbone.stem.conv.conv.weight" in sd and any(k.startswith("head.cls_preds.") for k in sd)


def build_yolox(sd: dict[str, torch.Tensor], label: str) -> YOLOXModel:
    """The YOLOX model the state dict describes, its weights copied in with strict checks."""
    from attention_lens.modeling.checkpoints import copy_weights

    base = sd["backbone.backbone.stem.conv.conv.weight"].shape[0]
    depthwise = "backbone.backbone.dark2.0.dconv.conv.weight" in sd
    depth = _count(sd, r"backbone\.backbone\.dark2\.1\.m\.(\d+)\.")
    neck_depth = _count(sd, r"backbone\.C3_p4\.m\.(\d+)\.")
    nc = sd["head.cls_preds.0.weight"].shape[0]
    hidden = sd["head.stems.0.conv.weight"].shape[0]
    if not (0 < base <= 256 and 0 < depth <= 16 and 0 < neck_depth <= 16 and 0 < nc <= 10000 and hidden <= 1024):
        raise CheckpointError(f"{label}: its tensors do not describe a YOLOX model this project builds")
    model = YOLOXModel(nc, base, depth, neck_depth, hidden, depthwise)
    for m in model.modules():  # YOLOX's Exp.get_model sets these on every BN; eps is not in the state dict
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
    tensors = dict(sd)
    notes = []
    for name in sorted({k.split(".")[1] for k in sd if k.startswith("backbone.")} - _NECK):
        prefix = f"backbone.{name}."
        sub = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        module, mapped, note = map_tutorial_attention(sub)
        if module is None:
            raise CheckpointError(f"{label}: backbone.{name} is an attention layer Attention Lens cannot map "
                                  f"(tensors: {sorted(sub)[:6]})")
        level = ({base * 4: 3, base * 8: 4, base * 16: 5}.get(module.channels) if module.channels else
                 {"0": 5, "1": 4, "2": 3}.get(name[-1]))  # the tutorial's X0, X1, X2 on dark5, dark4, dark3
        if level is None or level in model.backbone.attention_at:
            raise CheckpointError(f"{label}: backbone.{name} fits none of the three backbone outputs")
        module.loaded_as = f"YOLOX tutorial {name}: {note}"
        model.backbone.add_module(name, module)
        model.backbone.attention_at[level] = name
        for k in sub:
            tensors.pop(prefix + k)
        tensors.update({prefix + k: v for k, v in mapped.items()})
        notes.append(f"{name} on dark{level}: {note}")
    model.backbone.attention_at = dict(sorted(model.backbone.attention_at.items()))
    copy_weights(model, tensors, label)
    model.load_notes = notes
    model.source_format = "YOLOX"
    model.names = {i: str(i) for i in range(nc)}
    return model


def _count(sd: dict, pattern: str) -> int:
    found = {int(m.group(1)) for k in sd for m in [re.match(pattern, k)] if m}
    return max(found) + 1 if found else 0


def map_tutorial_attention(t: dict[str, torch.Tensor]):
    """(module of ours, its tensors, note) for the YOLOX tutorial's CAM, SE, ECA or CBAM; (None, ...) else."""
    if {"conv_1x1.weight", "F_h.weight", "F_w.weight"} <= set(t):  # CAM: coordinate attention, its own form
        mip, c = t["conv_1x1.weight"].shape[:2]
        m = CoordAtt(c)
        m.conv1 = nn.Conv2d(c, mip, 1)  # bias-free in the tutorial: zero biases below
        m.bn1 = nn.Identity()  # defined but never applied in the tutorial
        m.act = nn.Mish()
        m.conv_h, m.conv_w = nn.Conv2d(mip, c, 1), nn.Conv2d(mip, c, 1)
        m.channels = c
        mapped = {"conv1.weight": t["conv_1x1.weight"], "conv1.bias": torch.zeros(mip),
                  "conv_h.weight": t["F_h.weight"], "conv_h.bias": torch.zeros(c),
                  "conv_w.weight": t["F_w.weight"], "conv_w.bias": torch.zeros(c)}
        return m, mapped, (f"coordinate attention as the tutorial writes it (Mish, {mip} mid channels, no BN "
                           "applied, no biases); its unused BN is not loaded")
    if {"fc.0.weight", "fc.2.weight"} == set(t):  # SE, bias-free
        hidden, c = t["fc.0.weight"].shape
        m = SE(c, c // hidden)
        m.channels = c
        return m, {"fc1.weight": t["fc.0.weight"], "fc1.bias": torch.zeros(hidden), "fc2.weight": t["fc.2.weight"],
                   "fc2.bias": torch.zeros(c)}, f"SE, r={c // hidden}, no biases (loaded as zero biases)"
    if set(t) == {"conv.weight"} and t["conv.weight"].dim() == 3:  # ECA
        k = t["conv.weight"].shape[-1]
        m = ECA(1, k)
        m.channels = None  # ECA is channel-agnostic: placed by the caller's remaining level
        return m, dict(t), f"ECA, k={k}"
    keys = {"channelattention.fc1.weight", "channelattention.fc2.weight", "spatialattention.conv1.weight"}
    if keys == set(t):  # CBAM: the paper's channel gate (bias-free MLP), a spatial gate without BN
        w1 = t["channelattention.fc1.weight"]
        hidden, c = w1.shape[:2]
        k = t["spatialattention.conv1.weight"].shape[-1]
        m = CBAM(c, c // hidden, k)
        m.spatial_bn = nn.Identity()
        m.channels = c
        w_sp = t["spatialattention.conv1.weight"]
        return m, {"fc1.weight": w1.flatten(1), "fc1.bias": torch.zeros(hidden),
                   "fc2.weight": t["channelattention.fc2.weight"].flatten(1), "fc2.bias": torch.zeros(c),
                   "spatial_conv.weight": w_sp[:, [1, 0]]}, \
            f"CBAM, r={c // hidden}, k={k}, bias-free MLP, no BN in the spatial gate, [mean, max] order"
    return None, {}, ""
