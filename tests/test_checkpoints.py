"""Safe loading: allowed checkpoints load; hostile, damaged and foreign files are handled."""
from __future__ import annotations

import copy
import sys
import types
import zipfile

import pytest
import torch
from torch import nn

from components.attention import EMA
from components.checkpoints import CheckpointError, load_checkpoint, load_model, scan_globals
from components.models import build_model
from components.variants import make_variant


@pytest.fixture(scope="module")
def ema_model():
    torch.manual_seed(0)
    return build_model(make_variant("yolov8n", "EMA", "neck_outputs", nc=3)).eval()


def save_like_ultralytics(model, path):
    torch.save({"model": copy.deepcopy(model).half(), "ema": None, "optimizer": None, "epoch": -1,
                "train_args": {"imgsz": 320, "data": "x.yaml"}, "date": "2026-11-21", "version": "8.4.190"}, path)


def test_project_checkpoint_round_trips_with_identical_outputs(ema_model, tmp_path):
    path = tmp_path / "ema.pt"
    save_like_ultralytics(ema_model, path)
    loaded = load_model(path)
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        want = copy.deepcopy(ema_model).half().float()(x)[0]
        got = loaded(x)[0]
    assert torch.equal(got, want)
    assert any(isinstance(m, EMA) for m in loaded.modules())


class Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": Boom(marker)}, path)
    with pytest.raises(CheckpointError, match=r"refused.*(posix|os)\.system"):
        load_model(path)
    assert not marker.exists()


def test_unknown_class_is_refused_by_name(tmp_path):
    mod = types.ModuleType("thirdparty_layers")

    class Mystery(nn.Module):
        pass

    Mystery.__module__, Mystery.__qualname__ = "thirdparty_layers", "Mystery"
    mod.Mystery = Mystery
    sys.modules["thirdparty_layers"] = mod
    try:
        torch.save({"model": nn.Sequential(Mystery())}, tmp_path / "m.pt")
    finally:
        del sys.modules["thirdparty_layers"]
    with pytest.raises(CheckpointError, match="thirdparty_layers.Mystery"):
        load_checkpoint(tmp_path / "m.pt")


def test_truncated_empty_and_non_torch_files_get_clear_errors(ema_model, tmp_path):
    good = tmp_path / "good.pt"
    save_like_ultralytics(ema_model, good)
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "notes.pt").write_text("these are not weights")
    (tmp_path / "plain.pkl").write_bytes(__import__("pickle").dumps({"a": 1}))
    expected = {"cut.pt": "not a PyTorch checkpoint|damaged|truncated", "empty.pt": "empty",
                "notes.pt": "not a PyTorch checkpoint", "plain.pkl": "not a PyTorch checkpoint"}
    for name, pattern in expected.items():
        with pytest.raises(CheckpointError, match=pattern) as e:
            load_model(tmp_path / name)
        assert name in str(e.value)


def test_zip_without_a_model_is_explained(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="holds no model"):
        load_model(tmp_path / "sd.pt")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "other.zip")


class ForkEMA(nn.Module):
    """The layout forks use for EMA (the authors' attribute names), under a foreign import path."""

    def __init__(self, channels, factor=32):
        super().__init__()
        self.groups = factor
        cg = channels // factor
        self.softmax = nn.Softmax(-1)
        self.agp = nn.AdaptiveAvgPool2d((1, 1))
        self.pool_h = nn.AdaptiveAvgPool2d((None, 1))
        self.pool_w = nn.AdaptiveAvgPool2d((1, None))
        self.gn = nn.GroupNorm(cg, cg)
        self.conv1x1 = nn.Conv2d(cg, cg, 1)
        self.conv3x3 = nn.Conv2d(cg, cg, 3, padding=1)


def test_fork_ema_is_mapped_onto_ours_when_parameters_match(tmp_path, ema_model):
    fork = types.ModuleType("models.common")
    ForkEMA.__module__ = "models.common"
    fork.EMA = ForkEMA
    ForkEMA.__qualname__ = ForkEMA.__name__ = "EMA"
    pkg = types.ModuleType("models")
    sys.modules.update({"models": pkg, "models.common": fork})
    try:
        model = copy.deepcopy(ema_model)
        ours = model.model[16]
        foreign = ForkEMA(ours.conv1x1.in_channels * ours.groups, ours.groups)
        foreign.load_state_dict(ours.state_dict())
        foreign.i, foreign.f, foreign.type = ours.i, ours.f, "models.common.EMA"
        model.model[16] = foreign
        torch.save({"model": model}, tmp_path / "fork.pt")
    finally:
        for k in ("models", "models.common"):
            sys.modules.pop(k, None)
    assert "models.common.EMA" in scan_globals(tmp_path / "fork.pt")  # never registered as a safe global
    loaded = load_model(tmp_path / "fork.pt")
    assert isinstance(loaded.model[16], EMA) and loaded.model[16].i == 16
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.allclose(loaded(x)[0], ema_model(x)[0], atol=1e-5)
