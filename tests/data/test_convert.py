"""voc2yolo on the real BCCD copy and on small malformed VOC trees."""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from PIL import Image

from attention_lens.data.convert import ConversionError, convert_voc

ROOT = Path(__file__).resolve().parents[2]


def expected_bccd_counts(root: Path) -> dict:
    """Per split and class, the boxes an independent regex read of the XML finds, minus boxes
    with no area (which any converter must drop)."""
    counts = {}
    for split in ("train", "val", "test"):
        stems = (root / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
        c = Counter()
        for stem in stems:
            text = (root / "Annotations" / f"{stem}.xml").read_text()
            for obj in re.findall(r"<object>(.*?)</object>", text, re.S):
                name = re.search(r"<name>\s*(.*?)\s*</name>", obj).group(1)
                x1, y1, x2, y2 = (float(re.search(rf"<{k}>(.*?)</{k}>", obj).group(1))
                                  for k in ("xmin", "ymin", "xmax", "ymax"))
                if x2 > x1 and y2 > y1:
                    c[name] += 1
        counts[split] = (len(stems), dict(c))
    return counts


def test_bccd_converts_with_its_splits_and_class_counts(bccd_root, tmp_path):
    out = tmp_path / "bccd"
    report = convert_voc(bccd_root, out)
    assert report.images == {"train": 205, "val": 87, "test": 72}
    want = expected_bccd_counts(bccd_root)
    for split, (n_images, per_class) in want.items():
        assert report.images[split] == n_images
        assert report.boxes[split] == {k: per_class.get(k, 0) for k in report.boxes[split]}
        labels = list((out / "labels" / split).glob("*.txt"))
        assert len(labels) == n_images == len(list((out / "images" / split).iterdir()))
        lines = [ln for f in labels for ln in f.read_text().splitlines()]
        assert len(lines) == sum(per_class.values())
        assert all(0 <= float(v) <= 1 for ln in lines for v in ln.split()[1:])
    assert len(report.dropped) + len(report.clipped) == 2  # the data set's known defects
    cfg = yaml.safe_load((out / "data.yaml").read_text())
    assert sorted(cfg["names"].values()) == ["Platelets", "RBC", "WBC"]
    assert not list(tmp_path.glob(".*partial*"))


def make_voc(root: Path, items: dict, size=(64, 48), imagesets=None, annotations="Annotations",
             images="JPEGImages") -> Path:
    """A VOC tree: items = {stem: [(name, xmin, ymin, xmax, ymax), ...] or raw XML text}; a stem
    may hold folders ("train/a"), under the annotation and image folders."""
    for stem, objs in items.items():
        (root / images / stem).parent.mkdir(parents=True, exist_ok=True)
        (root / annotations / stem).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (120, 30, 30)).save(root / images / f"{stem}.jpg")
        if isinstance(objs, str):
            (root / annotations / f"{stem}.xml").write_text(objs)
            continue
        body = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                       f"<ymax>{d}</ymax></bndbox></object>" for n, a, b, c, d in objs)
        (root / annotations / f"{stem}.xml").write_text(
            f"<annotation><filename>{Path(stem).name}.jpg</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height></size>{body}</annotation>")
    if imagesets:
        (root / "ImageSets" / "Main").mkdir(parents=True)
        for split, stems in imagesets.items():
            (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return root


def assert_nothing_left(dst: Path):
    assert not dst.exists()
    assert not list(dst.parent.glob(f".{dst.name}.partial*"))


def test_an_annotation_without_its_image_is_skipped_and_reported(tmp_path):
    src = make_voc(tmp_path / "voc", {"a": [("cat", 1, 1, 10, 10)], "b": [("cat", 1, 1, 10, 10)]})
    (src / "JPEGImages" / "b.jpg").unlink()
    report = convert_voc(src, tmp_path / "out")
    assert report.skipped == [{"file": "Annotations/b.xml", "reason": "its image b.jpg was not found in the folder",
                               "split": None}]
    assert sum(report.images.values()) == 1


def test_unreadable_xml_is_skipped_and_other_xml_is_ignored(tmp_path):
    src = make_voc(tmp_path / "voc", {"a": [("cat", 1, 1, 10, 10)], "broken": "<annotation><object>"})
    (src / "Annotations" / "meta.xml").write_text("<dataset><name>not an annotation</name></dataset>")
    report = convert_voc(src, tmp_path / "out")
    assert [(x["file"], x["reason"]) for x in report.skipped] == [("Annotations/broken.xml",
                                                                   "unreadable XML (ParseError)")]
    assert sum(report.images.values()) == 1


def test_nothing_usable_is_refused_and_leaves_nothing(tmp_path):
    src = make_voc(tmp_path / "voc", {"broken": "<annotation><object>"})
    with pytest.raises(ConversionError, match="no Pascal VOC annotations found"):
        convert_voc(src, tmp_path / "out")
    assert_nothing_left(tmp_path / "out")


def test_a_truncated_image_is_skipped_and_the_cli_names_it(tmp_path):
    items = {f"im{i}": [("cat", 1, 1, 10, 10)] for i in range(6)}
    src = make_voc(tmp_path / "voc", items)
    whole = (src / "JPEGImages" / "im3.jpg").read_bytes()
    (src / "JPEGImages" / "im3.jpg").write_bytes(whole[: len(whole) // 2])
    report = convert_voc(src, tmp_path / "out")
    assert [(x["file"], x["reason"]) for x in report.skipped] == [("JPEGImages/im3.jpg",
                                                                   "damaged or truncated image data")]
    assert sum(report.images.values()) == 5
    r = subprocess.run([sys.executable, "-m", "attention_lens", "voc2yolo", str(src), str(tmp_path / "out2")],
                       capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr
    assert "files skipped: 1" in r.stdout and "JPEGImages/im3.jpg: damaged or truncated image data" in r.stdout


def test_folders_named_anything_are_found_by_their_content(tmp_path):
    items = {f"im{i}": [("cat", 1, 1, 10, 10)] for i in range(10)}
    src = make_voc(tmp_path / "voc", items, annotations="annots", images="images")
    report = convert_voc(src, tmp_path / "out", fractions=(0.6, 0.2, 0.2))
    assert report.images == {"train": 6, "val": 2, "test": 2} and not report.skipped


def test_split_folders_give_the_split_and_repeated_names_stay_apart(tmp_path):
    # a Roboflow-style export: train/ valid/ test/, each holding its images and XML side by side
    items = {"train/a": [("cat", 1, 1, 10, 10)], "train/b": [("cat", 1, 1, 10, 10)],
             "valid/a": [("cat", 2, 2, 20, 20)], "test/c": [("dog", 1, 1, 10, 10)]}
    src = make_voc(tmp_path / "voc", items, annotations="export", images="export")
    report = convert_voc(src, tmp_path / "out")
    assert report.split_source == "folders named for the splits"
    assert report.images == {"train": 2, "val": 1, "test": 1}
    assert (tmp_path / "out" / "labels" / "val" / "a.txt").read_text().split()[1:3] == \
        [f"{11 / 64:.6f}", f"{11 / 48:.6f}"]  # valid/a's own box, not train/a's


def test_data_yaml_is_read_relative_to_its_folder_by_ultralytics_and_by_us(tmp_path):
    from ultralytics.data.utils import check_det_dataset

    from attention_lens.data.datasets import read_split

    src = make_voc(tmp_path / "voc", {f"im{i}": [("cat", 1, 1, 10, 10)] for i in range(10)})
    convert_voc(src, tmp_path / "out")
    moved = tmp_path / "elsewhere" / "set"
    moved.parent.mkdir()
    (tmp_path / "out").rename(moved)  # as a user zips it and unpacks it on another machine
    cfg = yaml.safe_load((moved / "data.yaml").read_text())
    assert "path" not in cfg
    resolved = check_det_dataset(str(moved / "data.yaml"))
    assert Path(resolved["val"]) == moved / "images" / "val"
    split = read_split(moved / "data.yaml", "train", confine=True)
    assert len(split.images) == len(list((moved / "images" / "train").iterdir())) and not split.notes


def test_unknown_class_names_the_file(tmp_path):
    src = make_voc(tmp_path / "voc", {"a": [("cat", 1, 1, 10, 10)], "b": [("dog", 1, 1, 10, 10)]})
    with pytest.raises(ConversionError, match=r"b\.xml: unknown class 'dog'"):
        convert_voc(src, tmp_path / "out", names=["cat"])
    assert_nothing_left(tmp_path / "out")


def test_boxes_outside_the_image_are_clipped_or_dropped_and_counted(tmp_path):
    src = make_voc(tmp_path / "voc", {
        "a": [("cat", -5, 2, 20, 60), ("cat", 70, 10, 90, 20), ("cat", 5, 5, 5, 9), ("dog", 10, 10, 30, 30)],
        "b": [("dog", 1, 1, 10, 10)], "c": [("cat", 2, 2, 8, 8)]},
        imagesets={"train": ["a"], "val": ["b"], "test": ["c"]})
    report = convert_voc(src, tmp_path / "out")
    assert len(report.clipped) == 1 and len(report.dropped) == 2
    assert all("a.xml" in line for line in report.clipped + report.dropped)
    lines = (tmp_path / "out" / "labels" / "train" / "a.txt").read_text().splitlines()
    assert len(lines) == 2
    cls, cx, cy, w, h = lines[0].split()
    # clipped to x 0..20, y 2..48 of a 64x48 image
    assert (cls, float(cx), float(w)) == ("0", pytest.approx(10 / 64), pytest.approx(20 / 64))
    assert float(cy) == pytest.approx(25 / 48) and float(h) == pytest.approx(46 / 48)


def test_seeded_split_without_imagesets_is_reproducible(tmp_path):
    items = {f"im{i}": [("cat", 1, 1, 10, 10)] for i in range(20)}
    src = make_voc(tmp_path / "voc", items)
    r1 = convert_voc(src, tmp_path / "o1", fractions=(0.5, 0.25, 0.25), seed=3)
    r2 = convert_voc(src, tmp_path / "o2", fractions=(0.5, 0.25, 0.25), seed=3)
    assert r2.images == r1.images
    assert r1.images == {"train": 10, "val": 5, "test": 5}
    assert sorted(p.name for p in (tmp_path / "o1/images/val").iterdir()) == \
        sorted(p.name for p in (tmp_path / "o2/images/val").iterdir())


def test_existing_output_is_not_clobbered(tmp_path):
    src = make_voc(tmp_path / "voc", {"a": [("cat", 1, 1, 10, 10)]})
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConversionError, match="not empty"):
        convert_voc(src, out)
    assert (out / "keep.txt").read_text() == "mine"


def test_cli_reports_errors_without_traceback(tmp_path):
    src = make_voc(tmp_path / "voc", {"broken": "<annotation"})  # the only annotation: nothing usable
    r = subprocess.run([sys.executable, "-m", "attention_lens", "voc2yolo", str(src), str(tmp_path / "out")],
                       capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 2 and "broken.xml" in r.stderr and "Traceback" not in r.stderr
