"""Polarized Self-Attention (Liu et al., 2021, arXiv 2107.00782).

Named PolarizedSA so that it never shadows ultralytics' own PSA, which is a different layer
(YOLOv10's position-sensitive attention).
"""
from __future__ import annotations

import torch
from torch import nn

from .gate import Gate

LAYOUTS = ("sequential", "parallel")


class PolarizedSA(nn.Module):
    """A channel-only branch (b,c,1,1) and a spatial-only branch (b,1,h,w), composed
    sequentially (the paper's default) or in parallel."""

    def __init__(self, channels: int, layout: str = "sequential"):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"PolarizedSA layout must be one of {LAYOUTS}, got {layout!r}")
        if channels < 2:
            raise ValueError(f"PolarizedSA needs at least 2 channels, got {channels}")
        half = channels // 2
        self.layout = layout
        self.ch_wv = nn.Conv2d(channels, half, 1)
        self.ch_wq = nn.Conv2d(channels, 1, 1)
        self.ch_wz = nn.Conv2d(half, channels, 1)
        self.ln = nn.LayerNorm(channels)
        self.channel_gate = Gate("channel")
        self.sp_wv = nn.Conv2d(channels, half, 1)
        self.sp_wq = nn.Conv2d(channels, half, 1)
        self.spatial_gate = Gate("spatial")

    def extra_repr(self) -> str:
        return f"layout={self.layout}"

    # Both branches use that a 1x1 conv is affine, so it commutes with any weighted average of
    # pixels whose weights sum to 1 (a softmax, a mean). The paper's Wv(x) @ q then costs one
    # c-vector through Wv instead of a c -> c/2 conv over the whole map; outputs are unchanged.

    def channel_weights(self, x):
        b, c = x.shape[:2]
        q = self.ch_wq(x).flatten(2).softmax(-1)  # (b, 1, hw), softmax over pixels
        pooled = x.flatten(2) @ q.transpose(1, 2)  # (b, c, 1): the q-weighted pixel average
        z = self.ch_wz(self.ch_wv(pooled.unsqueeze(-1)))  # == ch_wz(ch_wv(x) @ q), (b, c, 1, 1)
        return self.channel_gate(self.ln(z.flatten(1)).view(b, c, 1, 1))

    def spatial_weights(self, x):
        b, _, h, w = x.shape
        q = self.sp_wq(x.mean((2, 3), keepdim=True)).flatten(1).softmax(-1)  # (b, c/2) == softmax(mean(Wq x))
        # q @ Wv(x) == (q Wv) @ x + q . bv: fold q into Wv, one weight per input channel.
        k = (q @ self.sp_wv.weight.flatten(1)).unsqueeze(1)  # (b, 1, c)
        s = torch.baddbmm((q @ self.sp_wv.bias).view(b, 1, 1), k, x.flatten(2))  # (b, 1, hw)
        return self.spatial_gate(s.view(b, 1, h, w))

    def forward(self, x):
        x_ch = x * self.channel_weights(x)
        if self.layout == "sequential":
            return x_ch * self.spatial_weights(x_ch)
        return x_ch + x * self.spatial_weights(x)
