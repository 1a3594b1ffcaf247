"""Whether an exported graph computes what the PyTorch model computes, before the app uses it.

The fast path (onnx_backend.py) runs a model's ONNX graph only after this check passed: on two
input shapes the raw predictions and every attention map must agree with PyTorch's within the
tolerances below, and a graph that refuses is never used (its reason is shown instead). A batch
of two is checked separately: some foreign code bases fold the batch size into a constant at
export, and a data-set pass (``evaluation.predict.PASS_BATCH``) then feeds such a graph one image
per run.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

from attention_lens.runtime.capture import capture_gates, forward_lock, raw_prediction
from attention_lens.runtime.onnx_session import Exported

#: Differences allowed between the two runtimes on the check inputs. A raw prediction may differ
#: by PRED_TOLERANCE plus PRED_RELATIVE of its size: box values are in input pixels and, on the
#: random check inputs, reach several hundred (a box wider than the input), where float32
#: re-association across a hundred layers moves them by a few ulps (a PolarizedSA model: 1.4e-3
#: px at 454 px, 3e-6 relative); class scores are in [0, 1], where the absolute part rules. Maps
#: are in [0, 1] too and must agree within MAP_TOLERANCE.
PRED_TOLERANCE = 1e-3
PRED_RELATIVE = 1e-5
MAP_TOLERANCE = 1e-4
CHECK_SHAPES = ((320, 256), (224, 320))


def check(model: torch.nn.Module, exported: Exported) -> str | None:
    """None when ONNX Runtime reproduces PyTorch on the check shapes; else what differs."""
    gen = torch.Generator().manual_seed(0)
    for h, w in CHECK_SHAPES:
        x = torch.rand(1, 3, h, w, generator=gen)
        maps, inputs = {}, {}
        ref = _reference(model, x, maps, inputs)
        pred, gates, ins = exported.run(x)
        if pred.shape != ref.shape:
            return f"prediction shape {tuple(pred.shape)} != {tuple(ref.shape)} at {h}x{w}"
        diff = _prediction_difference(pred, ref)
        if diff is not None:
            return f"predictions differ by {diff:.2g} at {h}x{w}"
        for name, a in list(gates.items()) + list(ins.items()):
            b = maps.get(name, inputs.get(name))
            if b is None or a.shape != b.shape:
                return f"{name}: map missing or of another shape at {h}x{w}"
            d = float((a - b).abs().max())
            if not d <= MAP_TOLERANCE * max(1.0, float(b.abs().max())):
                return f"{name}: maps differ by {d:.2g} at {h}x{w}"
    return None


def batch_check(model: torch.nn.Module, exported: Exported) -> bool:
    """Whether the graph runs a batch of two images as PyTorch does (predictions only)."""
    h, w = CHECK_SHAPES[0]
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(1))
    try:
        ref = _reference(model, x)
        pred = exported.run(x, capture=False)[0]
    except Exception:  # noqa: BLE001  (a graph that cannot take a batch)
        return False
    return pred.shape == ref.shape and _prediction_difference(pred, ref) is None


def _prediction_difference(pred: torch.Tensor, ref: torch.Tensor) -> float | None:
    """None when ``pred`` is within tolerance of ``ref`` everywhere, else the largest difference
    among the elements outside it (inf where either is NaN)."""
    close = torch.isclose(pred, ref, rtol=PRED_RELATIVE, atol=PRED_TOLERANCE)
    if bool(close.all()):
        return None
    return float((pred - ref).abs()[~close].nan_to_num(float("inf")).max())


def _reference(model: torch.nn.Module, x: torch.Tensor, maps: dict | None = None,
               inputs: dict | None = None) -> torch.Tensor:
    """PyTorch's raw prediction for ``x``; with ``maps`` and ``inputs``, its gates' maps and its
    attention modules' inputs captured into them."""
    capturing = capture_gates(model, maps, inputs) if maps is not None else nullcontext()
    with forward_lock(model), torch.no_grad(), capturing:
        ref = model(x)
    return raw_prediction(ref)
