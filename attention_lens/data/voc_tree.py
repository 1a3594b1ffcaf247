"""A Pascal VOC data set found in a folder, whatever its folders are called.

Public VOC sets name their folders in many ways: ``Annotations/`` + ``JPEGImages/`` (the original),
``annots/`` + ``images/``, ``xml/``, or ``train/``, ``valid/``, ``test/`` each holding both. The
annotations are found by content: every ``.xml`` file whose root element is ``<annotation>``;
each one's image by the file name it records, looked up anywhere in the tree (the one nearest the
XML when several share the name). A file that cannot be used is skipped with its reason, never
the whole set.

Where the split comes from, in order: ``ImageSets/Main/{train,val,test}.txt`` anywhere in the tree;
folders named for splits (``train``, ``val``/``valid``/``validation``, ``test``) above every
annotation; otherwise ``data.py`` draws a seeded random split.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

#: Files a tree may hold (annotations and images together); more is refused before reading any.
MAX_FILES = 100_000
MAX_XML_BYTES = 4 * 2**20
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SPLITS = ("train", "val", "test")
#: Folder names that mean a split (lower case) -> the split.
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}


class ConversionError(ValueError):
    """A VOC tree cannot be converted; the message names the file (relative to the tree)."""


@dataclass
class Box:
    name: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float


@dataclass
class Annotation:
    """One annotation file and the image it labels."""
    key: str  # the XML's stem; its path in the tree (no suffix) where two XML files share a stem
    xml: Path
    image: Path
    boxes: list[Box]
    folder_split: str | None  # the split a folder above it is named for


@dataclass
class VocTree:
    root: Path
    annotations: list[Annotation]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file relative to the root, reason)
    imagesets: Path | None = None  # the ImageSets/Main folder, when the tree has one with all three lists

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def folder_splits(self) -> dict[str, list[str]] | None:
        """split -> keys, when every annotation lies under a folder named for a split and at least
        two splits occur; else None."""
        if not self.annotations or any(a.folder_split is None for a in self.annotations):
            return None
        splits = {s: [a.key for a in self.annotations if a.folder_split == s] for s in SPLITS}
        return splits if sum(bool(v) for v in splits.values()) >= 2 else None


def read_annotation(xml_path: Path) -> tuple[str, list[Box]] | None:
    """(image file name, boxes) from one VOC XML file; None when the file is XML but not a VOC
    annotation (another tool's metadata). ConversionError when it is unusable."""
    try:
        if xml_path.stat().st_size > MAX_XML_BYTES:
            raise ConversionError(f"larger than {MAX_XML_BYTES // 2**20} MB")
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise ConversionError(f"unreadable XML ({type(e).__name__})") from None
    if root.tag != "annotation":
        return None
    filename = (root.findtext("filename") or "").strip()
    boxes = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        try:
            coords = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (AttributeError, TypeError, ValueError):
            raise ConversionError(f"an object '{name[:40]}' has no valid bndbox") from None
        if not name:
            raise ConversionError("an object has no class name")
        boxes.append(Box(name, *coords))
    return filename, boxes


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """(XML files, image files) under ``root``, sorted; links are not followed."""
    xmls, images, seen = [], [], 0
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            seen += 1
            if seen > MAX_FILES:
                raise ConversionError(f"the folder holds more than {MAX_FILES:,} files")
            suffix = os.path.splitext(name)[1].lower()
            if suffix == ".xml":
                xmls.append(Path(folder) / name)
            elif suffix in IMAGE_SUFFIXES:
                images.append(Path(folder) / name)
    return xmls, images


def _split_of(path: Path, root: Path) -> str | None:
    for part in reversed(path.relative_to(root).parts[:-1]):
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return None


def _nearest(xml: Path, candidates: list[Path]) -> Path:
    """The candidate image sharing the most folders with the XML (then the same split folder's)."""
    def shared(p: Path) -> int:
        n = 0
        for a, b in zip(xml.parent.parts, p.parent.parts):
            if a != b:
                break
            n += 1
        return n
    return sorted(candidates, key=lambda p: (-shared(p), str(p)))[0]


def find_voc(root: str | Path) -> VocTree:
    """The VOC annotations under ``root`` with their images. ConversionError when there are none."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise ConversionError("not a folder")
    xmls, images = _walk(root)
    by_name: dict[str, list[Path]] = {}
    by_lower: dict[str, list[Path]] = {}  # file systems and tools disagree on case: a second chance
    for p in images:
        by_name.setdefault(p.name, []).append(p)
        by_lower.setdefault(p.name.lower(), []).append(p)
    tree = VocTree(root, [])
    stems: dict[str, int] = {}
    for x in xmls:
        stems[x.stem] = stems.get(x.stem, 0) + 1
    for xml in xmls:
        rel = tree.relative(xml)
        try:
            read = read_annotation(xml)
        except ConversionError as e:
            tree.skipped.append((rel, str(e)))
            continue
        if read is None:
            continue
        filename, boxes = read
        names = [Path(filename).name] if filename else []
        names += [xml.stem + s for s in IMAGE_SUFFIXES] + [xml.stem + s.upper() for s in IMAGE_SUFFIXES]
        candidates = next((by_name[n] for n in names if n in by_name), None)
        if candidates is None:
            candidates = next((by_lower[n.lower()] for n in names if n.lower() in by_lower), None)
        if candidates is None:
            tree.skipped.append((rel, f"its image {(filename or xml.stem)[:80]} was not found in the folder"))
            continue
        key = xml.stem if stems[xml.stem] == 1 else rel[: -len(".xml")]
        tree.annotations.append(Annotation(key, xml, _nearest(xml, candidates), boxes, _split_of(xml, root)))
    if not tree.annotations:
        found = f"{len(xmls)} XML file(s), none a usable VOC annotation" if xmls else "no .xml annotation files"
        if tree.skipped:
            found += f"; first: {tree.skipped[0][0]}: {tree.skipped[0][1]}"
        raise ConversionError(f"no Pascal VOC annotations found ({found})")
    main = sorted(p for p in root.rglob("Main") if p.is_dir() and p.parent.name == "ImageSets")
    tree.imagesets = next((m for m in main if all((m / f"{s}.txt").is_file() for s in SPLITS)), None)
    return tree


def looks_like_voc(root: str | Path, sample: int = 20) -> bool:
    """Whether a folder holds VOC annotations: one of its first ``sample`` XML files is one."""
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(".xml"):
                seen += 1
                try:
                    if read_annotation(Path(folder) / name) is not None:
                        return True
                except ConversionError:
                    pass
                if seen >= sample:
                    return False
    return False
