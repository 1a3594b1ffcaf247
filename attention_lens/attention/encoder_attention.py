"""RT-DETR's encoder self-attention, rebuilt with a tap on its softmax.

RT-DETR (Zhao et al., "DETRs Beat YOLOs on Real-time Object Detection", CVPR 2024) runs one
transformer encoder layer over its coarsest feature map only, which the paper calls AIFI
(attention-based intra-scale feature interaction): the P5 map is flattened into a sequence, a 2-D
sine-cosine position embedding is added to the queries and keys (not the values), and one
multi-head self-attention plus a feed-forward block, each with a residual and a LayerNorm, run over
it. Ultralytics ships it as ``AIFI`` with torch's ``nn.MultiheadAttention`` inside, which hands
no attention weights to a hook in its fast path.

- ``EncoderSelfAttention``: ultralytics' ``AIFI``, the same parameter names (``ma``, ``fc1``,
  ``fc2``, ``norm1``, ``norm2``) and the same forward, post-norm or pre-norm as the layer was built.
- ``TappedMultiheadAttention``: ``nn.MultiheadAttention``'s parameters (``in_proj_weight``,
  ``in_proj_bias``, ``out_proj``) computed step by step, the softmax (b, heads, n, n) passing through
  an ``AttentionTap`` (no areas: every cell sees every other).

tests/attention/test_encoder_attention.py compares both with ultralytics' and torch's classes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .self_attention import AttentionTap


class TappedMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` (batch first, no masks, no dropout) with its softmax tapped."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"{dim} channels do not split into {num_heads} heads")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        self.tap = AttentionTap()

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **_masks):
        """(output, None): torch's return convention, so a caller indexing ``[0]`` is unchanged."""
        b, n, c = query.shape
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq, bk, bv = self.in_proj_bias.chunk(3)

        def heads(t: torch.Tensor, w: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            return F.linear(t, w, bias).view(b, -1, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(query, wq, bq), heads(key, wk, bk), heads(value, wv, bv)
        attn = self.tap(((q * self.head_dim ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.out_proj(out), None


class EncoderSelfAttention(nn.Module):
    """Ultralytics' ``AIFI`` (RT-DETR's encoder layer over P5) with its softmax tapped."""

    def __init__(self, dim: int, hidden: int = 2048, num_heads: int = 8, act: nn.Module | None = None,
                 normalize_before: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.ma = TappedMultiheadAttention(dim, num_heads)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.act = nn.GELU() if act is None else act
        self.normalize_before = normalize_before
        self.areas = 1

    @property
    def tap(self) -> AttentionTap:
        return self.ma.tap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ultralytics.nn.modules.transformer import AIFI

        c, h, w = x.shape[1:]
        # Ultralytics' own embedding (a pure function of the grid): the positions are theirs exactly.
        pos = AIFI.build_2d_sincos_position_embedding(w, h, c, like=x).to(x.dtype)
        src = x.flatten(2).permute(0, 2, 1)
        if self.normalize_before:
            s = self.norm1(src)
            src = src + self.ma(s + pos, s + pos, s)[0]
            src = src + self.fc2(self.act(self.fc1(self.norm2(src))))
        else:
            src = self.norm1(src + self.ma(src + pos, src + pos, src)[0])
            src = self.norm2(src + self.fc2(self.act(self.fc1(src))))
        return src.permute(0, 2, 1).reshape(-1, c, h, w).contiguous()

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, head_dim={self.ma.head_dim}, pre_norm={self.normalize_before}"
