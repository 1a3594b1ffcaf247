"""The two FLOP counters: agree on plain convs, differ by EMA's matmuls."""
from __future__ import annotations

import torch
from torch import nn

from attention_lens.attention import EMA
from attention_lens.experiments.flops import gflops_thop, gflops_torch
from attention_lens.modeling.models import build_model
from attention_lens.modeling.variants import make_variant


def test_counters_agree_within_5_percent_on_a_conv_only_model():
    model = build_model(make_variant("yolov8n", None, None, nc=3))
    a, b = gflops_thop(model, 320), gflops_torch(model, 320)
    assert a > 0 and abs(a - b) / a < 0.05


class Wrapped(nn.Module):
    """An EMA module alone, shaped like a detector for the thop counter (stride attribute)."""

    def __init__(self, c):
        super().__init__()
        self.ema = EMA(c, 8)
        self.stride = torch.tensor([32.0])

    def forward(self, x):
        return self.ema(x.repeat(1, 64 // 3 + 1, 1, 1)[:, :64])


def test_torch_counter_counts_ema_exactly_including_its_matmuls():
    m = Wrapped(64)
    s, g, cg = 64, 8, 8
    hw = s * s
    convs = 2 * g * cg * cg * 9 * hw + 2 * g * cg * cg * (s + s)  # conv3x3 on h*w, conv1x1 on the h+w strip
    matmuls = 2 * 2 * g * cg * hw  # two (1 x cg) @ (cg x hw) products per group
    assert gflops_torch(m, s) * 1e9 == convs + matmuls


class MatmulOnly(nn.Module):
    """Work done by a bare matmul, as inside EMA and PolarizedSA."""

    def __init__(self):
        super().__init__()
        self.stride = torch.tensor([32.0])

    def forward(self, x):
        f = x.flatten(2)
        return f @ f.transpose(1, 2)


def test_thop_misses_bare_matmuls_that_torch_counts():
    m = MatmulOnly()
    assert gflops_thop(m, 64) == 0
    assert gflops_torch(m, 64) * 1e9 == 2 * 3 * 3 * 64 * 64
