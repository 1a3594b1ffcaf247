"""RT-DETR's encoder layer rebuilt from ultralytics' AIFI: the same forward (post-norm and
pre-norm, non-square maps), torch's multi-head attention reproduced, and a tap that holds the
softmax torch itself computes (its averaged-off weights, read through ``need_weights``)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from attention_lens.attention import EncoderSelfAttention
from attention_lens.attention.encoder_attention import TappedMultiheadAttention
from attention_lens.modeling.built_in import adopt_built_in_attention


def randomised(module: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.3)
    return module.eval()


@pytest.mark.parametrize("pre_norm, hw", [(False, (5, 7)), (True, (4, 4))])
def test_ours_computes_what_ultralytics_aifi_computes(pre_norm, hw):
    from ultralytics.nn.modules.transformer import AIFI

    theirs = randomised(AIFI(32, 64, 4, normalize_before=pre_norm), 0)
    holder = nn.Sequential(theirs)
    notes = adopt_built_in_attention(holder)
    ours = holder[0]
    assert isinstance(ours, EncoderSelfAttention) and "AIFI" in notes[0]
    assert set(ours.state_dict()) == set(theirs.state_dict())
    x = torch.randn(2, 32, *hw)
    seen = []
    ours.tap.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    n = hw[0] * hw[1]
    assert seen[0].shape == (2, 4, n, n)


def test_the_tap_holds_the_softmax_torch_computes():
    torch_mha = randomised(nn.MultiheadAttention(16, 2, batch_first=True), 1)
    ours = TappedMultiheadAttention(16, 2).eval()
    ours.load_state_dict(torch_mha.state_dict())
    q, k, v = (torch.randn(1, 9, 16) for _ in range(3))
    seen = []
    ours.tap.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        out, weights = torch_mha(q, k, v, need_weights=True, average_attn_weights=False)
        assert torch.allclose(ours(q, k, v)[0], out, atol=1e-5)
    assert torch.allclose(seen[0], weights, atol=1e-6)  # (b, heads, queries, keys), per head
