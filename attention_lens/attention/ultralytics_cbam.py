"""CBAM in the form ultralytics ships (``ultralytics.nn.modules.conv.CBAM``), with hookable gates.

Not the paper's CBAM (cbam.py): the channel gate is sigmoid(1x1 conv(mean-pooled x)), with a
biased c -> c conv instead of the shared bottleneck MLP over average- and max-pooled
descriptors, and the spatial gate has no BatchNorm. Checkpoints trained with ultralytics' class
load into this one (the parameter names match), so their maps can be captured like ours.
"""
from __future__ import annotations

import torch
from torch import nn

from .gate import Gate


class _ChannelPart(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.gate = Gate("channel")

    def forward(self, x):
        return x * self.gate(self.fc(x.mean((2, 3), keepdim=True)))


class _SpatialPart(nn.Module):
    def __init__(self, kernel_size: int):
        super().__init__()
        self.cv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.gate = Gate("spatial")

    def forward(self, x):
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)  # mean first, as ultralytics
        return x * self.gate(self.cv1(pooled))


class UltralyticsCBAM(nn.Module):
    """x -> spatial(channel(x)), each part x * sigmoid(...), parameters named as ultralytics names them."""

    def __init__(self, channels: int, kernel_size: int = 7):
        super().__init__()
        if kernel_size not in (3, 7):
            raise ValueError(f"ultralytics' CBAM takes kernel_size 3 or 7, got {kernel_size}")
        self.channel_attention = _ChannelPart(channels)
        self.spatial_attention = _SpatialPart(kernel_size)

    def forward(self, x):
        return self.spatial_attention(self.channel_attention(x))
