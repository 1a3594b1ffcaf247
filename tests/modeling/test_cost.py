"""The meta-device size probe (attention_lens/modeling/cost.py), against real forwards and known sizes."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attention_lens.modeling.load import load_model
from attention_lens.modeling.cost import (
    MAX_ACTIVATION_BYTES,
    CostError,
    ModelCost,
    check_model,
    check_request,
    measure,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("path", ["ultralytics/u8-cbam-best.pt", "yolox/yolox-nano-cam.pth",
                                  "yolov5/v5-ema-best.pt"])
def test_the_probe_counts_what_a_real_forward_allocates(path):
    model = load_model(FIXTURES / path)
    assert model.cost.params == sum(p.numel() for p in model.parameters())
    # Independently: the same sum over a real forward's outputs, at another size, by hooks here.
    total, size = 0, 256  # the probe's own size: pooled vectors (c x 1 x 1) do not scale with pixels

    counting = [True]

    def count(_m, _i, out):
        nonlocal total
        if not counting[0]:
            return
        for t in out if isinstance(out, (list, tuple)) else (out,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    body = model.backbone if hasattr(model, "backbone") else None
    modules = list(body.modules()) if body is not None else [m for layer in model.model[:-1] for m in layer.modules()]
    # Once per module object: ultralytics' Conv layers share one SiLU instance.
    hooks = [m.register_forward_hook(count) for m in {id(m): m for m in modules}.values()]
    head = model.head if hasattr(model, "head") else model.model[-1]  # the probe stops before the head
    hooks.append(head.register_forward_pre_hook(lambda *_: counting.__setitem__(0, False)))
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    assert model.cost.activation_bytes(size) == pytest.approx(total, rel=1e-6)


def test_budgets_refuse_with_the_limit_named():
    per_px = MAX_ACTIVATION_BYTES / 1000 ** 2  # exactly the budget at 1000 px
    small = type("M", (), {"cost": ModelCost(10, per_px)})()
    check_request({"m": small}, 992)
    with pytest.raises(CostError, match=r"m at 1024 px .* pick 992 px or less"):
        check_request({"m": small}, 1024)
    with pytest.raises(CostError, match="101 M parameters; at most 100 M"):
        check_model(ModelCost(101_000_000, 1.0), "f.pt")
    with pytest.raises(CostError, match="activations; at most"):
        check_model(ModelCost(10, MAX_ACTIVATION_BYTES / 320 ** 2 * 1.01), "f.pt")


def test_measuring_allocates_nothing():
    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4096, 3), torch.nn.Conv2d(4096, 4096, 3))
        model.backbone = torch.nn.Sequential(*list(model))
    cost = measure(model)
    assert cost.params == 3 * 4096 * 9 + 4096 + 4096 * 4096 * 9 + 4096
    assert cost.activation_bytes(256) > 2 * 4096 * 250 ** 2 * 4 * 0.99
