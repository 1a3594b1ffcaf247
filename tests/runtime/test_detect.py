"""The device seams of a forward (issue 37): inputs go to the model's device and float type,
outputs come back to the CPU in float32, checked on the CPU with a float16 model standing in for
a GPU's float16 pass."""
from __future__ import annotations

import torch

from attention_lens.runtime.detect import on_device, to_cpu


def test_an_input_takes_the_models_float_type_and_is_not_copied_when_it_has_it():
    model = torch.nn.Conv2d(3, 4, 1)
    x = torch.rand(1, 3, 8, 8)
    assert on_device(model, x) is x  # float32 on the CPU: the same tensor, no copy
    half = on_device(model.half(), x)
    assert half.dtype == torch.float16 and torch.allclose(half.float(), x, atol=1e-3)


def test_outputs_come_back_in_float32_whatever_their_nesting():
    y = (torch.ones(2, dtype=torch.float16), [torch.arange(3), {"k": torch.zeros(1, dtype=torch.float16)}], None)
    back = to_cpu(y)
    assert isinstance(back, tuple) and back[0].dtype == torch.float32 and back[2] is None
    assert back[1][0].dtype == torch.int64 and back[1][1]["k"].dtype == torch.float32
    same = torch.zeros(3)
    assert to_cpu(same) is same


class _Cost:
    """A ModelCost stand-in with a known figure per pixel."""

    def __init__(self, bytes_per_pixel):
        self.bytes_per_pixel = bytes_per_pixel

    def input_bytes(self, pixels):
        return self.bytes_per_pixel * pixels


def test_a_run_takes_as_many_images_as_the_memory_bound_holds(monkeypatch):
    from attention_lens.runtime import detect

    monkeypatch.setattr(detect, "BATCH_BYTES", 1000 * 320 * 320)
    model = torch.nn.Module()
    assert detect.images_per_run(model, (320, 320), 8) == 1  # no measured cost: one at a time
    model.cost = _Cost(300)  # 300 bytes a pixel: three images of 320 x 320 fit, a fourth does not
    assert detect.images_per_run(model, (320, 320), 8) == 3
    assert detect.images_per_run(model, (320, 320), 2) == 2
    assert detect.images_per_run(model, (640, 640), 8) == 1  # one image over the bound still runs, alone
    model.cost = _Cost(1)
    assert detect.images_per_run(model, (320, 320), 8) == 8  # never more than asked for
