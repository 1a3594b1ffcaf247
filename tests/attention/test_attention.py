"""Each attention module against a plainly written implementation of the paper's formulas.

The references below are written from docs/ATTENTION.md in the most direct way (functional
ops, explicit loops where that is clearer), reading the module's parameters, so any drift in
the module's math shows as a numeric difference.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attention_lens.attention import (
    ATTENTION_MODULES,
    CBAM,
    ECA,
    EMA,
    GATE_KINDS,
    SE,
    CoordAtt,
    Gate,
    PolarizedSA,
    create_attention,
    gates_of,
)

SHAPES = [(2, 64, 9, 13), (1, 32, 1, 7), (3, 48, 6, 1), (2, 96, 5, 5)]


def randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial weights and BN statistics, so a wrong formula cannot hide behind defaults."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for name, b in module.named_buffers():
            if "running_var" in name:
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif "running_mean" in name:
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
    return module.eval()


def capture(module, x):
    maps = {}
    handles = [g.register_forward_hook(lambda m, i, o, n=n: maps.__setitem__(n, o)) for n, g in gates_of(module)]
    out = module(x)
    for h in handles:
        h.remove()
    return out, maps


def bn(x, m):
    return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


def ref_se(m: SE, x):
    s = x.mean((2, 3))
    s = torch.sigmoid(F.linear(F.relu(F.linear(s, m.fc1.weight, m.fc1.bias)), m.fc2.weight, m.fc2.bias))[..., None, None]
    return x * s, {"gate": s}


def ref_cbam(m: CBAM, x):
    def mlp(v):
        return F.linear(F.relu(F.linear(v, m.fc1.weight, m.fc1.bias)), m.fc2.weight, m.fc2.bias)

    avg = F.adaptive_avg_pool2d(x, 1).flatten(1)
    mx = F.adaptive_max_pool2d(x, 1).flatten(1)
    sc = torch.sigmoid(mlp(avg) + mlp(mx))[..., None, None]
    x1 = x * sc
    pooled = torch.cat([x1.max(1, keepdim=True).values, x1.mean(1, keepdim=True)], 1)
    k = m.spatial_conv.kernel_size[0]
    ss = torch.sigmoid(bn(F.conv2d(pooled, m.spatial_conv.weight, padding=(k - 1) // 2), m.spatial_bn))
    return x1 * ss, {"channel_gate": sc, "spatial_gate": ss}


def ref_eca(m: ECA, x):
    b, c = x.shape[:2]
    k = m.conv.kernel_size[0]
    y = x.mean((2, 3))  # (b, c)
    w = m.conv.weight.view(k)
    padded = F.pad(y, ((k - 1) // 2, (k - 1) // 2))
    z = torch.stack([(padded[:, i:i + k] * w).sum(1) for i in range(c)], 1)
    s = torch.sigmoid(z).view(b, c, 1, 1)
    return x * s, {"gate": s}


def ref_coord_att(m: CoordAtt, x):
    h, w = x.shape[2:]
    xh = x.mean(3, keepdim=True)
    xw = x.mean(2, keepdim=True).permute(0, 1, 3, 2)
    y = bn(F.conv2d(torch.cat([xh, xw], 2), m.conv1.weight, m.conv1.bias), m.bn1)
    y = y * F.relu6(y + 3) / 6
    yh, yw = y[:, :, :h], y[:, :, h:]
    ah = torch.sigmoid(F.conv2d(yh, m.conv_h.weight, m.conv_h.bias))
    aw = torch.sigmoid(F.conv2d(yw, m.conv_w.weight, m.conv_w.bias)).permute(0, 1, 3, 2)
    return x * ah * aw, {"gate_h": ah, "gate_w": aw}


def ref_ema(m: EMA, x):
    b, c, h, w = x.shape
    g = m.groups
    gx = x.reshape(b * g, c // g, h, w)
    xh = gx.mean(3, keepdim=True)
    xw = gx.mean(2, keepdim=True).permute(0, 1, 3, 2)
    hw = F.conv2d(torch.cat([xh, xw], 2), m.conv1x1.weight, m.conv1x1.bias)
    hh, ww = hw[:, :, :h], hw[:, :, h:]
    x1 = F.group_norm(gx * torch.sigmoid(hh) * torch.sigmoid(ww.permute(0, 1, 3, 2)), c // g, m.gn.weight, m.gn.bias,
                      m.gn.eps)
    x2 = F.conv2d(gx, m.conv3x3.weight, m.conv3x3.bias, padding=1)
    x11 = torch.softmax(x1.mean((2, 3)), -1).reshape(b * g, 1, c // g)
    x12 = x2.reshape(b * g, c // g, h * w)
    x21 = torch.softmax(x2.mean((2, 3)), -1).reshape(b * g, 1, c // g)
    x22 = x1.reshape(b * g, c // g, h * w)
    weights = (torch.bmm(x11, x12) + torch.bmm(x21, x22)).reshape(b * g, 1, h, w)
    out = (gx * torch.sigmoid(weights)).reshape(b, c, h, w)
    return out, {"gate": torch.sigmoid(weights).reshape(b, g, h, w)}


def ref_polarized(m: PolarizedSA, x):
    b, c, h, w = x.shape

    def conv(v, layer):
        return F.conv2d(v, layer.weight, layer.bias)

    def channel(v):
        wv = conv(v, m.ch_wv).reshape(b, c // 2, h * w)
        wq = torch.softmax(conv(v, m.ch_wq).reshape(b, h * w, 1), 1)
        z = torch.bmm(wv, wq).unsqueeze(-1)
        zz = conv(z, m.ch_wz).reshape(b, c)
        return torch.sigmoid(F.layer_norm(zz, (c,), m.ln.weight, m.ln.bias, m.ln.eps)).reshape(b, c, 1, 1)

    def spatial(v):
        wv = conv(v, m.sp_wv).reshape(b, c // 2, h * w)
        wq = torch.softmax(F.adaptive_avg_pool2d(conv(v, m.sp_wq), 1).reshape(b, 1, c // 2), -1)
        return torch.sigmoid(torch.bmm(wq, wv).reshape(b, 1, h, w))

    s_ch = channel(x)
    if m.layout == "sequential":
        xs = x * s_ch
        s_sp = spatial(xs)
        return xs * s_sp, {"channel_gate": s_ch, "spatial_gate": s_sp}
    s_sp = spatial(x)
    return x * s_ch + x * s_sp, {"channel_gate": s_ch, "spatial_gate": s_sp}


CASES = [
    (lambda c: SE(c), ref_se),
    (lambda c: SE(c, 4), ref_se),
    (lambda c: CBAM(c), ref_cbam),
    (lambda c: CBAM(c, 8, 3), ref_cbam),
    (lambda c: ECA(c), ref_eca),
    (lambda c: ECA(c, 3), ref_eca),
    (lambda c: CoordAtt(c), ref_coord_att),
    (lambda c: EMA(c), ref_ema),
    (lambda c: EMA(c, 8), ref_ema),
    (lambda c: PolarizedSA(c), ref_polarized),
    (lambda c: PolarizedSA(c, "parallel"), ref_polarized),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("make,ref", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_module_matches_plain_formula(make, ref, shape):
    torch.manual_seed(1)
    module = randomize(make(shape[1]))
    x = torch.randn(shape)
    with torch.no_grad():
        out, maps = capture(module, x)
        want, want_maps = ref(module, x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    assert set(maps) == set(want_maps)
    for name, expected in want_maps.items():
        torch.testing.assert_close(maps[name], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("make,ref", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_gradients_match_plain_formula(make, ref):
    """Reformulated modules (CBAM's stacked MLP pass, PolarizedSA's pooled 1x1 convs) must train
    exactly like the paper's form: same gradients for the input and every parameter."""
    torch.manual_seed(2)
    module = randomize(make(48))
    x = torch.randn(2, 48, 7, 5, requires_grad=True)
    params = [x, *module.parameters()]
    ours = torch.autograd.grad(module(x).square().sum(), params)
    want = torch.autograd.grad(ref(module, x)[0].square().sum(), params)
    for name, a, b in zip(["input"] + [n for n, _ in module.named_parameters()], ours, want):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("name", list(ATTENTION_MODULES))
def test_every_map_has_its_own_gate_with_a_kind_and_shape(name):
    expected = {
        "SE": {"channel"}, "ECA": {"channel"}, "CBAM": {"channel", "spatial"}, "CoordAtt": {"axis_h", "axis_w"},
        "EMA": {"spatial_groups"}, "PolarizedSA": {"channel", "spatial"},
    }[name]
    module = create_attention(name, 64).eval()
    b, c, h, w = 2, 64, 6, 10
    with torch.no_grad():
        _, maps = capture(module, torch.randn(b, c, h, w))
    kinds = {g.kind for _, g in gates_of(module)}
    assert kinds == expected and len(maps) == len(expected)
    shapes = {"channel": (b, c, 1, 1), "spatial": (b, 1, h, w), "axis_h": (b, c, h, 1), "axis_w": (b, c, 1, w),
              "spatial_groups": (b, module.groups if name == "EMA" else 0, h, w)}
    for gate_name, gate in gates_of(module):
        assert maps[gate_name].shape == shapes[gate.kind]
        assert float(maps[gate_name].min()) >= 0 and float(maps[gate_name].max()) <= 1


def test_eca_adaptive_kernel_follows_the_paper():
    for c in (16, 64, 128, 256, 512, 1024):
        t = int(abs(math.log2(c) + 1) / 2)
        assert ECA(c).conv.kernel_size[0] == (t if t % 2 else t + 1)


@pytest.mark.parametrize("channels,factor,groups", [(48, 32, 24), (80, 32, 20), (40, 32, 20), (7, 32, 7), (64, 32, 32)])
def test_ema_falls_back_to_a_divisor_and_says_so(channels, factor, groups):
    m = EMA(channels, factor)
    assert m.groups == groups and channels % m.groups == 0
    assert f"groups={groups}" in repr(m)
    assert ("does not divide" in repr(m)) == (groups != factor)
    x = torch.randn(2, channels, 5, 4)
    assert m(x).shape == x.shape


def test_factory_and_gate_validation():
    assert type(create_attention("EMA", 64, 16)) is EMA and create_attention("EMA", 64, 16).groups == 16
    with pytest.raises(ValueError, match="unknown attention"):
        create_attention("PSA", 64)
    with pytest.raises(ValueError, match="unknown gate kind"):
        Gate("diagonal")
    with pytest.raises(ValueError, match="layout"):
        PolarizedSA(64, "diagonal")
    # Every kind a module routes a map through is one the views know how to read, and each is used.
    from attention_lens.attention import BUILT_IN_ATTENTION

    used = {g.kind for cls in [*ATTENTION_MODULES.values(), *BUILT_IN_ATTENTION.values()]
            for _, g in gates_of(cls(64, 4) if cls in BUILT_IN_ATTENTION.values() else cls(64))}
    assert used == set(GATE_KINDS)


@pytest.mark.parametrize("name", list(ATTENTION_MODULES))
def test_gradients_flow_through_every_module(name):
    module = create_attention(name, 32).train()
    x = torch.randn(2, 32, 8, 6, requires_grad=True)
    module(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in module.parameters())
