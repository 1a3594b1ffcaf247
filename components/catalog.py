"""The model catalogue: shipped checkpoints from weights/manifest.json, plus user uploads.

Models are loaded once through the safe loader, fused, and shared read-only by every session.
Uploads are cached by content hash, so the same file is loaded once and nobody can reach a
model without its bytes.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoints import CheckpointError, load_model

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Entry:
    name: str
    checkpoint: Path
    base: str | None = None
    attention: str | None = None
    placement: str | None = None
    seed: int | None = None
    run: Path | None = None

    @property
    def label(self) -> str:
        what = f"{self.attention} @ {self.placement}" if self.attention else "baseline"
        return f"{self.name} ({what})"


def read_manifest(weights_dir: str | Path) -> list[Entry]:
    """Entries of weights_dir/manifest.json; an absent manifest means an empty catalogue."""
    weights_dir = Path(weights_dir)
    path = weights_dir / MANIFEST
    if not path.is_file():
        return []
    entries = []
    for item in json.loads(path.read_text()).get("models", []):
        entries.append(Entry(name=item["name"], checkpoint=weights_dir / item["checkpoint"], base=item.get("base"),
                             attention=item.get("attention"), placement=item.get("placement"),
                             seed=item.get("seed"), run=(weights_dir / item["run"]) if item.get("run") else None))
    return entries


def prepare(model: torch.nn.Module, warmup_imgsz: int = 320) -> torch.nn.Module:
    """Fuse conv+BN once, eval mode, no grads: the form every session shares.

    One warm-up forward: the first call pays one-off kernel set-up, which would otherwise be
    charged to whichever model a user happens to list first in the comparison's ms column.
    """
    if hasattr(model, "fuse"):
        model = model.fuse(verbose=False)
    model = model.float().eval().requires_grad_(False)
    with torch.no_grad():  # not inference_mode: tensors it caches would be unusable for LayerCAM's backward
        model(torch.zeros(1, 3, warmup_imgsz, warmup_imgsz))
    return model


def require_detection(model: torch.nn.Module, label: str) -> None:
    """Only plain detection heads: segment, pose, OBB and end-to-end heads decode differently."""
    from ultralytics.nn.modules.head import Detect

    head = getattr(model, "model", [None])[-1] if hasattr(model, "model") else None
    if type(head) is not Detect:
        kind = type(head).__name__ if head is not None else type(model).__name__
        raise CheckpointError(f"{label}: not a YOLO detection model (its head is {kind}); "
                              "Attention Lens compares detectors with a Detect head.")


class ModelStore:
    """Thread-safe cache of loaded models: the shipped ones by name, uploads by content hash."""

    def __init__(self, entries: list[Entry], max_uploads: int = 8):
        self.entries = {e.name: e for e in entries}
        self._models: dict[str, torch.nn.Module] = {}
        self._uploads: OrderedDict[str, torch.nn.Module] = OrderedDict()
        self._max_uploads = max_uploads
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def baseline_name(self) -> str | None:
        return next((e.name for e in self.entries.values() if not e.attention), None)

    def get(self, name: str) -> torch.nn.Module:
        with self._lock:
            if name not in self._models:
                if name not in self.entries:
                    raise KeyError(f"unknown model {name!r}")
                self._models[name] = prepare(load_model(self.entries[name].checkpoint))
            return self._models[name]

    def load_all(self) -> None:
        for name in self.names:
            self.get(name)

    def upload(self, path: str | Path) -> tuple[str, torch.nn.Module]:
        """(display name, model) for an uploaded detection checkpoint. Raises CheckpointError."""
        path = Path(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        key = f"upload:{path.stem}:{digest}"
        with self._lock:
            if key in self._uploads:
                self._uploads.move_to_end(key)
                return key, self._uploads[key]
        model = load_model(path)
        require_detection(model, path.name)
        model = prepare(model)
        with self._lock:
            self._uploads[key] = model
            while len(self._uploads) > self._max_uploads:
                self._uploads.popitem(last=False)
        return key, model
