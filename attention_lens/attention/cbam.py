"""Convolutional Block Attention Module (Woo et al., ECCV 2018, "CBAM").

The paper's form: a channel gate from average- and max-pooled descriptors through one shared
MLP, then a spatial gate from a 7x7 conv + BN over [max_c, mean_c]. Ultralytics ships a
simplified CBAM (average pool only, no MLP); this one is not that.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .gate import Gate


class CBAM(nn.Module):
    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"CBAM kernel_size must be odd, got {kernel_size}")
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Linear(channels, hidden)  # the shared MLP, c -> c/r -> c
        self.fc2 = nn.Linear(hidden, channels)
        self.channel_gate = Gate("channel")
        self.spatial_conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.spatial_bn = nn.BatchNorm2d(1)
        self.spatial_gate = Gate("spatial")

    def forward(self, x):
        b = x.shape[0]
        # One pass of the shared MLP over both descriptors stacked on the batch axis, called
        # functionally: at small sizes module dispatch costs as much as the math (docs/PERFORMANCE.md).
        both = torch.cat([x.mean((2, 3)), x.amax((2, 3))], 0)
        both = F.linear(F.relu(F.linear(both, self.fc1.weight, self.fc1.bias)), self.fc2.weight, self.fc2.bias)
        x = x * self.channel_gate((both[:b] + both[b:])[..., None, None])
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * self.spatial_gate(self.spatial_bn(self.spatial_conv(pooled)))
