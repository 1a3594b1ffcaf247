"""Labelled data sets to evaluate on: a YOLO ``data.yaml`` and split, a Pascal VOC folder, or a zip.

A split is read into numbers only: each image's path and size, and its ground-truth boxes in
the image's own pixels (class index, x1, y1, x2, y2). An image that cannot be used (a damaged file,
a malformed label file) is skipped and listed with its reason, as ultralytics skips it. A data set
that came from an upload is confined to its folder: every path its data.yaml names must resolve
inside it, so a YAML cannot point the app at files elsewhere on the server; a ``path`` written on
another machine is read as the YAML's own folder when the splits are found there.
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attention_lens.cache import BoundedCache, remove_folder
from attention_lens.env import run_folder
from attention_lens.data.archives import extracted
from attention_lens.data.convert import convert_voc
from attention_lens.data.image_files import ImageFileError, checked_size
from attention_lens.data.voc_tree import IMAGE_SUFFIXES, SPLITS, looks_like_voc

MAX_IMAGES = 5000
MAX_LABEL_BYTES = 1 * 2**20
#: Boxes one image's labels may hold (ultralytics keeps at most 300 detections an image).
MAX_BOXES_PER_IMAGE = 1000


class DatasetError(ValueError):
    """A data set cannot be read; the message says why without naming server paths."""


@dataclass
class Split:
    """One labelled split, as numbers: what the evaluator and the stored zoo results need."""
    name: str  # data set name
    split: str
    classes: list[str]
    images: list[str]  # file names (stems are the keys everywhere)
    sizes: list[tuple[int, int]]  # (height, width) per image
    boxes: list[np.ndarray]  # per image (n, 5): class, x1, y1, x2, y2 in image pixels
    fingerprint: str = ""
    paths: list[Path] = field(default_factory=list, repr=False)  # empty for a stored split (no pixels)
    #: Files left out, with the reason: {"file": name, "reason": text}; and notes on how it was read.
    skipped: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def has_pixels(self) -> bool:
        return bool(self.paths)

    def as_dict(self) -> dict:
        """JSON-ready: numbers and file names only (never pixels or server paths)."""
        return {"name": self.name, "split": self.split, "classes": self.classes, "fingerprint": self.fingerprint,
                "skipped": self.skipped, "notes": self.notes,
                "images": [{"file": f, "height": h, "width": w, "boxes": np.round(b, 2).tolist()}
                           for f, (h, w), b in zip(self.images, self.sizes, self.boxes)]}

    @classmethod
    def from_dict(cls, d: dict) -> Split:
        try:
            images = d["images"]
            boxes = [np.asarray(i["boxes"], dtype=np.float64).reshape(-1, 5) for i in images]
            skipped = [{"file": str(x["file"]), "reason": str(x["reason"])} for x in d.get("skipped", [])]
            return cls(str(d["name"]), str(d["split"]), [str(c) for c in d["classes"]],
                       [str(i["file"]) for i in images], [(int(i["height"]), int(i["width"])) for i in images],
                       boxes, str(d.get("fingerprint", "")), skipped=skipped,
                       notes=[str(x) for x in d.get("notes", [])])
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"stored split unreadable ({type(e).__name__})") from None


def read_split(data_yaml: str | Path, split: str = "test", confine: bool = False) -> Split:
    """A split of a YOLO data set (ultralytics' layout: images/..., labels/... beside them).

    ``confine``: every path the YAML names must lie inside the YAML's folder (uploads)."""
    from attention_lens.data.yaml_files import MAX_YAML_BYTES, YamlError, load_plain_yaml

    data_yaml = Path(data_yaml)
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    try:
        if data_yaml.stat().st_size > MAX_YAML_BYTES:
            raise DatasetError(f"data.yaml is larger than {MAX_YAML_BYTES // 2**10} KB")
        cfg = load_plain_yaml(data_yaml.read_bytes()) or {}
    except YamlError as e:
        raise DatasetError(f"data.yaml {e}") from None
    except OSError as e:
        raise DatasetError(f"data.yaml unreadable ({type(e).__name__})") from None
    if not isinstance(cfg, dict):
        raise DatasetError("data.yaml is not a mapping")
    classes = _class_names(cfg.get("names"))
    root_dir = data_yaml.parent.resolve()
    entry = cfg.get(split)
    if not isinstance(entry, str) or not entry:
        raise DatasetError(f"data.yaml names no '{split}' split")
    base, notes = _base_folder(cfg.get("path"), entry, root_dir, confine)
    where = (base / entry).resolve()
    if confine and not where.is_relative_to(root_dir):
        raise DatasetError("data.yaml points outside its own folder")
    image_paths = _list_images(where, root_dir if confine else None)
    if not image_paths and notes:
        raise DatasetError(f"data.yaml points outside its own folder, and no '{split}' images were found beside it")
    if not image_paths:
        raise DatasetError(f"the '{split}' split holds no images")
    if len(image_paths) > MAX_IMAGES:
        raise DatasetError(f"the '{split}' split holds more than {MAX_IMAGES} images")
    kept, sizes, boxes, skipped = [], [], [], []
    for p in image_paths:
        try:
            h, w = checked_size(p)
            labels = _read_labels(_label_path(p), w, h, len(classes))
        except (ImageFileError, DatasetError) as e:
            skipped.append({"file": p.name, "reason": str(e)})
            continue
        kept.append(p)
        sizes.append((h, w))
        boxes.append(labels)
    if not kept:
        first = skipped[0]
        raise DatasetError(f"none of the {len(image_paths)} images of the '{split}' split is usable "
                           f"(first: {first['file']}: {first['reason']})")
    name = str(cfg.get("name") or root_dir.name)
    return Split(name, split, classes, [p.name for p in kept], sizes, boxes, _fingerprint(kept, boxes), kept,
                 skipped=skipped, notes=notes)


def _base_folder(path, entry: str, root_dir: Path, confine: bool) -> tuple[Path, list[str]]:
    """The folder the YAML's split entries are relative to, and a note when it is not what ``path``
    says: a relative ``path`` is read from the YAML's folder; an absolute one written on another
    machine (or outside an upload) is read as the YAML's folder when the split is found there."""
    base = Path(str(path or "."))
    resolved = (root_dir / base).resolve() if not base.is_absolute() else base.resolve()
    if not confine and (resolved / entry).exists():
        return resolved, []
    if confine and resolved.is_relative_to(root_dir):
        return resolved, []
    if (root_dir / entry).exists() and (root_dir / entry).resolve().is_relative_to(root_dir):
        return root_dir, ["data.yaml's 'path' names a folder elsewhere; its splits were found beside the YAML "
                          "and read from there"]
    if confine:
        raise DatasetError("data.yaml points outside its own folder")
    return resolved, []


def _class_names(names) -> list[str]:
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        out = [str(names[k]) for k in sorted(names)]
        if sorted(names) != list(range(len(names))):
            raise DatasetError("data.yaml's class indices are not 0..n-1")
    elif isinstance(names, list):
        out = [str(n) for n in names]
    else:
        raise DatasetError("data.yaml has no class names ('names')")
    if not out or len(out) > 1000:
        raise DatasetError("data.yaml names no classes, or more than 1000")
    return out


def _list_images(where: Path, confine_to: Path | None) -> list[Path]:
    if where.is_dir():
        found = [p for p in where.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    elif where.is_file() and where.suffix == ".txt":
        lines = where.read_text(errors="replace").splitlines()[: MAX_IMAGES + 1]
        found = [(where.parent / line.strip()).resolve() for line in lines if line.strip()]
        found = [p for p in found if p.is_file()]
    else:
        raise DatasetError("the split's folder or list was not found")
    if confine_to is not None:
        found = [p for p in found if p.resolve().is_relative_to(confine_to)]
    return sorted(found, key=lambda p: p.name)


def _label_path(image: Path) -> Path:
    """ultralytics' rule: the last 'images' folder in the path becomes 'labels', suffix .txt."""
    parts = list(image.parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        parts[i] = "labels"
    return Path(*parts).with_suffix(".txt")


def _read_labels(path: Path, w: int, h: int, nc: int) -> np.ndarray:
    """YOLO label rows (class cx cy bw bh, normalised) -> (n, 5) class, x1, y1, x2, y2 in pixels."""
    if not path.is_file():
        return np.zeros((0, 5))
    if path.stat().st_size > MAX_LABEL_BYTES:
        raise DatasetError(f"{path.name}: label file larger than 1 MB")
    rows = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            c, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:5])
        except (ValueError, TypeError):
            raise DatasetError(f"{path.name} line {n}: not 'class cx cy w h'") from None
        if not 0 <= c < nc:
            raise DatasetError(f"{path.name} line {n}: class {c} is not in data.yaml's names")
        if not all(0 <= v <= 1 for v in (cx, cy, bw, bh)):  # NaN fails every comparison
            raise DatasetError(f"{path.name} line {n}: box values must be numbers from 0 to 1 (normalised)")
        if len(rows) == MAX_BOXES_PER_IMAGE:
            raise DatasetError(f"{path.name}: more than {MAX_BOXES_PER_IMAGE} boxes in one image")
        rows.append((c, (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def _fingerprint(paths: list[Path], boxes: list[np.ndarray]) -> str:
    """Names, pixels (each file's bytes) and labels of a split: the same split gives the same
    fingerprint wherever it lives, and the same names and labels over other pixels another one."""
    h = hashlib.sha256()
    for p, b in zip(paths, boxes):
        h.update(p.name.encode())
        h.update(file_digest(p).encode())
        h.update(np.round(b, 1).tobytes())
    return h.hexdigest()[:16]


#: (resolved path, size, mtime) -> sha256 of the file's bytes: a split's images are hashed once
#: per version of each file, not on every evaluation.
_DIGESTS: BoundedCache[str] = BoundedCache(4 * MAX_IMAGES)


def file_digest(path: Path) -> str:
    """sha256 (hex) of a file's bytes, cached by its resolved path, size and modification time."""
    st = path.stat()

    def digest() -> str:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()

    return _DIGESTS.get_or_make((str(path.resolve()), st.st_size, st.st_mtime_ns), digest)


def open_dataset(source: str | Path, split: str = "test", uploaded: bool = False) -> Split:
    """A split from a data.yaml, a folder holding one (or Pascal VOC annotations, whatever their
    folders are called), or a zip of either. ``uploaded`` confines every path to the upload's own
    folder."""
    source = Path(source)
    if source.suffix.lower() == ".zip":
        try:
            source = extracted(source, prefix="attention-lens-data-")
        except ValueError as e:
            raise DatasetError(f"data set zip refused: {e}") from None
        uploaded = True
    if source.is_file() and source.suffix.lower() in (".yaml", ".yml"):
        return read_split(source, split, confine=uploaded)
    if not source.is_dir():
        raise DatasetError("not a data.yaml, a folder or a zip")
    yamls = sorted(p for p in source.rglob("*.y*ml") if p.is_file() and p.name in ("data.yaml", "data.yml"))
    if yamls:
        return read_split(yamls[0], split, confine=uploaded)
    if not looks_like_voc(source):
        raise DatasetError("no data.yaml and no Pascal VOC annotations (.xml) found")
    out, report = _converted(source)
    read = read_split(out / "data.yaml", split, confine=True)
    # what the conversion left out: files of this split, and those skipped before the split was made
    read.skipped = [{"file": x["file"], "reason": x["reason"]} for x in report.get("skipped", [])
                    if x.get("split") in (None, split)] + read.skipped
    read.notes = [f"Pascal VOC converted by voc2yolo (splits from {report.get('split_source', '?')})"] + read.notes
    read.name = _folder_name(source)
    return read


def _folder_name(source: Path) -> str:
    """The data set's own name: the folder, or the one folder a zip unpacked into."""
    entries = [p for p in source.iterdir() if not p.name.startswith(".")][:2]
    return entries[0].name if len(entries) == 1 and entries[0].is_dir() else source.name


#: VOC trees already converted: (folder, its annotation files' names, sizes and times) -> the
#: converted copy and its report, so asking for another split or evaluating again does not convert
#: (and fill the disk) again.
_CONVERTED: BoundedCache[tuple] = BoundedCache(8, on_evict=lambda entry: remove_folder(entry[0].parent))


def _converted(voc: Path) -> tuple[Path, dict]:
    def convert() -> tuple[Path, dict]:
        out = Path(tempfile.mkdtemp(prefix="attention-lens-voc-", dir=run_folder())) / "data"
        try:
            report = convert_voc(voc, out)
        except ValueError as e:  # ConversionError, or a check of the report's numbers
            remove_folder(out.parent)
            reason = str(e).replace(str(voc.resolve()), "the VOC folder").replace(str(out.resolve()), "the converted copy")
            raise DatasetError(f"VOC conversion failed: {reason}") from None
        return out, report.as_dict()

    key = (str(voc.resolve()), _tree_state(voc))
    hit = _CONVERTED.get(key)
    if hit is not None and not (hit[0] / "data.yaml").is_file():  # removed under us (a session sweep)
        _CONVERTED.put(key, convert())
    return _CONVERTED.get_or_make(key, convert)


def _tree_state(root: Path) -> str:
    """A digest of the names, sizes and modification times of the files under ``root``."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
