"""Reference implementations the bench times our attention modules against.

Two kinds, both computing exactly what our modules compute and reading the same weights:

* ``READER``: each mechanism written the way a reader of the paper writes it, as an nn.Module
  built from the layers the paper draws (pooling layers, an nn.Sequential MLP, nn.Sigmoid,
  nn.Softmax). This is the "plain implementation" the issue's ratio target is measured against.
* ``FLOOR``: the same formula as one bare function with no module calls at all. No module can
  beat it (the module's own call costs ~1 µs); the bench shows how close ours gets.

Reader modules share the parameters of the module they are built from, so outputs can be
compared exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ReaderSE(nn.Module):
    """GAP -> Linear -> ReLU -> Linear -> Sigmoid -> scale."""

    def __init__(self, ours):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(ours.fc1, nn.ReLU(inplace=True), ours.fc2, nn.Sigmoid())

    def forward(self, x):
        b, c = x.shape[:2]
        y = self.fc(self.avg_pool(x).view(b, c)).view(b, c, 1, 1)
        return x * y.expand_as(x)


class ReaderECA(nn.Module):
    """GAP -> 1-D conv across channels -> Sigmoid -> scale."""

    def __init__(self, ours):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv = ours.conv
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        y = self.avg_pool(x)  # (b, c, 1, 1)
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        return x * self.sigmoid(y).expand_as(x)


class ReaderCBAM(nn.Module):
    """Channel gate: shared MLP on the avg- and max-pooled descriptors, summed; then spatial gate:
    7x7 conv + BN on [max over c, mean over c]."""

    def __init__(self, ours):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.mlp = nn.Sequential(nn.Flatten(), ours.fc1, nn.ReLU(), ours.fc2)
        self.channel_sigmoid = nn.Sigmoid()
        self.spatial = nn.Sequential(ours.spatial_conv, ours.spatial_bn)
        self.spatial_sigmoid = nn.Sigmoid()

    def forward(self, x):
        att = self.mlp(self.avg_pool(x)) + self.mlp(self.max_pool(x))
        x = x * self.channel_sigmoid(att)[..., None, None]
        pooled = torch.cat([torch.max(x, 1, keepdim=True)[0], torch.mean(x, 1, keepdim=True)], 1)
        return x * self.spatial_sigmoid(self.spatial(pooled))


class ReaderCoordAtt(nn.Module):
    """Pool along each axis, shared 1x1 conv + BN + h-swish, one 1x1 conv + sigmoid per axis."""

    def __init__(self, ours):
        super().__init__()
        self.pool_h = nn.AdaptiveAvgPool2d((None, 1))
        self.pool_w = nn.AdaptiveAvgPool2d((1, None))
        self.conv1, self.bn1, self.act = ours.conv1, ours.bn1, nn.Hardswish()
        self.conv_h, self.conv_w = ours.conv_h, ours.conv_w
        self.sigmoid_h, self.sigmoid_w = nn.Sigmoid(), nn.Sigmoid()

    def forward(self, x):
        h, w = x.shape[2:]
        y = torch.cat([self.pool_h(x), self.pool_w(x).permute(0, 1, 3, 2)], 2)
        y = self.act(self.bn1(self.conv1(y)))
        y_h, y_w = torch.split(y, [h, w], 2)
        a_h = self.sigmoid_h(self.conv_h(y_h))
        a_w = self.sigmoid_w(self.conv_w(y_w.permute(0, 1, 3, 2)))
        return x * a_w * a_h


class ReaderEMA(nn.Module):
    """Groups folded into the batch; 1x1 branch (axis pooling, shared 1x1 conv, sigmoids,
    GroupNorm) and 3x3 branch; each branch's softmaxed descriptor matched against the other's
    pixels; the summed map gates the group through a sigmoid."""

    def __init__(self, ours):
        super().__init__()
        self.groups = ours.groups
        self.pool_h = nn.AdaptiveAvgPool2d((None, 1))
        self.pool_w = nn.AdaptiveAvgPool2d((1, None))
        self.agp = nn.AdaptiveAvgPool2d(1)
        self.conv1x1, self.conv3x3, self.gn = ours.conv1x1, ours.conv3x3, ours.gn
        self.softmax = nn.Softmax(-1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        b, c, h, w = x.shape
        g = self.groups
        gx = x.reshape(b * g, -1, h, w)
        hw = self.conv1x1(torch.cat([self.pool_h(gx), self.pool_w(gx).permute(0, 1, 3, 2)], 2))
        x_h, x_w = torch.split(hw, [h, w], 2)
        x1 = self.gn(gx * x_h.sigmoid() * x_w.permute(0, 1, 3, 2).sigmoid())
        x2 = self.conv3x3(gx)
        d1 = self.softmax(self.agp(x1).reshape(b * g, -1, 1).permute(0, 2, 1))
        d2 = self.softmax(self.agp(x2).reshape(b * g, -1, 1).permute(0, 2, 1))
        weights = torch.matmul(d1, x2.reshape(b * g, c // g, -1)) + torch.matmul(d2, x1.reshape(b * g, c // g, -1))
        return (gx * self.sigmoid(weights.reshape(b, g, h, w)).reshape(b * g, 1, h, w)).reshape(b, c, h, w)


class ReaderPolarizedSA(nn.Module):
    """Channel-only branch (Wv, Wq softmax over pixels, Wz, LayerNorm, sigmoid) then, in the
    sequential layout, the spatial-only branch (Wq pooled and softmaxed over channels, Wv)."""

    def __init__(self, ours):
        super().__init__()
        self.layout = ours.layout
        self.ch_wv, self.ch_wq, self.ch_wz, self.ln = ours.ch_wv, ours.ch_wq, ours.ch_wz, ours.ln
        self.sp_wv, self.sp_wq = ours.sp_wv, ours.sp_wq
        self.softmax_channel = nn.Softmax(1)
        self.softmax_spatial = nn.Softmax(-1)
        self.agp = nn.AdaptiveAvgPool2d(1)
        self.sigmoid = nn.Sigmoid()

    def channel_pool(self, x):
        b, c, h, w = x.shape
        v = self.ch_wv(x).reshape(b, c // 2, -1)
        q = self.softmax_channel(self.ch_wq(x).reshape(b, -1, 1))
        z = self.ch_wz(torch.matmul(v, q).unsqueeze(-1))
        return self.sigmoid(self.ln(z.reshape(b, c, 1).permute(0, 2, 1)).permute(0, 2, 1).reshape(b, c, 1, 1))

    def spatial_pool(self, x):
        b, c, h, w = x.shape
        v = self.sp_wv(x).reshape(b, c // 2, -1)
        q = self.softmax_spatial(self.agp(self.sp_wq(x)).reshape(b, 1, c // 2))
        return self.sigmoid(torch.matmul(q, v).reshape(b, 1, h, w))

    def forward(self, x):
        x_ch = x * self.channel_pool(x)
        if self.layout == "sequential":
            return x_ch * self.spatial_pool(x_ch)
        return x_ch + x * self.spatial_pool(x)


READER: dict[str, type[nn.Module]] = {"SE": ReaderSE, "CBAM": ReaderCBAM, "ECA": ReaderECA,
                                      "CoordAtt": ReaderCoordAtt, "EMA": ReaderEMA,
                                      "PolarizedSA": ReaderPolarizedSA}


# Bare functions: the same formulas with no module call anywhere (the floor). --------------------------------

def floor_se(m, x):
    s = F.linear(F.relu(F.linear(x.mean((2, 3)), m.fc1.weight, m.fc1.bias)), m.fc2.weight, m.fc2.bias)
    return x * torch.sigmoid(s)[..., None, None]


def floor_cbam(m, x):
    b = x.shape[0]
    both = torch.cat([x.mean((2, 3)), x.amax((2, 3))], 0)
    both = F.linear(F.relu(F.linear(both, m.fc1.weight, m.fc1.bias)), m.fc2.weight, m.fc2.bias)
    x = x * torch.sigmoid(both[:b] + both[b:])[..., None, None]
    s = F.conv2d(torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1), m.spatial_conv.weight,
                 padding=m.spatial_conv.padding)
    bn = m.spatial_bn
    s = F.batch_norm(s, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return x * torch.sigmoid(s)


def floor_eca(m, x):
    y = F.conv1d(x.mean((2, 3)).unsqueeze(1), m.conv.weight, padding=m.conv.padding)
    return x * torch.sigmoid(y).transpose(1, 2).unsqueeze(-1)


FLOOR = {"SE": floor_se, "CBAM": floor_cbam, "ECA": floor_eca}
