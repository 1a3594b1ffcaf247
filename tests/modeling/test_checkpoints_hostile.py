"""Hostile checkpoints: each runs nothing, imports nothing, and is refused with a clear message."""
from __future__ import annotations

import builtins
import io
import os
import pickle
import sys
import zipfile
from collections import OrderedDict

from pathlib import Path

import pytest
import torch

from attention_lens.modeling.checkpoints import CheckpointError, read_checkpoint

from attention_lens.modeling.load import load_model


def torch_zip(path, pkl: bytes, storages: dict[str, bytes] | None = None, compress=zipfile.ZIP_STORED):
    """A file laid out as torch.save lays it out, holding the given pickle and storage bytes."""
    with zipfile.ZipFile(path, "w", compress) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
        for key, data in (storages or {}).items():
            z.writestr(f"archive/data/{key}", data)
    return path


class Call:
    """Pickles as ``func(*args)``: what a hostile file asks the loader to run."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def hostile(path, payload):
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol=2).dump({"model": payload, "ema": None})
    return torch_zip(path, buf.getvalue())


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "pwned"


@pytest.fixture
def unsafe_second_file(tmp_path, marker):
    """A second upload that runs ``touch marker`` if anything torch.loads it with weights_only=False."""
    path = tmp_path / "second.pt"
    torch.save({"x": Call(os.system, f"touch {marker}")}, path)
    return path


def refused(path, pattern=None):
    with pytest.raises(CheckpointError, match=pattern) as e:
        load_model(path)
    message = str(e.value)
    assert message.startswith(path.name) and str(path.parent) not in message
    return message


def test_calls_to_any_class_or_function_run_nothing(tmp_path, marker, unsafe_second_file):
    from ultralytics.nn.autobackend import AutoBackend
    from ultralytics.nn.tasks import DetectionModel

    payloads = {
        "autobackend": Call(AutoBackend, str(unsafe_second_file)),
        "detectionmodel": Call(DetectionModel, "/etc/passwd"),
        "system": Call(os.system, f"touch {marker}"),
        "eval": Call(builtins.eval, f"open({str(marker)!r}, 'w')"),
        "exec": Call(builtins.exec, f"open({str(marker)!r}, 'w')"),
        "torchload": Call(torch.load, str(unsafe_second_file)),
    }
    for name, payload in payloads.items():
        message = refused(hostile(tmp_path / f"{name}.pt", payload), "holds no model")
        assert not marker.exists(), name
        assert "/etc/passwd" not in message


def gadget(command: str) -> bytes:
    """{"model": getattr(__import__("os"), "system")(command)} as raw protocol-2 opcodes."""
    def text(s):
        return b"X" + len(s.encode()).to_bytes(4, "little") + s.encode()
    return (b"\x80\x02}" + text("model") + b"cbuiltins\ngetattr\ncbuiltins\n__import__\n" + text("os") + b"\x85R"
            + text("system") + b"\x86R" + text(command) + b"\x85Rs.")


def test_a_getattr_import_gadget_runs_nothing(tmp_path, marker):
    import subprocess

    live = tmp_path / "live"
    (tmp_path / "g.pkl").write_bytes(gadget(f"touch {live}"))
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())",
                    str(tmp_path / "g.pkl")], check=True)
    assert live.exists()  # the payload is live under plain pickle
    refused(torch_zip(tmp_path / "gadget.pt", gadget(f"touch {marker}")), "nothing in it was run")
    assert not marker.exists()


def test_a_named_module_is_never_imported(tmp_path, marker, monkeypatch):
    (tmp_path / "lens_evil_layers.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Layer: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pkl = b"\x80\x02}q\x00X\x05\x00\x00\x00modelq\x01clens_evil_layers\nLayer\nq\x02)\x81q\x03}q\x04bs."
    assert pickle.loads.__name__  # the bytes are a real pickle: {"model": Layer() with empty state}
    refused(torch_zip(tmp_path / "imports.pt", pkl), "holds no model")
    assert not marker.exists() and "lens_evil_layers" not in sys.modules


class _FakeStorage:
    def __init__(self, numel):
        self.numel = numel


class _FakeTensor:
    def __init__(self, numel, size=None, stride=(1,), offset=0):
        self.storage, self.size, self.stride, self.offset = _FakeStorage(numel), size or (numel,), stride, offset

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False,
                                                 OrderedDict())


def tensor_pickle(tensor: _FakeTensor) -> bytes:
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _FakeStorage):
                return "storage", torch.FloatStorage, "0", "cpu", obj.numel
            return None

    buf = io.BytesIO()
    P(buf, protocol=2).dump({"model": {"w": tensor}})
    return buf.getvalue()


def test_a_huge_declared_tensor_is_refused_before_anything_is_read(tmp_path):
    path = torch_zip(tmp_path / "huge.pt", tensor_pickle(_FakeTensor(10**12)), {"0": b"\0" * 16})
    refused(path, "declare more than")


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    path = torch_zip(tmp_path / "oob.pt", tensor_pickle(_FakeTensor(4, size=(4,), stride=(1000,))),
                     {"0": b"\0" * 16})
    refused(path, "past the end of its storage")


def test_a_storage_shorter_than_declared_is_refused(tmp_path):
    path = torch_zip(tmp_path / "short.pt", tensor_pickle(_FakeTensor(64)), {"0": b"\0" * 16})
    refused(path, "holds 16 bytes, its tensors declare 256")


def test_a_pickle_bomb_is_refused(tmp_path):
    nested = []
    for _ in range(64):
        nested = [nested, nested]  # 2**64 objects once expanded; a few hundred bytes pickled
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol=2).dump({"model": nested})
    refused(torch_zip(tmp_path / "bomb.pt", buf.getvalue()), "holds no model")


def test_deep_nesting_is_refused(tmp_path):
    pkl = b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b"."
    refused(torch_zip(tmp_path / "deep.pt", pkl), "nests too deeply|damaged")


def test_a_2gb_file_is_refused_by_size_without_reading_it(tmp_path):
    path = tmp_path / "big.pt"
    with open(path, "wb") as f:
        f.truncate(2 * 2**30)  # sparse: nothing is written
    refused(path, "larger than")


def test_a_zip_of_zeros_is_refused(tmp_path):
    path = torch_zip(tmp_path / "zeros.pt", b"\0" * (100 * 2**20), compress=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    refused(path, "pickle is larger than")


def test_time_and_memory_limits_end_the_reader(tmp_path):
    path = hostile(tmp_path / "slow.pt", list(range(500_000)))  # ~2 MB of pickle, ~30 MB unpickled
    with pytest.raises(CheckpointError, match="took longer than"):
        read_checkpoint(path, timeout=0.001)
    with pytest.raises(CheckpointError, match="memory|could not be read"):
        read_checkpoint(path, limits={"memory_bytes": 32 * 2**20, "cpu_seconds": 2})
    assert read_checkpoint(path)["model"][-1] == 499_999  # within the default limits it reads


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_hostile_files_leave_the_server_memory_where_it_was(tmp_path):
    nested = []
    for _ in range(40):
        nested = [nested, nested]
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol=2).dump({"model": nested})
    files = [torch_zip(tmp_path / "bomb.pt", buf.getvalue()),
             torch_zip(tmp_path / "huge.pt", tensor_pickle(_FakeTensor(10**11)), {"0": b"\0" * 16})]
    refused(files[0], "holds no model")
    before = rss_mb()
    for _ in range(3):
        for f in files:
            refused(f)
    assert rss_mb() - before < 20


# ----------------------------------------------------------------------------- names in the YAML
def _plain_checkpoint_with_row(tmp_path, name: str, args: list):
    """The ultralytics trainer's plain fixture with its first row naming ``name`` (a real
    ultralytics best.pt otherwise: the attack of a shipped-looking checkpoint)."""
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "ultralytics" / "u8-plain-best.pt"
    ckpt = torch.load(fixture, map_location="cpu", weights_only=False)  # our own fixture, trusted
    ckpt["model"].yaml["backbone"][0] = [-1, 1, name, args]
    path = tmp_path / f"row-{name.replace('.', '_')}.pt"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("name, args", [
    ("torch_load", ["nearest"]),  # ultralytics.nn.tasks imports torch_load: torch.load(weights_only=False)
    ("yaml_model_load", ["nearest"]),
    ("check_requirements", ["nearest"]),
    ("nn.functional", []),
    ("TorchVision", [16, "nearest"]),  # a real ultralytics layer, but it loads models by name
    ("DetectionModel", ["nearest"]),
])
def test_a_yaml_row_naming_anything_outside_the_layer_table_runs_nothing(tmp_path, marker, monkeypatch, name,
                                                                          args):
    # A file named like the row's argument in the working directory, which torch.load would run.
    monkeypatch.chdir(tmp_path)
    torch.save({"x": Call(os.system, f"touch {marker}")}, tmp_path / "nearest")
    message = refused(_plain_checkpoint_with_row(tmp_path, name, args), "layer 0 names")
    assert name in message and "not a layer Attention Lens builds" in message
    assert not marker.exists()


def test_every_row_name_in_ultralytics_detection_yamls_is_in_the_table():
    """The table is explicit, so a new ultralytics layer must be added by hand: this lists the
    names ultralytics' own detection YAMLs use that the table lacks (independently of the table:
    read from the YAML files ultralytics ships)."""
    import glob

    import ultralytics
    import yaml

    from attention_lens.modeling.yaml_layers import ULTRALYTICS_ROWS, TORCH_ROWS

    root = Path(ultralytics.__file__).parent / "cfg" / "models"
    used = set()
    for f in glob.glob(str(root / "**" / "*.yaml"), recursive=True):
        d = yaml.safe_load(Path(f).read_text())
        rows = (d.get("backbone") or []) + (d.get("head") or [])
        if rows and rows[-1][2] in ("Detect", "v10Detect", "RTDETRDecoder"):
            used |= {r[2] for r in rows}
    other_tasks = {"TorchVision", "ImagePoolingAttn", "C2fAttn"}  # left out on purpose (module docstring)
    assert used - other_tasks <= ULTRALYTICS_ROWS | TORCH_ROWS
    from ultralytics.nn import tasks

    for name in ULTRALYTICS_ROWS:  # each resolves, as ultralytics resolves it, to a layer class
        layer = vars(tasks)[name]
        assert isinstance(layer, type) and issubclass(layer, torch.nn.Module) and not issubclass(layer, tasks.BaseModel)


# ----------------------------------------------------------------------------- sizes before allocation
def test_a_zero_stride_tensor_that_repeats_its_storage_is_refused(tmp_path):
    # 16 bytes of storage read as a million-element tensor: how a tiny file declares a wide layer.
    path = torch_zip(tmp_path / "stride0.pt", tensor_pickle(_FakeTensor(4, size=(1000, 1000), stride=(0, 0))),
                     {"0": b"\0" * 16})
    refused(path, "repeats the elements of its storage")


def test_a_compressed_storage_is_refused(tmp_path):
    # 512 MiB of zeros deflate to ~0.5 MB: the parent would receive and hold them all.
    n = 64 * 2**20
    path = torch_zip(tmp_path / "deflated.pt", tensor_pickle(_FakeTensor(n // 4)), {"0": b"\0" * n},
                     compress=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    refused(path, "is compressed")


def _yolox_declaring(base: int, depth: int) -> dict:
    """A YOLOX-looking state dict: its stem says width ``base``, its bottleneck names say ``depth``;
    the tensors themselves are a few hundred KB (the 68 KB attack of issue 31)."""
    sd = {"backbone.backbone.stem.conv.conv.weight": torch.zeros(base, 12, 3, 3, dtype=torch.float16),
          "head.cls_preds.0.weight": torch.zeros(80, 1, 1, 1, dtype=torch.float16),
          "head.stems.0.conv.weight": torch.zeros(256, 1, 1, 1, dtype=torch.float16)}
    for i in range(depth):
        sd[f"backbone.backbone.dark2.1.m.{i}.conv1.conv.weight"] = torch.zeros(1, dtype=torch.float16)
        sd[f"backbone.C3_p4.m.{i}.conv1.conv.weight"] = torch.zeros(1, dtype=torch.float16)
    return sd


def test_a_tiny_yolox_file_declaring_billions_of_parameters_is_refused_before_it_is_built(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save({"model": _yolox_declaring(256, 16)}, path)
    assert path.stat().st_size < 200_000
    import time

    refused(path)  # warm: the reader's child process and ultralytics' imports
    before, start = rss_mb(), time.perf_counter()
    for _ in range(3):
        message = refused(path, "do not fit the architecture|parameters")
    assert time.perf_counter() - start < 15
    assert rss_mb() - before < 100, "a refused build left memory behind"
    assert "Traceback" not in message and "alloc" not in message.lower()


def test_an_ultralytics_yaml_scaled_to_4096_channels_is_refused_before_it_is_built(tmp_path):
    import time

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "ultralytics" / "u8-plain-best.pt"
    ckpt = torch.load(fixture, map_location="cpu", weights_only=False)  # our own fixture, trusted
    ckpt["model"].yaml["scales"] = {"n": [1.0, 2.0, 4096]}
    ckpt["model"].yaml["scale"] = "n"
    path = tmp_path / "wide.pt"
    torch.save(ckpt, path)
    refused(path)
    before, start = rss_mb(), time.perf_counter()
    for _ in range(3):
        refused(path, "do not fit the architecture|weight .* has shape|parameters")
    assert time.perf_counter() - start < 15
    assert rss_mb() - before < 100
