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


def test_self_attention_matrices_are_counted_with_the_square_of_the_pixels(tmp_path):
    """yolo12n (written by ultralytics): its area-attention matrices, worked out here from the
    structure, heads x (cells / areas)^2 per area, float32, at P4 and P5 of a 640 and a 1280
    letterbox; the cost grows 16x from one to the other, not 4x as the other activations do."""
    from ultralytics_checkpoints import ultralytics_checkpoint

    from attention_lens.attention import AreaAttention

    model = load_model(ultralytics_checkpoint(tmp_path, "yolo12n.yaml"))
    layers = [(m, 16 if int(name.split(".")[1]) in (6, 11, 17) else 32) for name, m in model.named_modules()
              if isinstance(m, AreaAttention)]
    assert layers

    def matrices(imgsz):
        total = 0
        for m, stride in layers:
            n = (imgsz // stride) ** 2
            total += m.areas * m.num_heads * (n // m.areas) ** 2 * 4
        return total

    for size in (640, 1280):
        assert model.cost.attention_bytes(size) == pytest.approx(matrices(size), rel=1e-6)
    linear = model.cost.activation_bytes_per_pixel
    grow = (model.cost.activation_bytes(1280) - linear * 1280 ** 2) / (model.cost.activation_bytes(640) - linear * 640 ** 2)
    assert grow == pytest.approx(16)


def test_a_request_whose_attention_would_not_fit_is_refused_with_a_size_that_does():
    # 1 KB a pixel of plain activations and 0.1 byte per pixel^2 of attention (a model with
    # self-attention at a fine stride): 640 px -> 0.4 + 16.8 GB.
    heavy = type("M", (), {"cost": ModelCost(10, 1024.0, 0.1)})()
    with pytest.raises(CostError, match=r"pick (\d+) px or less") as e:
        check_request({"m.pt": heavy}, 640)
    fits = int(__import__("re").search(r"pick (\d+) px", str(e.value)).group(1))
    assert heavy.cost.activation_bytes(fits) <= MAX_ACTIVATION_BYTES < heavy.cost.activation_bytes(fits + 32)
