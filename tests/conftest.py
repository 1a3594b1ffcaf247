"""Shared fixtures. The offline settings apply before any test imports ultralytics."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import components  # noqa: E402,F401  (applies YOLO_OFFLINE etc.)

BCCD = ROOT.parent / "shared" / "datasets" / "bccd" / "BCCD"


@pytest.fixture(scope="session")
def bccd_root() -> Path:
    if not (BCCD / "Annotations").is_dir():
        pytest.skip(f"BCCD data set not found at {BCCD}")
    return BCCD


@pytest.fixture(scope="session")
def tiny_bccd(bccd_root, tmp_path_factory):
    """12 train / 6 val / 6 test BCCD images as a VOC tree, converted by voc2yolo."""
    root = tmp_path_factory.mktemp("tiny-voc")
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    for split, n in (("train", 12), ("val", 6), ("test", 6)):
        stems = (bccd_root / "ImageSets/Main" / f"{split}.txt").read_text().split()[:n]
        (root / "ImageSets/Main" / f"{split}.txt").write_text("\n".join(stems))
        for s in stems:
            (root / "Annotations" / f"{s}.xml").symlink_to(bccd_root / "Annotations" / f"{s}.xml")
            (root / "JPEGImages" / f"{s}.jpg").symlink_to(bccd_root / "JPEGImages" / f"{s}.jpg")
    from components.data import convert_voc

    out = tmp_path_factory.mktemp("tiny-yolo") / "bccd"
    convert_voc(root, out)
    return out / "data.yaml"



@pytest.fixture(scope="session")
def tiny_weights(tiny_bccd, tmp_path_factory) -> Path:
    """A weights/ folder like the shipped one: a baseline and two attention models, each trained
    for one epoch on the tiny BCCD subset by the project's own pipeline, with a manifest."""
    from components.train import train
    from components.variants import make_variant, to_yaml
    from components.zoo import ship_run

    work = tmp_path_factory.mktemp("tiny-runs")
    weights = tmp_path_factory.mktemp("tiny-weights")
    for attention, name in ((None, "baseline"), ("EMA", "ema"), ("CoordAtt", "coordatt")):
        placement = "neck_outputs" if attention else None
        yaml_path = work / f"{name}.yaml"
        yaml_path.write_text(to_yaml(make_variant("yolov8n", attention, placement)))
        run = train(yaml_path, tiny_bccd, epochs=1, imgsz=128, batch=4, seed=0, name=name, project=work, workers=0,
                    latency_runs=2, variant={"base": "yolov8n", "attention": attention, "placement": placement})
        ship_run(run, weights, name)
    return weights


@pytest.fixture(scope="session")
def bccd_test_images(bccd_root) -> list[Path]:
    stems = (bccd_root / "ImageSets/Main/test.txt").read_text().split()
    return [bccd_root / "JPEGImages" / f"{s}.jpg" for s in stems]
