"""Shared fixtures. The offline settings apply before any test imports ultralytics."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import attention_lens  # noqa: E402,F401  (applies YOLO_OFFLINE etc.)

# Forwards run on PyTorch in tests unless a test turns ONNX Runtime on (tests/analysis/
# test_onnx_backend.py): a background export finishing mid-test would switch a model's backend
# between two calls that a test compares exactly. Exports land in the test session's own folder.
os.environ.setdefault("ATTENTION_LENS_BACKEND", "pytorch")

#: The one setting that locates the BCCD data set (its folder holding BCCD/).
DATA_ENV = "ATTENTION_LENS_BCCD"
BCCD = Path(os.environ.get(DATA_ENV, ROOT.parent / "shared" / "datasets" / "bccd")) / "BCCD"
#: In CI a missing prerequisite fails the run instead of skipping tests silently.
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> None:
    """Skip locally; fail in CI, where everything the tests need must be there."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: a missing prerequisite is a failure, not a skip)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def bccd_root() -> Path:
    if not (BCCD / "Annotations").is_dir():
        missing(f"BCCD data set not found at {BCCD} (set ${DATA_ENV})")
    return BCCD


#: Tiers, from the fixtures a test uses: ``-m "not slow"`` for a quick run, ``-m browser`` for the UI.
MARKERS = {"data": "needs the BCCD data set", "slow": "trains models or serves the app (seconds to minutes)",
           "browser": "drives Debian's chromium", "gpu": "needs a CUDA device (skipped without one, CI included)"}
_SLOW_FIXTURES = {"tiny_weights", "served_app", "tiny_bccd", "bccd_yolo"}


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & {"bccd_root", "bccd_test_images", "tiny_bccd", "tiny_weights", "served_app", "bccd_yolo"}:
            item.add_marker("data")
        if fixtures & _SLOW_FIXTURES or item.path.name == "test_browser.py":
            item.add_marker("slow")
        if item.path.name == "test_browser.py":
            item.add_marker("browser")
        if "cuda" in fixtures:
            item.add_marker("gpu")


@pytest.fixture
def cuda():
    """The first CUDA device; the test is skipped where torch sees none (CI has none: never a failure)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device("cuda", 0)


@pytest.fixture(scope="session")
def bccd_yolo(bccd_root, tmp_path_factory) -> Path:
    """The whole BCCD set through voc2yolo (its own ImageSets split): the zoo's protocol."""
    from attention_lens.data.convert import convert_voc

    out = tmp_path_factory.mktemp("bccd") / "bccd"
    convert_voc(bccd_root, out)
    return out / "data.yaml"


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
    from attention_lens.data.convert import convert_voc

    out = tmp_path_factory.mktemp("tiny-yolo") / "bccd"
    convert_voc(root, out)
    return out / "data.yaml"



@pytest.fixture(scope="session")
def tiny_weights(tiny_bccd, tmp_path_factory) -> Path:
    """A weights/ folder like the shipped one: a baseline and two attention models, each trained
    for one epoch on the tiny BCCD subset by the project's own pipeline, with a manifest."""
    from attention_lens.experiments.train import train
    from attention_lens.experiments.zoo import ship_run
    from attention_lens.modeling.variants import make_variant, to_yaml

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
