"""Safe checkpoint loading: a restricted unpickler with an allow-list, nothing executed.

A checkpoint may name only: torch layers, ultralytics model classes (``ultralytics.nn``), this
project's attention modules, and a few plain data types. Every global the file references is
listed first, without unpickling anything; one outside the allow-list refuses the whole file,
naming it. The unpickling itself then runs in torch's ``weights_only`` mode, which can build
nothing that is not on the list. Nothing is installed and no code from the file runs.

Checkpoints from forks that keep the same modules under other import paths (``models.common.EMA``
in the EMA authors' YOLOv5 code, ``ultralytics.nn.modules.block.EMA`` in tutorial forks) are
mapped onto ours when their parameters match.
"""
from __future__ import annotations

import importlib
import pathlib
import threading
import zipfile
from pathlib import Path

import torch
from torch import nn

from . import configure_offline
from .attention import ATTENTION_MODULES, EMA, gates_of

configure_offline()

_MODULE_PREFIXES = ("torch.nn.modules.", "ultralytics.nn.", "components.attention.")
#: Plain data types found in real checkpoints (train_args paths, numpy scalars in metrics).
_DATA_TYPES = {
    "pathlib.PosixPath": pathlib.PosixPath,
    "pathlib.WindowsPath": pathlib.PureWindowsPath,
    "pathlib.PurePosixPath": pathlib.PurePosixPath,
    "pathlib.PureWindowsPath": pathlib.PureWindowsPath,
}
#: Class names a fork may use for a module we have, when its parameters match ours.
_FOREIGN_NAMES = {"EMA": EMA, "EMA_attention": EMA}
_FOREIGN_PREFIXES = ("models.", "ultralytics.nn.")
_lock = threading.Lock()


class CheckpointError(ValueError):
    """The file is not a checkpoint this project can load safely; the message says why."""


def scan_globals(path: str | Path) -> list[str]:
    """Every global (module.Name) the checkpoint's pickle references, read without unpickling."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path.name}: the file is empty")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path.name}: not a PyTorch checkpoint (expected the zip format torch.save writes)")
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception as e:  # a damaged archive raises several kinds of errors
        raise CheckpointError(f"{path.name}: the checkpoint is damaged or truncated ({e})") from None


def resolve_allowed(name: str):
    """The object ``name`` may stand for in a checkpoint, or None when it is not allowed."""
    if name in _DATA_TYPES:
        return _DATA_TYPES[name]
    module, _, attr = name.rpartition(".")
    if module.startswith(_MODULE_PREFIXES) or module in ("ultralytics.nn",):
        try:
            obj = getattr(importlib.import_module(module), attr, None)
        except ImportError:
            obj = None
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            return obj
    if attr in _FOREIGN_NAMES and module.startswith(_FOREIGN_PREFIXES):
        return _FOREIGN_NAMES[attr]
    return None


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint's dict, unpickled under the allow-list. Raises CheckpointError."""
    path = Path(path)
    refused = []
    allowed = []
    for name in scan_globals(path):
        obj = resolve_allowed(name)
        if obj is None:
            refused.append(name)
        else:
            allowed.append((obj, name))
    if refused:
        raise CheckpointError(
            f"{path.name}: refused, it references {', '.join(sorted(refused))}; a checkpoint may only name "
            "torch layers, ultralytics model classes and Attention Lens modules. Nothing was loaded or run."
        )
    # add_safe_globals is process-wide and additive: a scoped context would strip the list from
    # a concurrent load on another thread mid-unpickle.
    with _lock:
        torch.serialization.add_safe_globals(allowed)
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path.name}: could not be read safely ({str(e).splitlines()[0]})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path.name}: expected a checkpoint dict, found {type(ckpt).__name__}")
    return ckpt


def load_model(path: str | Path) -> nn.Module:
    """The detection model in a checkpoint (EMA weights when present), float32, eval mode.

    Works for checkpoints written by this project, by plain ultralytics, and by forks whose
    attention modules map onto ours.
    """
    ckpt = load_checkpoint(path)
    model = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"{Path(path).name}: holds no model (keys: {sorted(ckpt)})")
    _adopt_foreign_modules(model, Path(path).name)
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if not hasattr(model, "names"):
        model.names = {i: str(i) for i in range(getattr(model, "nc", 0) or 0)}
    model.pt_path = str(path)
    return model


def _adopt_foreign_modules(model: nn.Module, label: str) -> None:
    """Replace modules unpickled from a fork's class with fresh ones of ours, same weights."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) in ATTENTION_MODULES.values() and not _has_gates(child):  # unpickled from a fork
                setattr(parent, child_name, _rebuild(child, label))


def _has_gates(module: nn.Module) -> bool:
    return bool(gates_of(module))


def _rebuild(foreign: nn.Module, label: str) -> nn.Module:
    cls = type(foreign)
    state = foreign.state_dict()
    if cls is EMA:
        groups = int(foreign.__dict__.get("groups", 0) or 0)
        conv = foreign.__dict__.get("_modules", {}).get("conv1x1")
        if not groups or conv is None:
            raise CheckpointError(f"{label}: an EMA module from another code base has no groups/conv1x1 to map")
        fresh = EMA(conv.in_channels * groups, factor=groups)
    else:
        raise CheckpointError(f"{label}: cannot map a foreign {cls.__name__} onto Attention Lens")
    try:
        fresh.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{label}: a foreign {cls.__name__} does not match ours: {e}") from None
    for key in ("i", "f", "type", "np"):
        if key in foreign.__dict__:
            setattr(fresh, key, foreign.__dict__[key])
    return fresh.to(next(iter(state.values())).dtype) if state else fresh
