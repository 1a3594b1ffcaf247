"""Convolutional Block Attention Module (Woo et al., ECCV 2018, "CBAM").

The paper's form: a channel gate from average- and max-pooled descriptors through one shared
MLP, then a spatial gate from a 7x7 conv + BN over [max_c, mean_c]. Ultralytics ships a
simplified CBAM (average pool only, no MLP); this one is not that.
"""
from __future__ import annotations

import torch
from torch import nn

from .gate import Gate


class CBAM(nn.Module):
    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"CBAM kernel_size must be odd, got {kernel_size}")
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )
        self.channel_gate = Gate("channel")
        self.spatial_conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.spatial_bn = nn.BatchNorm2d(1)
        self.spatial_gate = Gate("spatial")

    def forward(self, x):
        b = x.shape[0]
        # One pass of the shared MLP over both descriptors, stacked on the batch axis.
        both = self.mlp(torch.cat([x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)], 0))
        x = x * self.channel_gate(both[:b] + both[b:])
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * self.spatial_gate(self.spatial_bn(self.spatial_conv(pooled)))
