"""LayerCAM's short backward against the textbook one (gradients through the whole graph)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attention_lens.analysis.images import load_image
from attention_lens.runtime.letterbox import letterbox, model_stride
from attention_lens.analysis.layercam import detect_inputs, layercam_grids
from attention_lens.modeling.catalog import ModelStore, read_manifest

ROOT = Path(__file__).resolve().parents[2]


def _full_backward_layercam(model, x, top_k=20):
    """Independent: the input requires grad, every Detect input keeps its grad, one full backward."""
    acts = {}

    def keep(k):
        def hook(module, args, out):
            out.retain_grad()
            acts[k] = out
        return hook

    hooks = [m.register_forward_hook(keep(k)) for k, m in enumerate(detect_inputs(model))]
    try:
        with torch.enable_grad():
            x = x.clone().requires_grad_(True)
            pred = model(x)
            scores = (pred[0] if isinstance(pred, (list, tuple)) else pred)[0, 4:, :].amax(0)
            sizes = [acts[k].shape[2] * acts[k].shape[3] for k in sorted(acts)]
            sum(lv.topk(min(top_k, lv.numel())).values.sum() for lv in scores.split(sizes)).backward()
    finally:
        for h in hooks:
            h.remove()
    return [(acts[k].grad.clamp_min(0) * acts[k]).sum(1)[0].clamp_min(0).detach().numpy() for k in sorted(acts)]


@pytest.mark.parametrize("kind", ["baseline", "attention"])
def test_short_backward_gives_the_full_backwards_maps(kind):
    store = ModelStore(read_manifest(ROOT / "weights"))
    name = store.baseline_name() if kind == "baseline" else next(
        (n for n, e in store.entries.items() if e.attention == "EMA"), None)
    if not name:
        pytest.skip("no shipped model of this kind")
    model = store.get(name)
    image = load_image(ROOT / "assets" / "examples" / "synthetic_smear_1.jpg")
    x = letterbox(image, 320, model_stride(model))
    expected = _full_backward_layercam(model, x)
    (got,), _ = layercam_grids(model, x)
    assert len(got) == len(expected) == 3
    for g, e in zip(got, expected):
        assert e.max() > 0
        np.testing.assert_allclose(g["grid"], e, rtol=1e-4, atol=1e-6 * e.max())
    assert all(p.grad is None for p in model.parameters())


def test_a_batch_gives_each_image_its_own_maps():
    """Two different images in one LayerCAM run: each image's maps are the full backward's of that
    image alone (its own strongest candidates; the other image adds nothing to its gradient)."""
    store = ModelStore(read_manifest(ROOT / "weights"))
    model = store.get(store.baseline_name())
    image = load_image(ROOT / "assets" / "examples" / "synthetic_smear_1.jpg")
    x = letterbox(image, 320, model_stride(model))
    other = torch.flip(x, dims=[3]) * 0.7  # a different image of the same shape
    got, pred = layercam_grids(model, torch.cat([x, other]))
    assert len(got) == 2 and pred.shape[0] == 2
    for one, alone in zip(got, (x, other)):
        expected = _full_backward_layercam(model, alone)
        for g, e in zip(one, expected):
            assert e.max() > 0
            np.testing.assert_allclose(g["grid"], e, rtol=1e-4, atol=1e-5 * e.max())
