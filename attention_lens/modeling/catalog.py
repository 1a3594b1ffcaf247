"""The model catalogue: shipped checkpoints from weights/manifest.json, plus user uploads.

Models are loaded once through the safe loader, fused, and shared read-only by every session.
Uploads are cached by content hash, so the same file is loaded once and nobody can reach a
model without its bytes.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from attention_lens.modeling.checkpoints import CheckpointError, load_checkpoint

from attention_lens.modeling.load import load_model, model_from_checkpoint

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
    def model(self) -> str:
        """ultralytics' name for the base: yolov5 bases are its anchor-free "u" layout."""
        base = self.base or ""
        return base + "u" if base.startswith("yolov5") and not base.endswith("u") else base

    @property
    def group(self) -> str:
        """Base and placement, e.g. "yolov8n · neck_outputs", or "yolov8n · baseline"."""
        return f"{self.model or '?'} · {self.placement or 'baseline'}"

    @property
    def seed_group(self) -> str:
        """What the seeds of one kind of run share (base, attention, placement): the runs whose
        spread is the seed noise of that kind."""
        return f"{self.base} {self.attention} {self.placement}"

    @property
    def label(self) -> str:
        what = self.attention or "baseline"
        seed = f" s{self.seed}" if self.seed is not None else ""
        return f"{self.group} · {what}{seed}" if self.attention else f"{self.model or '?'} · baseline{seed}"

    def sort_key(self) -> tuple:
        """Pickers and tables list models by base, baseline first, then placement, kind and seed."""
        from attention_lens.modeling.variants import base_rank

        return (*base_rank(self.base), self.attention is not None, self.placement or "", self.attention or "",
                self.seed if self.seed is not None else -1, self.name)


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


def prepare(model: torch.nn.Module, warmup_imgsz: int = 320, device: torch.device | None = None) -> torch.nn.Module:
    """Fuse conv+BN once, eval mode, no grads, on ``device`` (the process's, ``attention_lens.device``):
    the form every session shares.

    One warm-up forward: the first call pays one-off kernel set-up, which would otherwise be
    charged to whichever model a user happens to list first in the comparison's ms column.
    """
    from attention_lens.device import default_device

    if hasattr(model, "fuse"):
        model = model.fuse(verbose=False)
    device = device or default_device()
    model = model.float().eval().requires_grad_(False).to(device)
    with torch.no_grad():  # not inference_mode: tensors it caches would be unusable for LayerCAM's backward
        model(torch.zeros(1, 3, warmup_imgsz, warmup_imgsz, device=device))
    return model


def require_detection(model: torch.nn.Module, label: str) -> None:
    """Only detection heads (Detect, with or without a one-to-one branch; v10Detect; AnchorDetect;
    RT-DETR's decoder): segment, pose and OBB heads decode differently."""
    from ultralytics.nn.modules.head import Detect, RTDETRDecoder, v10Detect

    from attention_lens.modeling.yolov5_classic import AnchorDetect
    from attention_lens.modeling.yolox import YOLOXModel

    if isinstance(model, YOLOXModel):
        return
    head = getattr(model, "model", [None])[-1] if hasattr(model, "model") else None
    if type(head) not in (Detect, v10Detect, AnchorDetect, RTDETRDecoder):
        kind = type(head).__name__ if head is not None else type(model).__name__
        raise CheckpointError(f"{label}: not a detection model (its head is {kind}); "
                              "Attention Lens compares detectors: YOLO with a Detect head, or RT-DETR.")


class ModelStore:
    """Thread-safe cache of loaded models: the shipped ones by name, uploads by content hash."""

    def __init__(self, entries: list[Entry], max_uploads: int = 8):
        self.entries = {e.name: e for e in entries}
        self._order = [e.name for e in sorted(entries, key=Entry.sort_key)]  # entries never change
        self._models: dict[str, torch.nn.Module] = {}
        self._uploads: OrderedDict[str, torch.nn.Module] = OrderedDict()
        self._upload_names: dict[str, str] = {}
        self._max_uploads = max_uploads
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        """Shipped model names, grouped by base and placement (``Entry.sort_key``)."""
        return list(self._order)

    def baseline_name(self, among=None) -> str | None:
        """The first baseline (a model without attention), among ``among`` when given; there, of
        the base most of the attention models in ``among`` have, so a yolov5nu variant is
        compared with the yolov5nu baseline."""
        pool = [n for n in self.names if among is None or n in among]
        bases = [self.entries[n].base for n in pool if self.entries[n].attention]
        base = max(dict.fromkeys(bases), key=bases.count) if bases else None  # a tie: the first in catalogue order
        baselines = [n for n in pool if not self.entries[n].attention]
        return next((n for n in baselines if self.entries[n].base == base), baselines[0] if baselines else None)

    def reference_for(self, models: dict[str, torch.nn.Module]) -> str | None:
        """The reference for a set of models (name -> model, shipped and uploaded): the catalogue's
        baseline among them (``baseline_name``), else the first without attention (a user's plain
        run), else the first."""
        from attention_lens.attention import attention_modules

        shipped = self.baseline_name([n for n in models if n in self.entries])
        if shipped is not None:
            return shipped
        plain = next((n for n, m in models.items() if n not in self.entries and not attention_modules(m, built_in=False)),
                     None)
        return plain or next(iter(models), None)

    def seed_groups(self, names) -> dict[str, str]:
        """name -> ``Entry.seed_group`` for the shipped models among ``names`` (uploads have none)."""
        return {n: self.entries[n].seed_group for n in names if n in self.entries}

    def default_selection(self) -> list[str]:
        """A small default: the first base's first baseline and two of its attention kinds (EMA and
        CBAM first, whose gains were largest), at the lowest seed each, at the placement where the
        base has most variants (its main setting; a side placement is one click away)."""
        baseline = self.baseline_name()
        if baseline is None:
            return self.names[:3]
        base = self.entries[baseline].base
        variants = [n for n in self.names if self.entries[n].attention and self.entries[n].base == base]
        per_placement = Counter(self.entries[n].placement for n in variants)
        preferred = {"EMA": 0, "CBAM": 1}
        variants.sort(key=lambda n: (self.entries[n].seed or 0, -per_placement[self.entries[n].placement],
                                     preferred.get(self.entries[n].attention, 2)))
        picked, kinds = [], set()
        for n in variants:
            if self.entries[n].attention not in kinds and len(picked) < 2:
                picked.append(n)
                kinds.add(self.entries[n].attention)
        return [baseline] + [n for n in self._order if n in picked]

    def get(self, name: str) -> torch.nn.Module:
        with self._lock:
            if name not in self._models:
                if name not in self.entries:
                    raise KeyError(f"unknown model {name!r}")
                self._models[name] = prepare(load_model(self.entries[name].checkpoint))
            return self._models[name]

    def load_all(self) -> None:
        self.load(self.names)

    def load(self, names) -> None:
        """Load (and warm up) ``names`` now; any other model loads on its first use."""
        for name in names:
            self.get(name)

    @property
    def loaded(self) -> list[str]:
        with self._lock:
            return [n for n in self.names if n in self._models]

    def upload(self, path: str | Path) -> tuple[str, torch.nn.Module]:
        """(display name, model) for an uploaded detection checkpoint. Raises CheckpointError.

        The file is read in a limited child process on the calling thread; only the build (a
        fraction of a second) runs on the torch thread, so a slow or hostile file never holds
        up other users' forwards. The name says what the file holds (see ``upload_name``).
        """
        from attention_lens.torch_thread import run_on_torch_thread

        path = Path(path)
        digest = file_digest(path)
        with self._lock:
            if digest in self._uploads:
                self._uploads.move_to_end(digest)
                return self._upload_names[digest], self._uploads[digest]
        ckpt = load_checkpoint(path)
        model = run_on_torch_thread(self._build_upload, ckpt, path.name)
        with self._lock:
            name = upload_name(model, path.stem, digest, taken=set(self._upload_names.values()) | set(self.entries))
            self._uploads[digest] = model
            self._upload_names[digest] = name
            evicted = False
            while len(self._uploads) > self._max_uploads:
                old, _ = self._uploads.popitem(last=False)
                self._upload_names.pop(old, None)
                evicted = True
        if evicted and torch.cuda.is_available():
            torch.cuda.empty_cache()  # a GPU's memory of the evicted model goes back (the CPU's needs no call)
        return name, model

    @staticmethod
    def _build_upload(ckpt: dict, label: str) -> torch.nn.Module:
        model = model_from_checkpoint(ckpt, label)
        require_detection(model, label)
        return prepare(model)


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def describe(model: torch.nn.Module) -> str:
    """What a model holds: its base (named by the builder that rebuilt it) and the attention kinds
    added to it."""
    from attention_lens.attention import attention_modules

    kinds = sorted({type(m).__name__ for _, _, m in attention_modules(model, built_in=False)})
    # A base that carries self-attention (YOLO11's C2PSA, YOLO12) is still its own baseline.
    none = "no added attention" if attention_modules(model) else "no attention"
    return f"{getattr(model, 'base_name', 'yolo')}, {'+'.join(kinds) if kinds else none}"


def upload_name(model: torch.nn.Module, stem: str, digest: str, taken: set[str]) -> str:
    """The run name from the file's train args, else its stem; a short hash only when that name is taken."""
    import re

    run = str(getattr(model, "train_args", {}).get("name") or "") or stem
    run = re.sub(r"[^\w.\-+]+", "-", run).strip("-")[:40] or "upload"
    what = describe(model)
    name = f"{run} ({what})"
    return name if name not in taken else f"{run} #{digest[:6]} ({what})"
