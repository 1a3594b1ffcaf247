"""Self-attention rebuilt from ultralytics' classes: equal forwards, a tap holding the softmax,
and the attention each cell receives on constructed matrices with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_lens.attention import AreaAttention, SelfAttention
from attention_lens.attention.self_attention import received
from attention_lens.modeling.built_in import adopt_built_in_attention


def randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + (0.5 if t.dim() == 1 else -0.25))
    return module.eval()


@pytest.mark.parametrize("make_theirs, make_ours, hw", [
    (lambda: __import__("ultralytics.nn.modules.block", fromlist=["Attention"]).Attention(128, 2, 0.5),
     lambda: SelfAttention(128, 2, 0.5), (5, 7)),
    (lambda: __import__("ultralytics.nn.modules.block", fromlist=["AAttn"]).AAttn(64, 2, 4),
     lambda: AreaAttention(64, 2, 4), (8, 6)),
    (lambda: __import__("ultralytics.nn.modules.block", fromlist=["AAttn"]).AAttn(64, 4, 1),
     lambda: AreaAttention(64, 4, 1), (4, 4)),
])
def test_ours_compute_what_ultralytics_classes_compute_and_tap_their_softmax(make_theirs, make_ours, hw):
    theirs, ours = randomised(make_theirs(), 0), make_ours().eval()
    ours.load_state_dict(theirs.state_dict(), strict=False)  # the tap has no tensors
    assert set(ours.state_dict()) == set(theirs.state_dict())
    x = torch.randn(2, theirs.qkv.conv.in_channels, *hw)
    seen = []
    ours.tap.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    attn = seen[0]
    n = hw[0] * hw[1] // ours.areas
    assert attn.shape == (2 * ours.areas, ours.num_heads, n, n)
    assert torch.allclose(attn.sum(-1), torch.ones(()), atol=1e-5)  # a softmax over keys


def test_the_loader_swaps_ultralytics_attention_in_a_yolo11_model_and_keeps_its_output():
    from attention_lens.modeling.models import build_model
    from attention_lens.modeling.variants import make_variant

    model = build_model(make_variant("yolo11n", None, None), nc=3).eval()  # its own random init
    x = torch.rand(1, 3, 160, 192)
    with torch.no_grad():
        before = model(x)[0]
    notes = adopt_built_in_attention(model)
    assert len(notes) == 1 and "PSABlock" in notes[0]  # yolo11n: one C2PSA with one PSABlock
    assert sum(isinstance(m, SelfAttention) for m in model.modules()) == 1
    with torch.no_grad():
        assert torch.equal(model(x)[0], before)


def test_received_attention_on_constructed_matrices():
    h, w, heads = 2, 3, 2
    n = h * w
    attn = np.zeros((1, heads, n, n), dtype=np.float32)
    attn[0, 0, :, 4] = 1.0  # head 0: every query looks only at cell 4 (row 1, column 1)
    attn[0, 1] = 1.0 / n  # head 1: uniform
    r = received(attn, 1, (h, w))
    assert r.shape == (heads, h, w)
    assert r[0, 1, 1] == pytest.approx(n) and r[0].sum() == pytest.approx(n)
    assert np.allclose(r[1], 1.0)  # uniform attention reads 1 everywhere
    # Two areas (rows 0 and 1 of a 2x3 map): each query sees its own row only.
    two = np.zeros((2, 1, 3, 3), dtype=np.float32)
    two[0, 0, :, 2] = 1.0  # row 0: all attention on its last cell
    two[1, 0, :, 0] = 1.0  # row 1: on its first cell
    r = received(two, 2, (2, 3))[0]
    assert r[0, 2] == pytest.approx(3) and r[1, 0] == pytest.approx(3) and r.sum() == pytest.approx(6)


def test_head_distance_and_entropy_on_constructed_matrices():
    from attention_lens.attention.self_attention import head_statistics

    h, w = 2, 3
    n = h * w
    attn = np.zeros((1, 3, n, n))
    attn[0, 0] = np.eye(n)  # head 0: each cell attends to itself
    attn[0, 1, :, 0] = 1.0  # head 1: every cell attends to cell (0, 0)
    attn[0, 2] = 1.0 / n  # head 2: uniform
    distance, entropy = head_statistics(attn, 1, (h, w))
    cells = [(r, c) for r in range(h) for c in range(w)]
    to_origin = np.mean([np.hypot(r, c) for r, c in cells])
    all_pairs = np.mean([np.hypot(r1 - r2, c1 - c2) for r1, c1 in cells for r2, c2 in cells])
    assert distance == pytest.approx([0.0, to_origin, all_pairs])
    assert entropy == pytest.approx([0.0, 0.0, np.log(n)])
    # Two areas (rows): a query in row 1 looking at the first cell of its own row is 0..2 cells away.
    two = np.zeros((2, 1, 3, 3))
    two[:, 0, :, 0] = 1.0
    distance, entropy = head_statistics(two, 2, (2, 3))
    assert distance == pytest.approx([1.0]) and entropy == pytest.approx([0.0])


@pytest.mark.parametrize("kind, hw", [("Attention", (5, 7)), ("AAttn", (8, 6))])
def test_the_tap_equals_softmax_of_q_and_k_recomputed_from_ultralytics_own_projection(kind, hw):
    """Queries and keys taken from ultralytics' module's own qkv conv output (a hook on theirs),
    split by the layout its paper describes, and the softmax worked out here: the tap of our
    rebuild holds exactly that matrix."""
    from ultralytics.nn.modules import block

    theirs = randomised(block.Attention(128, 2, 0.5) if kind == "Attention" else block.AAttn(64, 2, 4), 1)
    ours = (SelfAttention(128, 2, 0.5) if kind == "Attention" else AreaAttention(64, 2, 4)).eval()
    ours.load_state_dict(theirs.state_dict(), strict=False)
    x = torch.randn(1, theirs.qkv.conv.in_channels, *hw)
    qkv, tapped = [], []
    theirs.qkv.register_forward_hook(lambda m, i, o: qkv.append(o))
    ours.tap.register_forward_hook(lambda m, i, o: tapped.append(o))
    with torch.no_grad():
        theirs(x), ours(x)
    n, heads = hw[0] * hw[1], 2
    if kind == "Attention":  # per head: key_dim query channels, key_dim key channels, head_dim values
        t = qkv[0].reshape(1, heads, -1, n)
        q, k = t[:, :, :theirs.key_dim], t[:, :, theirs.key_dim:2 * theirs.key_dim]
        expected = torch.softmax(torch.einsum("bhdq,bhdk->bhqk", q, k) * theirs.key_dim ** -0.5, dim=-1)
    else:  # per cell: heads x (q, k, v) of head_dim each; areas = consecutive runs of n / 4 cells
        t = qkv[0].flatten(2).transpose(1, 2).reshape(4, n // 4, heads, 3 * theirs.head_dim)
        q, k = t[..., :theirs.head_dim], t[..., theirs.head_dim:2 * theirs.head_dim]
        expected = torch.softmax(torch.einsum("aqhd,akhd->ahqk", q, k) * theirs.head_dim ** -0.5, dim=-1)
    assert torch.allclose(tapped[0], expected, atol=1e-6)


def test_attention_from_several_cells_is_their_mean_row():
    from attention_lens.attention.self_attention import attended_from, in_box_attention

    h, w = 2, 3
    n = h * w
    attn = np.zeros((1, 1, n, n))
    attn[0, 0, 1, 5] = 1.0  # query 1 looks only at cell 5
    attn[0, 0, 4, 4] = 1.0  # query 4 only at itself
    heads, mask = attended_from(attn, 1, (h, w), np.array([1, 4, 4]))  # a repeated cell counts once
    assert mask.all()
    assert heads[0].ravel() == pytest.approx([0, 0, 0, 0, n / 2, n / 2])
    kept, uniform = in_box_attention(attn, 1, np.array([1, 4]))
    assert kept == pytest.approx([1.0]) and uniform == pytest.approx(2 * 2 / n)  # query 4 stays, query 1 leaves
