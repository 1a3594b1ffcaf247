"""Squeeze-and-Excitation (Hu et al., CVPR 2018, "Squeeze-and-Excitation Networks")."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .gate import Gate


class SE(nn.Module):
    """x * sigmoid(W2 relu(W1 GAP(x))), with W1: c -> c/r and W2: c/r -> c (biased linear layers,
    as in the paper's code; on a 1x1 descriptor they are cheaper than 1x1 convs)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)  # c < r would give a zero-width bottleneck
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)
        self.gate = Gate("channel")

    def forward(self, x):
        # Functional calls on the layers' weights: on a 1x1 descriptor the module dispatch costs
        # as much as the math (docs/PERFORMANCE.md). The gate stays a module call: it is the hook point.
        s = F.relu(F.linear(x.mean((2, 3)), self.fc1.weight, self.fc1.bias))
        s = F.linear(s, self.fc2.weight, self.fc2.bias)
        return x * self.gate(s[..., None, None])
