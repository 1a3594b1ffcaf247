"""Checkpoint loading: formats open, foreign attention layers map onto ours with equal outputs."""
from __future__ import annotations

import copy
import sys
import types

import pytest
import torch
from torch import nn

from attention_lens.attention import EMA, SE, PolarizedSA, UltralyticsCBAM, gates_of
from attention_lens.modeling.checkpoints import CheckpointError, load_checkpoint
from attention_lens.modeling.load import load_model
from attention_lens.modeling.models import build_model
from attention_lens.modeling.variants import make_variant


@pytest.fixture(scope="module")
def ema_model():
    torch.manual_seed(0)
    return build_model(make_variant("yolov8n", "EMA", "neck_outputs", nc=3)).eval()


@pytest.fixture(scope="module")
def plain_model():
    torch.manual_seed(1)
    return build_model(make_variant("yolov8n", None, None, nc=3)).eval()


def save_like_ultralytics(model, path, **extra):
    torch.save({"model": copy.deepcopy(model).half(), "ema": None, "optimizer": None, "epoch": -1,
                "train_args": {"imgsz": 320, "data": "x.yaml", "name": "my-run"}, "date": "2026-11-21",
                "version": "8.4.190", **extra}, path)


def outputs(model, x):
    with torch.no_grad():
        return model(x)[0]


def test_project_checkpoint_round_trips_with_identical_outputs(ema_model, tmp_path):
    path = tmp_path / "ema.pt"
    save_like_ultralytics(ema_model, path)
    loaded = load_model(path)
    x = torch.rand(1, 3, 96, 128)
    assert torch.equal(outputs(loaded, x), outputs(copy.deepcopy(ema_model).half().float(), x))
    assert any(isinstance(m, EMA) for m in loaded.modules())
    assert loaded.train_args["name"] == "my-run" and loaded.names == {0: "0", 1: "1", 2: "2"}


@pytest.mark.parametrize("base, attention, placement", [("yolo11n", None, None), ("yolo11n", "EMA", "neck_outputs"),
                                                         ("yolov5n", "SE", "before_sppf")])
def test_every_base_the_zoo_trains_round_trips(base, attention, placement, tmp_path):
    """yolo11 pickles blocks that are no YAML row (C3k inside C3k2, PSABlock inside C2PSA)."""
    torch.manual_seed(2)
    model = build_model(make_variant(base, attention, placement, nc=3)).eval()
    inner = {type(m).__name__ for m in model.modules()}
    assert base != "yolo11n" or {"C3k", "PSABlock"} <= inner
    save_like_ultralytics(model, tmp_path / "m.pt")
    x = torch.rand(1, 3, 96, 128)
    assert torch.equal(outputs(load_model(tmp_path / "m.pt"), x), outputs(copy.deepcopy(model).half().float(), x))


def test_unstripped_last_pt_uses_the_ema_weights(plain_model, tmp_path):
    """ultralytics' last.pt during training: model None, ema set, optimizer state, numpy-free args."""
    ema = copy.deepcopy(plain_model)
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(0.01)
    opt = torch.optim.SGD(plain_model.parameters(), lr=0.1, momentum=0.9)
    torch.save({"epoch": 3, "best_fitness": 0.5, "model": None, "ema": ema.half(), "updates": 10,
                "optimizer": opt.state_dict(), "train_args": types.SimpleNamespace(imgsz=320, name="run7")},
               tmp_path / "last.pt")
    loaded = load_model(tmp_path / "last.pt")
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(outputs(loaded, x), outputs(ema.float(), x))
    assert loaded.train_args["name"] == "run7"


def test_file_that_is_not_a_dict_is_refused(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="list.pt: a checkpoint is a dict"):
        load_checkpoint(tmp_path / "list.pt")


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
        assert str(e.value).startswith(name) and str(tmp_path) not in str(e.value)


def test_state_dict_without_architecture_is_explained(tmp_path):
    torch.save({"model": {"backbone.conv.weight": torch.zeros(3)}}, tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="state dict"):
        load_model(tmp_path / "sd.pt")
    torch.save({"weights": [1, 2]}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="holds no model"):
        load_model(tmp_path / "other.pt")


# ----------------------------------------------------------------------------- foreign layers
def in_fork_module(cls, module: str, name: str):
    """Give ``cls`` the import path a fork would (module.name), registered only while saving."""
    cls.__module__, cls.__qualname__, cls.__name__ = module, name, name
    parts = module.split(".")
    mods = {".".join(parts[:i + 1]): types.ModuleType(".".join(parts[:i + 1])) for i in range(len(parts))}
    setattr(mods[module], name, cls)
    return mods


def save_with(model, path, mods):
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        torch.save({"model": model}, path)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def swap_neck_attention(base: nn.Module, make) -> nn.Module:
    """``base`` (a neck_outputs variant) with each attention layer replaced by ``make(ours)``."""
    model = copy.deepcopy(base)
    for i, m in enumerate(model.model):
        if gates_of(m) and not isinstance(m, nn.Sequential):
            foreign = make(m)
            foreign.i, foreign.f, foreign.type, foreign.np = m.i, m.f, type(foreign).__module__, 0
            model.model[i] = foreign
    return model


class TutorialSE(nn.Module):
    """The SE of the YOLOv5 SE tutorial: bias-free linear layers l1, l2 (written from its math)."""

    def __init__(self, c, r=16):
        super().__init__()
        self.l1, self.l2 = nn.Linear(c, c // r, bias=False), nn.Linear(c // r, c, bias=False)

    def forward(self, x):
        return x * torch.sigmoid(self.l2(torch.relu(self.l1(x.mean((2, 3))))))[..., None, None]


class TutorialPSA(nn.Module):
    """Sequential polarized self-attention as the YOLOv5 PSA tutorial lays it out (paper's form)."""

    def __init__(self, c):
        super().__init__()
        self.ch_wv, self.ch_wq = nn.Conv2d(c, c // 2, 1), nn.Conv2d(c, 1, 1)
        self.ch_wz, self.ln = nn.Conv2d(c // 2, c, 1), nn.LayerNorm(c)
        self.sp_wv, self.sp_wq = nn.Conv2d(c, c // 2, 1), nn.Conv2d(c, c // 2, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        v = self.ch_wv(x).flatten(2)
        q = self.ch_wq(x).flatten(2).softmax(-1).transpose(1, 2)
        z = self.ch_wz((v @ q).unsqueeze(-1)).flatten(1)
        x = x * torch.sigmoid(self.ln(z)).view(b, c, 1, 1)
        v = self.sp_wv(x).flatten(2)
        q = self.sp_wq(x).mean((2, 3)).softmax(-1).unsqueeze(1)
        return x * torch.sigmoid((q @ v).view(b, 1, h, w))


class TutorialEMA(nn.Module):
    """EMA with the authors' attribute names and no gates (as forks paste it), from the paper's math."""

    def __init__(self, c, factor=32):
        super().__init__()
        self.groups = factor
        cg = c // factor
        self.gn, self.conv1x1, self.conv3x3 = nn.GroupNorm(cg, cg), nn.Conv2d(cg, cg, 1), nn.Conv2d(cg, cg, 3, padding=1)

    def forward(self, x):
        b, c, h, w = x.shape
        g = x.reshape(b * self.groups, -1, h, w)
        hw = self.conv1x1(torch.cat([g.mean(3, keepdim=True), g.mean(2, keepdim=True).permute(0, 1, 3, 2)], 2))
        xh, xw = hw.split([h, w], 2)
        x1 = self.gn(g * xh.sigmoid() * xw.permute(0, 1, 3, 2).sigmoid())
        x2 = self.conv3x3(g)
        a1 = x1.mean((2, 3)).softmax(-1).unsqueeze(1)
        a2 = x2.mean((2, 3)).softmax(-1).unsqueeze(1)
        weights = (a1 @ x2.flatten(2) + a2 @ x1.flatten(2)).reshape(b * self.groups, 1, h, w)
        return (g * weights.sigmoid()).reshape(b, c, h, w)


@pytest.mark.parametrize("variant, make, module, name, ours", [
    ("SE", lambda m: TutorialSE(m.fc1.in_features, 16), "models.common", "SE", SE),
    ("PolarizedSA", lambda m: TutorialPSA(m.ch_wz.out_channels), "models.common", "PSA", PolarizedSA),
    ("EMA", lambda m: TutorialEMA(m.conv1x1.in_channels * m.groups, m.groups),
     "ultralytics.nn.attention.EMA_attention", "EMA", EMA),
])
def test_tutorial_layers_map_onto_ours_with_equal_outputs(variant, make, module, name, ours, tmp_path):
    torch.manual_seed(2)
    base = build_model(make_variant("yolov8n", variant, "neck_outputs", nc=3)).eval()
    cls = type(make(next(m for m in base.model if gates_of(m))))
    mods = in_fork_module(cls, module, name)
    with torch.no_grad():
        fork = swap_neck_attention(base, lambda m: _randomised(make(m)))
    save_with(fork, tmp_path / "fork.pt", mods)
    loaded = load_model(tmp_path / "fork.pt")
    mapped = [m for m in loaded.model if isinstance(m, ours)]
    assert len(mapped) == 3 and all(f"{module}.{name}" in m.loaded_as for m in mapped)
    x = torch.rand(1, 3, 96, 128)
    assert torch.allclose(outputs(loaded, x), outputs(fork, x), atol=1e-4, rtol=1e-4)


def _randomised(module):
    for p in module.parameters():
        p.copy_(torch.randn_like(p) * 0.2)
    return module


def test_ultralytics_cbam_loads_with_its_gates_hooked(tmp_path):
    from ultralytics.nn.modules.conv import CBAM as UCBAM

    from attention_lens.runtime.capture import capture_gates

    torch.manual_seed(3)
    base = build_model(make_variant("yolov8n", "CBAM", "neck_outputs", nc=3)).eval()
    with torch.no_grad():
        model = swap_neck_attention(base, lambda m: _randomised(UCBAM(m.fc1.in_features)))
    torch.save({"model": model}, tmp_path / "ucbam.pt")
    loaded = load_model(tmp_path / "ucbam.pt")
    layers = [m for m in loaded.model if isinstance(m, UltralyticsCBAM)]
    assert len(layers) == 3
    x = torch.rand(1, 3, 96, 128)
    assert torch.allclose(outputs(loaded, x), outputs(model, x), atol=1e-5)
    maps, inputs = {}, {}
    with torch.no_grad(), capture_gates(loaded, maps, inputs):
        loaded(x)
    # the channel gate equals sigmoid(fc(mean)) computed on ultralytics' own submodule
    feats = {}
    hook = model.model[layers[0].i].register_forward_hook(lambda m, i, o: feats.setdefault("in", i[0]))
    with torch.no_grad():
        model(x)
    hook.remove()
    ca = model.model[layers[0].i].channel_attention
    want = torch.sigmoid(ca.fc(ca.pool(feats["in"])))
    got = maps[f"model.{layers[0].i}.channel_attention.gate"]
    assert torch.allclose(got, want, atol=1e-6)


def test_unknown_class_is_refused_by_name_with_the_known_list(plain_model, tmp_path):
    class Mystery(nn.Module):
        def forward(self, x):
            return x

    mods = in_fork_module(Mystery, "thirdparty_layers", "Mystery")
    model = copy.deepcopy(plain_model)
    model.model[1].add_module("extra", Mystery())
    save_with(model, tmp_path / "m.pt", mods)
    with pytest.raises(CheckpointError, match=r"thirdparty_layers\.Mystery.*Known:.*EMA"):
        load_model(tmp_path / "m.pt")
    assert "thirdparty_layers" not in sys.modules


def test_mismatched_weights_are_refused(plain_model, tmp_path):
    model = copy.deepcopy(plain_model)
    model.model[0].conv = nn.Conv2d(3, 16, 5, 2, 2, bias=False)  # the YAML says 3x3
    torch.save({"model": model}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"model\.0\.conv\.weight has shape \(16, 3, 5, 5\)"):
        load_model(tmp_path / "bad.pt")


ULTRALYTICS_FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "ultralytics"


@pytest.mark.parametrize("name, cbam_layers", [("u8-plain-best.pt", 0), ("u8-cbam-best.pt", 1),
                                               ("u8-cbam-last.pt", 1)])
def test_checkpoints_written_by_ultralytics_trainer_load_with_equal_outputs(name, cbam_layers):
    """best.pt as the trainer strips it; last.pt as it is during training (EMA, optimizer, scaler...)."""
    from attention_lens.runtime.capture import capture_gates

    model = load_model(ULTRALYTICS_FIXTURES / name)
    exp = torch.load(ULTRALYTICS_FIXTURES / f"{name.rsplit('-', 1)[0]}.expected.pt", weights_only=True)
    maps, inputs = {}, {}
    with torch.no_grad(), capture_gates(model, maps, inputs):
        got = model(exp["input"])[0]
    assert torch.allclose(got, exp["output"], atol=1e-5)
    assert model.names == {0: "box", 1: "block"} and model.train_args["name"] == name.rsplit("-", 1)[0]
    assert sum(isinstance(m, UltralyticsCBAM) for m in model.modules()) == cbam_layers
    assert len(maps) == 2 * cbam_layers  # ultralytics' CBAM: its channel and spatial gates, hooked
