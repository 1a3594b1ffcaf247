"""Efficient Channel Attention (Wang et al., CVPR 2020, "ECA-Net")."""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from .gate import Gate


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """The paper's adaptive kernel: t = int(|log2(c) + b| / gamma), rounded up to odd."""
    t = int(abs(math.log2(channels) + b) / gamma)
    return t if t % 2 else t + 1


class ECA(nn.Module):
    """x * sigmoid(Conv1d_k(GAP(x))): a k-wide 1-D conv across channels, no bias.

    ``kernel_size`` 0 or None picks the adaptive size from the channel count.
    """

    def __init__(self, channels: int, kernel_size: int | None = None, gamma: int = 2, b: int = 1):
        super().__init__()
        k = kernel_size or eca_kernel_size(channels, gamma, b)
        if k % 2 == 0:
            raise ValueError(f"ECA kernel_size must be odd, got {k}")
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)
        self.gate = Gate("channel")

    def forward(self, x):
        y = x.mean((2, 3)).unsqueeze(1)  # (b, 1, c)
        y = F.conv1d(y, self.conv.weight, padding=self.conv.padding).transpose(1, 2).unsqueeze(-1)  # (b, c, 1, 1)
        return x * self.gate(y)
