"""Multi-head self-attention as ultralytics' detectors carry it, rebuilt with a tap on the softmax.

- ``SelfAttention``: ultralytics' ``Attention``, the position-sensitive attention of YOLOv10
  (Wang et al., "YOLOv10: Real-Time End-to-End Object Detection", 2024), used by its ``PSA`` and
  by the ``PSABlock`` inside YOLO11's and YOLO26's ``C2PSA``: queries and keys of ``key_dim``
  channels a head, values of ``head_dim``, a depthwise 3x3 conv on the values added back (``pe``).
- ``AreaAttention``: ultralytics' ``AAttn``, the area attention of YOLO12 (Tian et al., "YOLOv12:
  Attention-Centric Real-Time Object Detectors", 2025): the flattened feature map is cut into
  ``area`` equal runs of rows and each attends only within itself; a depthwise 7x7 ``pe``.

Both keep the parameter names of ultralytics' classes (``qkv``, ``proj``, ``pe``, each a conv +
BN), so a checkpoint's tensors load into them unchanged, and compute exactly what those classes
compute (tests/attention/test_self_attention.py compares them). The softmax attention, (b x areas,
heads, queries, keys), passes through an ``AttentionTap``: forward hooks read what the forward
uses. ``received`` turns a captured tap into the attention each feature cell receives.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .gate import Gate


class AttentionTap(Gate):
    """Identity on the softmax attention (b, heads, n, n): a tap, not a sigmoid."""

    def __init__(self):
        super().__init__("self_attention")

    def forward(self, attn: torch.Tensor) -> torch.Tensor:
        return attn


def _conv_bn(c1: int, c2: int, k: int = 1, groups: int = 1) -> nn.Module:
    """A conv + BN without activation, named as ultralytics' ``Conv`` names its parts."""
    from ultralytics.nn.modules import Conv

    return Conv(c1, c2, k, 1, g=groups, act=False)


class SelfAttention(nn.Module):
    """Ultralytics' ``Attention`` (YOLOv10 PSA; PSABlock in C2PSA) with its softmax tapped."""

    def __init__(self, dim: int, num_heads: int = 8, attn_ratio: float = 0.5):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim ** -0.5
        self.qkv = _conv_bn(dim, dim + 2 * self.key_dim * num_heads)
        self.proj = _conv_bn(dim, dim)
        self.pe = _conv_bn(dim, dim, 3, groups=dim)
        self.tap = AttentionTap()
        self.areas = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = h * w
        q, k, v = self.qkv(x).view(b, self.num_heads, 2 * self.key_dim + self.head_dim, n).split(
            [self.key_dim, self.key_dim, self.head_dim], dim=2)
        attn = self.tap(((q * self.scale).transpose(-2, -1) @ k).softmax(dim=-1))
        out = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(out)

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, key_dim={self.key_dim}, head_dim={self.head_dim}"


class AreaAttention(nn.Module):
    """Ultralytics' ``AAttn`` (YOLO12 area attention) with its softmax tapped."""

    def __init__(self, dim: int, num_heads: int, area: int = 1):
        super().__init__()
        self.areas = area
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.all_head_dim = self.head_dim * num_heads
        self.qkv = _conv_bn(dim, self.all_head_dim * 3)
        self.proj = _conv_bn(self.all_head_dim, dim)
        self.pe = _conv_bn(self.all_head_dim, self.all_head_dim, 7, groups=self.all_head_dim)
        self.tap = AttentionTap()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        n = h * w
        qkv = self.qkv(x).flatten(2).transpose(1, 2)  # (b, n, 3 x all_head_dim)
        if self.areas > 1:  # each run of n / areas cells (whole rows when h divides) on its own
            qkv = qkv.reshape(b * self.areas, n // self.areas, self.all_head_dim * 3)
        bb, nn_ = qkv.shape[:2]
        q, k, v = qkv.view(bb, nn_, self.num_heads, self.head_dim * 3).permute(0, 2, 3, 1).split(
            [self.head_dim, self.head_dim, self.head_dim], dim=2)
        attn = self.tap(((q * self.head_dim ** -0.5).transpose(-2, -1) @ k).softmax(dim=-1))
        out = (v @ attn.transpose(-2, -1)).permute(0, 3, 1, 2)
        v = v.permute(0, 3, 1, 2)
        out = out.reshape(b, h, w, self.all_head_dim).permute(0, 3, 1, 2).contiguous()
        v = v.reshape(b, h, w, self.all_head_dim).permute(0, 3, 1, 2).contiguous()
        return self.proj(out + self.pe(v))

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, head_dim={self.head_dim}, areas={self.areas}"


def received(attn: np.ndarray, areas: int, hw: tuple[int, int]) -> np.ndarray:
    """(heads, h, w): the attention each cell receives, averaged over the queries that can see it
    (its own area's), times the number of keys a query sees: 1 everywhere = uniform attention.

    ``attn``: one image's captured tap, (areas, heads, n, n) with n = h * w / areas, the areas in
    row-major order of the flattened map (as ``AreaAttention`` cuts it)."""
    a = np.asarray(attn, dtype=np.float32).reshape(areas, attn.shape[-3], attn.shape[-2], attn.shape[-1])
    per_key = a.mean(axis=2) * a.shape[-1]  # (areas, heads, n)
    return per_key.transpose(1, 0, 2).reshape(a.shape[1], *hw)


def attended(attn: np.ndarray, areas: int, hw: tuple[int, int], cell: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where the query at feature cell ``cell`` = (row, col) attends: ((heads, h, w) its attention
    per key cell times the number of keys it sees (1 = uniform), 0 outside its area; (h, w) bool
    mask of its area). ``attn`` as for ``received``."""
    h, w = hw
    q = int(np.clip(cell[0], 0, h - 1)) * w + int(np.clip(cell[1], 0, w - 1))
    return attended_from(attn, areas, hw, np.array([q]))


def attended_from(attn: np.ndarray, areas: int, hw: tuple[int, int], cells: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``attended`` averaged over several query cells (flat indices: an object's cells): (heads, h,
    w) their mean attention per key cell times the keys each sees, and the (h, w) mask of the areas
    they may see."""
    a = np.asarray(attn).reshape(areas, attn.shape[-3], attn.shape[-2], attn.shape[-1])
    h, w = hw
    n = a.shape[-1]
    cells = np.unique(np.asarray(cells, dtype=int))
    out = np.zeros((a.shape[1], h * w), dtype=np.float32)
    mask = np.zeros(h * w, dtype=bool)
    for area in np.unique(cells // n):
        local = cells[cells // n == area] - area * n
        out[:, area * n:(area + 1) * n] += a[area][:, local].astype(np.float32).sum(axis=1) * n
        mask[area * n:(area + 1) * n] = True
    return out.reshape(a.shape[1], h, w) / len(cells), mask.reshape(h, w)


def in_box_attention(attn: np.ndarray, areas: int, cells: np.ndarray) -> tuple[np.ndarray, float]:
    """For the queries at ``cells`` (flat indices into the feature grid: an object's cells), the
    attention that stays on those same cells: ((heads,) summed over the queries, the sum a head
    with no preference would give, that is each query's share of its own area's keys inside the
    object). Their ratio is the in-box share: 1 = no preference, 2 = twice uniform. ``attn`` as for
    ``received``."""
    a = np.asarray(attn, dtype=np.float64).reshape(areas, attn.shape[-3], attn.shape[-2], attn.shape[-1])
    n = a.shape[-1]
    cells = np.unique(np.asarray(cells, dtype=int))
    kept, uniform = np.zeros(a.shape[1]), 0.0
    for area in np.unique(cells // n):
        local = cells[cells // n == area] - area * n
        kept += a[area][:, local][:, :, local].sum(axis=(1, 2))
        uniform += len(local) * len(local) / n
    return kept, uniform


def head_statistics(attn: np.ndarray, areas: int, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(mean attention distance in feature cells, entropy in nats), per head, averaged over the
    queries: how far a head looks and how spread its attention is (the statistics ViT analyses
    report). ``attn`` as for ``received``; distances between the cells' grid positions, each
    area's cells at their place in the whole map. One area at a time, in float32: the matrices
    grow with the square of the pixels."""
    a = np.asarray(attn).reshape(areas, attn.shape[-3], attn.shape[-2], attn.shape[-1])
    n, w = a.shape[-1], hw[1]
    distance, entropy = np.zeros(a.shape[1]), np.zeros(a.shape[1])
    for k in range(areas):
        cells = np.arange(k * n, (k + 1) * n)
        rows, cols = cells // w, cells % w
        d = np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :]).astype(np.float32)  # query x key
        p = a[k].astype(np.float32, copy=False)
        distance += np.einsum("hqk,qk->h", p, d, dtype=np.float64) / n
        entropy -= np.einsum("hqk,hqk->h", p, np.log(np.clip(p, 1e-12, 1.0)), dtype=np.float64) / n
    return distance / areas, entropy / areas
