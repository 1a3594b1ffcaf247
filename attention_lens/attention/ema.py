"""Efficient Multi-scale Attention (Ouyang et al., ICASSP 2023, arXiv 2305.13563)."""
from __future__ import annotations

import torch
from torch import nn

from .gate import Gate


def largest_divisor_at_most(n: int, limit: int) -> int:
    """The largest d <= limit that divides n (1 at worst)."""
    for d in range(min(n, max(limit, 1)), 0, -1):
        if n % d == 0:
            return d
    return 1


class EMA(nn.Module):
    """Grouped cross-spatial attention.

    Channels split into ``groups`` sub-features; a 1x1 branch (directional pooling, shared 1x1
    conv, GroupNorm) and a 3x3 branch each give a softmaxed channel descriptor that is matched
    against the other branch's features; the sum is the per-group spatial map, gated by a
    sigmoid. When ``factor`` does not divide the channels, the largest divisor below it is used
    (shown in the repr) instead of failing.
    """

    def __init__(self, channels: int, factor: int = 32):
        super().__init__()
        self.factor = factor
        self.groups = largest_divisor_at_most(channels, factor)
        cg = channels // self.groups
        self.conv1x1 = nn.Conv2d(cg, cg, 1)
        self.conv3x3 = nn.Conv2d(cg, cg, 3, padding=1)
        self.gn = nn.GroupNorm(cg, cg)
        self.gate = Gate("spatial_groups")

    def extra_repr(self) -> str:
        fallback = "" if self.groups == self.factor else f" (factor {self.factor} does not divide the channels)"
        return f"groups={self.groups}{fallback}"

    def forward(self, x):
        b, c, h, w = x.shape
        g = self.groups
        gx = x.reshape(b * g, c // g, h, w)
        pooled = torch.cat([gx.mean(3, keepdim=True), gx.mean(2, keepdim=True).transpose(2, 3)], 2)
        hw_h, hw_w = self.conv1x1(pooled).split([h, w], 2)
        x1 = self.gn(gx * hw_h.sigmoid() * hw_w.transpose(2, 3).sigmoid())
        x2 = self.conv3x3(gx)
        # Each branch's channel descriptor (softmax over c/g) attends over the other's pixels.
        d1 = x1.mean((2, 3)).softmax(-1).unsqueeze(1)  # (b*g, 1, c/g)
        d2 = x2.mean((2, 3)).softmax(-1).unsqueeze(1)
        weights = d1 @ x2.flatten(2) + d2 @ x1.flatten(2)  # (b*g, 1, h*w)
        gate = self.gate(weights.reshape(b, g, h, w))
        return (gx * gate.reshape(b * g, 1, h, w)).reshape(b, c, h, w)
