"""Checkpoint loading, safe by construction: a file is read as data, the model is built here.

1. ``read_checkpoint`` replays the file's pickle in a child process (checkpoint_reader.py, with
   memory, CPU-time and size limits) where every class the file names is an inert record; it
   hands back plain containers, ``PickledObject`` records (class path + state) and tensors.
2. ``load.load_model`` builds the model from those records (foreign.py for YAML-described
   models, yolox.py for YOLOX state dicts), first on the meta device (cost.py), and copies every
   tensor in with strict name and shape checks (``copy_weights`` here).

This module holds the records and the checks every builder shares; it imports no builder.

Nothing the file names is imported, constructed or called, in this process or the child.
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from attention_lens.modeling import checkpoint_reader as reader

#: What an upload may cost (the reader's defaults). The file cap also goes to gradio's max_file_size.
LIMITS = dict(reader.LIMITS)
READ_TIMEOUT_S = 30
#: Bounds on the architecture a checkpoint may ask this process to build.
MAX_LAYERS = 400
MAX_REPEATS = 16
MAX_MULTIPLE = 2.0
MAX_INT_ARG = 4096
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64,
           "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8,
           "uint8": torch.uint8, "bool": torch.bool}


class CheckpointError(ValueError):
    """The file is not a checkpoint this project can load safely; the message says why."""


@dataclass
class PickledObject:
    """An object the file describes: the class path it names and the data it carries."""

    path: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    state: object = None
    listitems: list = field(default_factory=list)
    dictitems: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def is_module(self) -> bool:
        return isinstance(self.state, dict) and isinstance(self.state.get("_modules"), dict) \
            and isinstance(self.state.get("_parameters"), dict)

    def attr(self, key, default=None):
        return self.state.get(key, default) if isinstance(self.state, dict) else default

    def children(self) -> dict[str, "PickledObject"]:
        return {k: v for k, v in (self.attr("_modules") or {}).items() if isinstance(v, PickledObject)}


# ----------------------------------------------------------------------------- reading
def read_checkpoint(path: str | Path, limits: dict | None = None, timeout: float = READ_TIMEOUT_S):
    """The checkpoint's top-level object as plain data, read in a limited child process."""
    path = Path(path)
    label = path.name
    limits = {**LIMITS, **(limits or {})}
    if not path.is_file():
        raise CheckpointError(f"{label}: no such file")
    cmd = [sys.executable, "-I", str(Path(reader.__file__)), str(path), json.dumps(limits)]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckpointError(f"{label}: reading it took longer than {timeout:.0f} s; refused") from None
    out = proc.stdout
    if not out.startswith(reader.MAGIC) or len(out) < len(reader.MAGIC) + 8:
        why = "ran out of the memory or time a checkpoint may use" if proc.returncode < 0 else "could not be read"
        raise CheckpointError(f"{label}: {why}; refused")
    n = struct.unpack("<Q", out[len(reader.MAGIC):len(reader.MAGIC) + 8])[0]
    start = len(reader.MAGIC) + 8
    header = json.loads(out[start:start + n])
    if "error" in header:
        raise CheckpointError(f"{label}: {header['error']}")
    blob = bytearray(memoryview(out)[start + n:])
    del out
    storages, offset = [], 0
    for dtype, numel in header["storages"]:
        dt = _DTYPES[dtype]
        nbytes = numel * torch.empty((), dtype=dt).element_size()
        storages.append(torch.frombuffer(blob, dtype=dt, count=numel, offset=offset) if numel else
                        torch.empty(0, dtype=dt))
        offset += nbytes
    if offset != len(blob):
        raise CheckpointError(f"{label}: the reader's output is inconsistent; refused")
    try:
        return _Decoder(storages)(header["tree"])
    except CheckpointError as e:
        raise CheckpointError(f"{label}: {e}") from None


class _Decoder:
    """The reader's tagged tree back into Python values; {"ref": n} is the n-th finished object."""

    def __init__(self, storages):
        self.storages, self.done = storages, []

    def __call__(self, v):
        if not isinstance(v, dict):
            return v
        if "ref" in v:
            try:
                return self.done[v["ref"]]
            except (IndexError, TypeError):
                raise CheckpointError("the reader's output refers to an unknown object") from None
        tag = "r" if "r" in v else next(iter(v))
        if tag not in ("r", "l", "t", "d", "x"):
            return self._leaf(tag, v[tag])
        out = self._container(tag, v)
        self.done.append(out)
        return out

    def _container(self, tag, v):
        if tag == "r":  # parts in the encoder's order; absent parts are not objects of the file
            parts = {k: self(v[k]) for k in ("a", "s", "li", "di", "k") if k in v}
            return PickledObject(v["r"], tuple(parts.get("a", ())), parts.get("k", {}), parts.get("s"),
                       list(parts.get("li", [])), list(parts.get("di", [])))
        x = v[tag]
        if tag == "l":
            return [self(i) for i in x]
        if tag == "t":
            return tuple(self(i) for i in x)
        if tag == "d":
            out = {}
            for k, val in x:
                k = self(k)
                out[_hashable(k)] = self(val)
            return out
        index, offset, size, stride, _param = x
        storage = self.storages[index]
        if all(s > 0 for s in size) and offset + sum((a - 1) * b for a, b in zip(size, stride)) >= storage.numel():
            raise CheckpointError("a tensor reaches past its storage")
        return storage.as_strided(size, stride, offset)

    @staticmethod
    def _leaf(tag, x):
        if tag == "f":
            return float(x)
        if tag == "b":
            import base64

            return base64.b64decode(x)
        if tag == "g":
            return PickledObject(x)
        raise CheckpointError(f"unexpected tag {tag!r} from the reader")


def _hashable(k):
    if isinstance(k, list):
        return tuple(_hashable(i) for i in k)
    if isinstance(k, (dict, PickledObject, torch.Tensor)):
        raise CheckpointError("a dict key is not plain data")
    return k


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint's top-level dict (plain data, PickledObject records, tensors). Raises CheckpointError."""
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict):
        kind = ckpt.path if isinstance(ckpt, PickledObject) else type(ckpt).__name__
        raise CheckpointError(f"{Path(path).name}: a checkpoint is a dict of data; this file holds {kind}")
    return ckpt


# ----------------------------------------------------------------------------- module records
MAX_MODULES = 20_000


def walk_modules(obj: PickledObject, prefix: str = ""):
    """(qualified name prefix, record) for the record and every module inside it, depth first.

    A shared or cyclic structure cannot make this walk forever: at most MAX_MODULES are visited."""
    stack, seen = [(prefix, obj)], 0
    while stack:
        at, o = stack.pop()
        seen += 1
        if seen > MAX_MODULES:
            raise CheckpointError(f"the model holds more than {MAX_MODULES} modules")
        yield at, o
        stack.extend((f"{at}{name}.", child) for name, child in reversed(list(o.children().items()))
                     if child.is_module)


def tensors_of(obj: PickledObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """The module record's state dict: parameters and persistent buffers, recursively."""
    out = {}
    for at, o in walk_modules(obj, prefix):
        skip = set(o.attr("_non_persistent_buffers_set") or [])
        for table in ("_parameters", "_buffers"):
            for k, t in (o.attr(table) or {}).items():
                if isinstance(t, torch.Tensor) and not (table == "_buffers" and k in skip):
                    out[at + k] = t
    return out


def module_paths(obj: PickledObject) -> set[str]:
    """Class paths of the record and every module inside it."""
    return {o.path for _, o in walk_modules(obj)}


def model_record(ckpt: dict, label: str) -> PickledObject:
    """The model in a checkpoint dict: EMA weights when the file has them (last.pt), else model."""
    for key in ("ema", "model"):
        m = ckpt.get(key)
        if isinstance(m, PickledObject) and m.is_module:
            return m
    if looks_like_state_dict(ckpt.get("model")) or looks_like_state_dict(ckpt):
        raise CheckpointError(f"{label}: holds only a state dict (tensors by name, no architecture) that is not "
                              "a YOLOX model; Attention Lens cannot tell what network it belongs to")
    raise CheckpointError(f"{label}: holds no model (keys: {sorted(map(str, ckpt))[:12]})")


def looks_like_state_dict(v) -> bool:
    return isinstance(v, dict) and bool(v) and all(isinstance(t, torch.Tensor) for t in v.values())


# ----------------------------------------------------------------------------- building
def plain_args(args) -> dict:
    """Train args as plain values: a dict (stripped files) or a namespace record (some last.pt)."""
    if isinstance(args, PickledObject):
        args = args.state
    if not isinstance(args, dict):
        return {}
    return {k: v for k, v in args.items() if isinstance(k, str) and isinstance(v, (str, int, float, bool, type(None)))}


def copy_weights(model: nn.Module, tensors: dict[str, torch.Tensor], label: str) -> None:
    """Load ``tensors`` into ``model``: the same names and shapes exactly, or refuse."""
    ours = model.state_dict()
    missing = sorted(set(ours) - set(tensors))
    extra = sorted(set(tensors) - set(ours))
    if missing or extra:
        raise CheckpointError(f"{label}: its weights do not fit the architecture it declares "
                              f"(missing {missing[:4]}, unexpected {extra[:4]})")
    for k, t in ours.items():
        if tuple(tensors[k].shape) != tuple(t.shape):
            raise CheckpointError(f"{label}: weight {k} has shape {tuple(tensors[k].shape)}, "
                                  f"the architecture needs {tuple(t.shape)}")
    if any(t.is_meta for t in ours.values()):
        return  # a model built on the meta device (cost.py): names and shapes checked, nothing to copy
    model.load_state_dict({k: tensors[k].to(ours[k].dtype) for k in ours}, strict=True)
