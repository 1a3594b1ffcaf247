"""Coordinate Attention (Hou et al., CVPR 2021, "Coordinate Attention for Efficient Mobile
Network Design")."""
from __future__ import annotations

import torch
from torch import nn

from .gate import Gate


class CoordAtt(nn.Module):
    """x * a_h * a_w, where a_h (b,c,h,1) and a_w (b,c,1,w) come from direction-aware pooling
    through a shared 1x1 conv (c -> mip, BN, h-swish) and one 1x1 conv per direction."""

    def __init__(self, channels: int, reduction: int = 32):
        super().__init__()
        mip = max(8, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = nn.Hardswish()  # z * relu6(z + 3) / 6, the paper's h-swish
        self.conv_h = nn.Conv2d(mip, channels, 1)
        self.conv_w = nn.Conv2d(mip, channels, 1)
        self.gate_h = Gate("axis_h")
        self.gate_w = Gate("axis_w")

    def forward(self, x):
        h, w = x.shape[2:]
        pooled_h = x.mean(3, keepdim=True)  # (b, c, h, 1)
        pooled_w = x.mean(2, keepdim=True).transpose(2, 3)  # (b, c, w, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([pooled_h, pooled_w], 2))))
        y_h, y_w = y.split([h, w], 2)
        a_h = self.gate_h(self.conv_h(y_h))
        a_w = self.gate_w(self.conv_w(y_w.transpose(2, 3)))
        return x * a_h * a_w
