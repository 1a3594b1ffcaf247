"""The export check: what counts as ONNX Runtime reproducing PyTorch, on constructed differences."""
from __future__ import annotations

import torch

from attention_lens.runtime import onnx_check
from attention_lens.runtime.capture import capture_gates
from attention_lens.modeling.catalog import prepare
from attention_lens.modeling.models import build_model
from attention_lens.modeling.variants import make_variant


def se_model():
    torch.manual_seed(0)
    return prepare(build_model(make_variant("yolov8n", "SE", "neck_outputs", nc=3)))


class _Changed:
    """Stands in for an exported graph: PyTorch's own outputs, the prediction changed by ``change``."""

    def __init__(self, model, change):
        self.model, self.change = model, change

    def run(self, x, capture=True):
        maps, inputs = {}, {}
        with torch.no_grad(), capture_gates(self.model, maps, inputs):
            y = self.model(x)
        y = y[0] if isinstance(y, (list, tuple)) else y
        return self.change(y.clone()), maps, inputs


def test_the_check_allows_float32_noise_relative_to_a_values_size_and_nothing_more():
    model = se_model()
    x = torch.rand(1, 3, 320, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)[0]
    # A relative change of 8e-6 (~70 float32 ulps) moves box values of a few hundred pixels by
    # more than the absolute tolerance: allowed, as float32 re-association across layers does.
    assert float((y * 8e-6).abs().max()) > onnx_check.PRED_TOLERANCE
    assert onnx_check.check(model, _Changed(model, lambda p: p * (1 + 8e-6))) is None

    def nudge_a_score(p):  # a class score (in [0, 1]) off by 2e-3
        p[0, 4, 7] += 2e-3
        return p
    assert onnx_check.check(model, _Changed(model, nudge_a_score)) == "predictions differ by 0.002 at 320x256"

    def nan(p):
        p[0, 0, 0] = float("nan")
        return p
    assert onnx_check.check(model, _Changed(model, nan)) == "predictions differ by inf at 320x256"


def test_a_map_that_differs_is_named():
    model = se_model()

    class _MapOff(_Changed):
        def run(self, x, capture=True):
            pred, maps, inputs = super().run(x, capture)
            name = min(maps)
            maps[name] = maps[name] + 1e-3  # gates are in [0, 1]; 10x the map tolerance
            return pred, maps, inputs

    first = min(_Changed(model, lambda p: p).run(torch.rand(1, 3, 64, 64))[1])
    assert onnx_check.check(model, _MapOff(model, lambda p: p)) == f"{first}: maps differ by 0.001 at 320x256"


def test_a_batch_must_give_each_image_its_own_predictions():
    model = se_model()
    assert onnx_check.batch_check(model, _Changed(model, lambda p: p))

    def second_image_off(p):  # right for the first image, a score off by 1e-2 for the second
        p[1, 4, 7] += 1e-2
        return p
    assert not onnx_check.batch_check(model, _Changed(model, second_image_off))

    def cannot_batch(p):
        raise RuntimeError("batch folded into a constant")
    assert not onnx_check.batch_check(model, _Changed(model, cannot_batch))
