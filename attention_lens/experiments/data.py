"""Pascal VOC -> ultralytics YOLO layout, with a data.yaml and a report of what was fixed.

The output is written to a sibling temp directory and renamed into place only when complete,
so an interrupted or failed conversion never leaves a folder that looks finished.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ConversionError(ValueError):
    """A file in the VOC tree cannot be converted; the message names it."""


@dataclass
class Box:
    name: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float


@dataclass
class Report:
    images: dict = field(default_factory=dict)  # split -> count
    boxes: dict = field(default_factory=dict)  # split -> {class: count}
    clipped: list = field(default_factory=list)  # "file: box" descriptions
    dropped: list = field(default_factory=list)
    split_source: str = ""

    def as_dict(self) -> dict:
        return {"images": self.images, "boxes": self.boxes, "clipped": self.clipped, "dropped": self.dropped,
                "split_source": self.split_source}


def read_annotation(xml_path: Path) -> tuple[str, list[Box]]:
    """(image filename, boxes) from one VOC XML file."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise ConversionError(f"{xml_path.name}: unreadable XML ({e})") from None
    filename = (root.findtext("filename") or "").strip() or xml_path.stem + ".jpg"
    boxes = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        try:
            coords = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (AttributeError, TypeError, ValueError):
            raise ConversionError(f"{xml_path.name}: an object '{name}' has no valid bndbox") from None
        if not name:
            raise ConversionError(f"{xml_path.name}: an object has no class name")
        boxes.append(Box(name, *coords))
    return filename, boxes


def find_image(images_dir: Path, filename: str, stem: str) -> Path | None:
    candidate = images_dir / filename
    if candidate.is_file():
        return candidate
    for suffix in IMAGE_SUFFIXES:
        for s in (suffix, suffix.upper()):
            if (images_dir / f"{stem}{s}").is_file():
                return images_dir / f"{stem}{s}"
    return None


def read_splits(src: Path, stems: list[str], fractions: tuple[float, float, float], seed: int) -> tuple[dict, str]:
    """split -> stems, from ImageSets/Main when present, else a seeded random split."""
    main = src / "ImageSets" / "Main"
    if all((main / f"{s}.txt").is_file() for s in SPLITS):
        splits = {s: [ln.strip() for ln in (main / f"{s}.txt").read_text().splitlines() if ln.strip()] for s in SPLITS}
        known = set(stems)
        for s, names in splits.items():
            missing = [n for n in names if n not in known]
            if missing:
                raise ConversionError(f"ImageSets/Main/{s}.txt lists {missing[0]}, which has no annotation")
        return splits, "ImageSets/Main"
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ConversionError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    order = sorted(stems)
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(order))
    n_val = round(fractions[1] * len(order))
    return ({"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]},
            f"seeded split {fractions} seed {seed}")


def clip_box(box: Box, width: int, height: int) -> tuple[Box | None, bool]:
    """The box clipped to the image, or None when nothing of it is left; and whether it changed."""
    x1, y1 = max(0.0, min(box.xmin, box.xmax)), max(0.0, min(box.ymin, box.ymax))
    x2, y2 = min(float(width), max(box.xmin, box.xmax)), min(float(height), max(box.ymin, box.ymax))
    changed = (x1, y1, x2, y2) != (box.xmin, box.ymin, box.xmax, box.ymax)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None, True
    return Box(box.name, x1, y1, x2, y2), changed


def convert_voc(src: str | Path, dst: str | Path, names: list[str] | None = None,
                fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0,
                overwrite: bool = False) -> Report:
    """Convert the VOC tree at ``src`` into ``dst`` (images/, labels/, data.yaml, report.json)."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    ann_dir, img_dir = src / "Annotations", src / "JPEGImages"
    if not ann_dir.is_dir() or not img_dir.is_dir():
        raise ConversionError(f"{src}: expected Annotations/ and JPEGImages/ (a Pascal VOC folder)")
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise ConversionError(f"{dst} exists and is not empty; pass overwrite to replace it")
    xmls = sorted(ann_dir.glob("*.xml"))
    if not xmls:
        raise ConversionError(f"{ann_dir}: no .xml annotations")

    parsed = {}
    for xml_path in xmls:
        filename, boxes = read_annotation(xml_path)
        image = find_image(img_dir, filename, xml_path.stem)
        if image is None:
            raise ConversionError(f"{xml_path.name}: its image {filename} is missing from JPEGImages/")
        parsed[xml_path.stem] = (image, boxes)

    found = sorted({b.name for _, boxes in parsed.values() for b in boxes})
    if names:
        for stem, (_, boxes) in parsed.items():
            unknown = sorted({b.name for b in boxes} - set(names))
            if unknown:
                raise ConversionError(f"{stem}.xml: unknown class {unknown[0]!r}; known: {list(names)}")
        classes = list(names)
    else:
        classes = found
    splits, source = read_splits(src, list(parsed), fractions, seed)

    report = Report(split_source=source)
    tmp = dst.parent / f".{dst.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for split, stems in splits.items():
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            counts = Counter()
            for stem in stems:
                image, boxes = parsed[stem]
                try:
                    with Image.open(image) as im:
                        width, height = im.size
                except OSError as e:
                    raise ConversionError(f"{image.name}: unreadable image ({e})") from None
                lines = []
                for box in boxes:
                    fixed, changed = clip_box(box, width, height)
                    desc = f"{stem}.xml: {box.name} ({box.xmin:g},{box.ymin:g},{box.xmax:g},{box.ymax:g})"
                    if fixed is None:
                        report.dropped.append(desc)
                        continue
                    if changed:
                        report.clipped.append(desc)
                    counts[fixed.name] += 1
                    cx, cy = (fixed.xmin + fixed.xmax) / 2 / width, (fixed.ymin + fixed.ymax) / 2 / height
                    bw, bh = (fixed.xmax - fixed.xmin) / width, (fixed.ymax - fixed.ymin) / height
                    lines.append(f"{classes.index(fixed.name)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
                _link_or_copy(image, tmp / "images" / split / image.name)
                (tmp / "labels" / split / f"{Path(image.name).stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            report.images[split] = len(stems)
            report.boxes[split] = {c: counts[c] for c in classes}
        data_yaml = {"path": str(dst), "train": "images/train", "val": "images/val", "test": "images/test",
                     "names": dict(enumerate(classes))}
        (tmp / "data.yaml").write_text(_yaml(data_yaml))
        (tmp / "report.json").write_text(json.dumps(report.as_dict(), indent=2))
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _yaml(d: dict) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)


def add_cli(sub) -> None:
    p = sub.add_parser("voc2yolo", help="convert a Pascal VOC folder into the ultralytics YOLO layout")
    p.add_argument("src", help="VOC root holding Annotations/ and JPEGImages/")
    p.add_argument("dst", help="output folder (written atomically)")
    p.add_argument("--names", nargs="+", help="class list in index order (default: from the annotations, sorted)")
    p.add_argument("--split", default="0.7,0.15,0.15", help="train,val,test fractions when ImageSets is absent")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=_run)


def _run(args) -> int:
    fractions = tuple(float(x) for x in args.split.split(","))
    report = convert_voc(args.src, args.dst, args.names, fractions, args.seed, args.overwrite)
    print(f"splits from {report.split_source}")
    for split in SPLITS:
        boxes = ", ".join(f"{k} {v}" for k, v in report.boxes[split].items())
        print(f"  {split:<5} {report.images[split]:>5} images  {boxes}")
    print(f"boxes clipped to the image: {len(report.clipped)}; dropped (nothing left): {len(report.dropped)}")
    for line in report.clipped + report.dropped:
        print(f"  {line}")
    print(f"wrote {Path(args.dst).resolve() / 'data.yaml'}")
    return 0
