"""Pascal VOC -> ultralytics YOLO layout, with a data.yaml and a report of what was fixed or skipped.

The tree is found by ``voc_tree`` (any folder names). Each image is checked as ultralytics checks a
data set's images (``image_files``); a file that cannot be used is skipped and reported, never
the whole conversion. The output is written to a sibling temp directory and renamed into place only
when complete, so an interrupted or failed conversion never leaves a folder that looks finished.
Its data.yaml names no ``path``: ultralytics and this project then read the splits relative to the
YAML's own folder, so the output can be moved or zipped as it is.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from attention_lens.data.image_files import ImageFileError, checked_size
from attention_lens.data.voc_tree import (
    SPLITS,
    Box,
    ConversionError,
    VocTree,
    find_voc,
)

@dataclass
class Report:
    images: dict = field(default_factory=dict)  # split -> count
    boxes: dict = field(default_factory=dict)  # split -> {class: count}
    clipped: list = field(default_factory=list)  # "file: box" descriptions
    dropped: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # {"file", "reason", "split" (None: before the split)}
    split_source: str = ""

    def as_dict(self) -> dict:
        return {"images": self.images, "boxes": self.boxes, "clipped": self.clipped, "dropped": self.dropped,
                "skipped": self.skipped, "split_source": self.split_source}


def read_splits(tree: VocTree, keys: list[str], fractions: tuple[float, float, float], seed: int,
                report: Report) -> dict[str, list[str]]:
    """split -> annotation keys: from ImageSets/Main, else split folders, else a seeded random split.
    A listed name with no usable annotation is reported as skipped."""
    known = set(keys)
    if tree.imagesets is not None:
        where = tree.relative(tree.imagesets)
        splits = {}
        for s in SPLITS:
            names = [ln.strip() for ln in (tree.imagesets / f"{s}.txt").read_text(errors="replace").splitlines()
                     if ln.strip()]
            splits[s] = [n for n in names if n in known]
            report.skipped += [{"file": f"{where}/{s}.txt: {n[:80]}", "reason": "listed, but it has no usable "
                                "annotation and image", "split": s} for n in names if n not in known]
        report.split_source = where
        return splits
    folders = tree.folder_splits()
    if folders is not None:
        report.split_source = "folders named for the splits"
        return {s: [k for k in v if k in known] for s, v in folders.items()}
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ConversionError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(order))
    n_val = round(fractions[1] * len(order))
    report.split_source = f"seeded split {fractions} seed {seed}"
    return {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}


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
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise ConversionError(f"{dst} exists and is not empty; pass overwrite to replace it")
    tree = find_voc(src)
    report = Report(skipped=[{"file": f, "reason": r, "split": None} for f, r in tree.skipped])

    usable = {}  # key -> (annotation, (height, width))
    for a in tree.annotations:
        try:
            usable[a.key] = (a, checked_size(a.image))
        except ImageFileError as e:
            report.skipped.append({"file": tree.relative(a.image), "reason": str(e), "split": a.folder_split})
    if not usable:
        raise ConversionError(f"none of the {len(tree.annotations)} annotated images is usable "
                              f"(first: {report.skipped[0]['file']}: {report.skipped[0]['reason']})")

    found = sorted({b.name for a, _ in usable.values() for b in a.boxes})
    if names:
        for a, _ in usable.values():
            unknown = sorted({b.name for b in a.boxes} - set(names))
            if unknown:
                raise ConversionError(f"{tree.relative(a.xml)}: unknown class {unknown[0]!r}; known: {list(names)}")
        classes = list(names)
    else:
        classes = found
    splits = read_splits(tree, list(usable), fractions, seed, report)

    tmp = dst.parent / f".{dst.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for split, keys in splits.items():
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            counts, taken = Counter(), set()
            for key in keys:
                a, (height, width) = usable[key]
                xml_name = tree.relative(a.xml)
                lines = []
                for box in a.boxes:
                    fixed, changed = clip_box(box, width, height)
                    desc = f"{xml_name}: {box.name} ({box.xmin:g},{box.ymin:g},{box.xmax:g},{box.ymax:g})"
                    if fixed is None:
                        report.dropped.append(desc)
                        continue
                    if changed:
                        report.clipped.append(desc)
                    counts[fixed.name] += 1
                    cx, cy = (fixed.xmin + fixed.xmax) / 2 / width, (fixed.ymin + fixed.ymax) / 2 / height
                    bw, bh = (fixed.xmax - fixed.xmin) / width, (fixed.ymax - fixed.ymin) / height
                    lines.append(f"{classes.index(fixed.name)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
                name = _unique_name(a.image, taken)
                _link_or_copy(a.image, tmp / "images" / split / name)
                (tmp / "labels" / split / f"{Path(name).stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            report.images[split] = len(keys)
            report.boxes[split] = {c: counts[c] for c in classes}
        data_yaml = {"train": "images/train", "val": "images/val", "test": "images/test",
                     "names": dict(enumerate(classes))}
        (tmp / "data.yaml").write_text("# written by voc2yolo; split folders are relative to this file's folder\n"
                                       + _yaml(data_yaml))
        (tmp / "report.json").write_text(json.dumps(report.as_dict(), indent=2))
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _unique_name(image: Path, taken: set[str]) -> str:
    """The image's file name in its split folder; prefixed with its folder's name (then a number)
    where another image of the split already has it, so no label file is overwritten."""
    name, n = image.name, 1
    while name.lower() in taken:
        name = f"{image.parent.name}_{image.stem}" + (f"_{n}" if n > 1 else "") + image.suffix
        n += 1
    taken.add(name.lower())
    return name


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
    p.add_argument("src", help="a folder holding Pascal VOC .xml annotations and their images (any folder names)")
    p.add_argument("dst", help="output folder (written atomically)")
    p.add_argument("--names", nargs="+", help="class list in index order (default: from the annotations, sorted)")
    p.add_argument("--split", default="0.7,0.15,0.15",
                   help="train,val,test fractions when the tree has neither ImageSets/Main nor split folders")
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
    print(f"files skipped: {len(report.skipped)}")
    for item in report.skipped:
        print(f"  {item['file']}: {item['reason']}")
    print(f"wrote {Path(args.dst).resolve() / 'data.yaml'}")
    return 0
