"""Classic ultralytics/yolov5 (v6.x-v7.0) detectors, built by this project from their YAML.

The backbone and neck rows (Conv, C3, SPPF, SPP, Focus, BottleneckCSP, Concat, nn.Upsample) are the
same layers ultralytics 8.x ships under the same names and parameter names, so ultralytics' parser
builds them. The head differs: YOLOv5's ``Detect`` predicts, per anchor, box offsets, an
objectness score and class scores. ``AnchorDetect`` is that head written from its decoding
(YOLOv5 >= v6.0): xy = (2 sigmoid(t_xy) - 0.5 + cell) * stride, wh = (2 sigmoid(t_wh))^2 * anchor.
In eval mode it returns what the rest of the app expects from an ultralytics head: boxes (xywh,
input pixels) and per-class scores, shaped (b, 4 + nc, n), where a class score is objectness times
the class probability (as YOLOv5's own NMS scores a box), followed by the raw maps.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from ultralytics.nn.tasks import BaseModel


class YOLOv5Model(BaseModel):
    """A classic YOLOv5 detector: ultralytics' layer routing (``m.f``, ``save``) with AnchorDetect."""


class AnchorDetect(nn.Module):
    """YOLOv5's anchor-based detection head: one 1x1 conv per level, ``na`` anchors per cell."""

    def __init__(self, nc: int, anchors: list, ch: list[int]):
        super().__init__()
        self.nc, self.no, self.nl = nc, nc + 5, len(anchors)
        self.na = len(anchors[0]) // 2
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2))
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self.stride = torch.zeros(self.nl)  # set by the builder: input pixels per cell at each level

    def forward(self, x: list[torch.Tensor]):
        raw = []
        for i in range(self.nl):
            b, _, ny, nx = x[i].shape
            raw.append(self.m[i](x[i]).view(b, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous())
        if self.training:
            return raw
        return self.decode(raw), raw

    def decode(self, raw: list[torch.Tensor]) -> torch.Tensor:
        out = []
        for i, p in enumerate(raw):
            b, na, ny, nx, _ = p.shape
            ys, xs = torch.meshgrid(torch.arange(ny, dtype=p.dtype), torch.arange(nx, dtype=p.dtype), indexing="ij")
            cell = torch.stack((xs, ys), 2).view(1, 1, ny, nx, 2) - 0.5
            anchor = (self.anchors[i] * self.stride[i]).view(1, na, 1, 1, 2)
            xy, wh, conf = p.sigmoid().split((2, 2, self.nc + 1), 4)
            xy = (xy * 2 + cell) * self.stride[i]
            wh = (wh * 2) ** 2 * anchor
            scores = conf[..., 1:] * conf[..., :1]
            out.append(torch.cat((xy, wh, scores), 4).view(b, na * ny * nx, 4 + self.nc))
        return torch.cat(out, 1).permute(0, 2, 1)


def build_yolov5(d: dict) -> nn.Module:
    """The model a classic YOLOv5 YAML dict describes (checked by yaml_layers.check_yaml first)."""
    from ultralytics.nn import tasks

    from attention_lens.modeling.integration import register

    register()  # before looking up the parser: register wraps it
    rows = d["backbone"] + d["head"]
    f, _, name, args = rows[-1]
    if name != "Detect" or not isinstance(f, list) or len(args) < 2:
        raise ValueError("the last layer of a YOLOv5 model must be Detect with [nc, anchors]")
    anchors = d["anchors"] if args[1] == "anchors" else args[1]
    if isinstance(anchors, int):  # a number of anchors: YOLOv5 starts them at 0..2n-1 before autoanchor
        anchors = [list(range(anchors * 2))] * len(f)
    placeholder = copy.deepcopy(d)
    placeholder["head"][-1] = [f, 1, "Concat", [1]]  # built, never run: replaced below
    layers, save = tasks.parse_model(placeholder, ch=d.get("ch", 3), verbose=False)
    ch = _output_channels(layers, f, d.get("ch", 3))
    head = AnchorDetect(d["nc"], anchors, ch)
    head.i, head.f, head.type, head.np = len(rows) - 1, f, "AnchorDetect", sum(p.numel() for p in head.parameters())
    layers[-1] = head

    model = YOLOv5Model()
    model.model, model.save, model.yaml = layers, save, d
    with torch.no_grad():
        model.train()
        s = 256
        head.stride = torch.tensor([s / p.shape[-3] for p in model(torch.zeros(1, d.get("ch", 3), s, s))])
        model.eval()
    model.stride = head.stride
    return model


def _output_channels(layers: nn.Sequential, wanted: list[int], ch: int) -> list[int]:
    """Output channel count of each layer in ``wanted``, from one small forward."""
    outputs, x = [], torch.zeros(1, ch, 64, 64)
    with torch.no_grad():
        for m in layers[:-1]:
            if m.f != -1:
                x = outputs[m.f] if isinstance(m.f, int) else [x if j == -1 else outputs[j] for j in m.f]
            m.eval()
            x = m(x)
            outputs.append(x)
    return [outputs[j].shape[1] for j in wanted]
