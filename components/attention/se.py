"""Squeeze-and-Excitation (Hu et al., CVPR 2018, "Squeeze-and-Excitation Networks")."""
from __future__ import annotations

from torch import nn

from .gate import Gate


class SE(nn.Module):
    """x * sigmoid(W2 relu(W1 GAP(x))), with W1: c -> c/r and W2: c/r -> c (biased 1x1 convs)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)  # c < r would give a zero-width bottleneck
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = Gate("channel")

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))
