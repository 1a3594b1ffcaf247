"""Issue 34, "how it is shown": the whole path a researcher takes with their own data and runs.

A VOC folder with its own folder names and one truncated image, through voc2yolo; a plain yolo11n
trained by ultralytics' own trainer and a CBAM variant trained by ``train``, one epoch each; the
plain run evaluated; both run folders zipped into the Metrics tab; the data set zipped into the
Evaluate tab and ``analyze``; the checkpoints uploaded as they are."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.pickles import pickled_globals

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights"


def zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, f"{folder.name}/{p.relative_to(folder)}")
    return target


@pytest.fixture(scope="module")
def researcher(bccd_root, tmp_path_factory):
    """(VOC folder, voc2yolo's output, the plain run, the CBAM run)."""
    from ultralytics import YOLO

    from attention_lens.experiments.evaluate import evaluate_checkpoints
    from attention_lens.experiments.train import train
    from attention_lens.modeling.variants import make_variant, to_yaml

    work = tmp_path_factory.mktemp("researcher")
    voc = work / "cells"
    (voc / "annots").mkdir(parents=True)
    (voc / "pictures").mkdir()
    stems = sorted(p.stem for p in (bccd_root / "Annotations").glob("*.xml"))[:20]
    for stem in stems:
        shutil.copy(bccd_root / "Annotations" / f"{stem}.xml", voc / "annots" / f"{stem}.xml")
        shutil.copy(bccd_root / "JPEGImages" / f"{stem}.jpg", voc / "pictures" / f"{stem}.jpg")
    broken = voc / "pictures" / f"{stems[7]}.jpg"
    broken.write_bytes(broken.read_bytes()[:4000])  # cut short, as a failed download leaves it
    out = work / "yolo"
    r = subprocess.run([sys.executable, "-m", "attention_lens", "voc2yolo", str(voc), str(out)],
                       capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr
    assert f"pictures/{broken.name}: damaged or truncated image data" in r.stdout
    data = out / "data.yaml"

    runs = work / "runs"
    YOLO("yolo11n.yaml").train(data=str(data), epochs=1, imgsz=64, batch=4, workers=0, device="cpu", plots=False,
                               project=str(runs), name="plain-yolo11n", seed=0, deterministic=True, amp=False,
                               verbose=False)
    plain = runs / "plain-yolo11n"
    evaluate_checkpoints([str(plain / "weights" / "best.pt")], str(data), "all", 64, 1, None, latency_runs=3)
    variant = work / "cbam.yaml"
    variant.write_text(to_yaml(make_variant("yolo11n", "CBAM", "neck_outputs")))
    cbam = train(variant, data, epochs=1, imgsz=64, batch=4, seed=0, name="cbam-s0", project=runs, workers=0,
                 latency_runs=3, variant={"base": "yolo11n", "attention": "CBAM", "placement": "neck_outputs"})
    return voc, data, plain, cbam, broken.name


def test_the_data_set_the_runs_and_the_checkpoints_go_through_without_a_hand_edit(researcher, tmp_path, monkeypatch):
    from ultralytics import YOLO

    from attention_lens.app.evaluate_handlers import reference_options, run_evaluate
    from attention_lens.app.metrics_handlers import metrics_view
    from attention_lens.modeling.catalog import ModelStore, read_manifest

    voc, data, plain, cbam, broken = researcher
    monkeypatch.setattr("attention_lens.app.sessions.SESSIONS_ROOT", tmp_path / "sessions")
    # the checkpoint train wrote names its attention classes under a module no index can serve (item 8)
    with zipfile.ZipFile(cbam / "weights" / "best.pt") as z:
        pickled = pickled_globals(z.read(next(n for n in z.namelist() if n.endswith("data.pkl"))))
    assert {"_attention_lens.CBAM", "_attention_lens.Gate"} <= pickled
    assert not [g for g in pickled if g.startswith(("attention_lens", "components"))]

    # Metrics: both run folders in one zip; the CBAM run is compared with the plain baseline
    runs_zip = tmp_path / "runs.zip"
    with zipfile.ZipFile(runs_zip, "w") as z:
        for run in (plain, cbam):
            for p in sorted(run.rglob("*")):
                if p.is_file():
                    z.write(p, f"runs/{run.name}/{p.relative_to(run)}")
    view = metrics_view([str(WEIGHTS)], True, str(runs_zip), None, None)
    table = view[0]
    rows = table.set_index("model") if hasattr(table, "set_index") else None
    assert rows is not None and {"plain-yolo11n", "cbam-s0"} <= set(rows.index)
    assert list(table["model"])[:2] == ["plain-yolo11n", "cbam-s0"]  # the user's runs first
    assert rows.loc["cbam-s0", "Δ test mAP50-95"] != "—"
    assert "no baseline" not in rows.loc["cbam-s0", "flag"]

    # Evaluate: the VOC folder as it is (zipped), both checkpoints uploaded as they are
    store = ModelStore(read_manifest(WEIGHTS))
    uploads = [str(plain / "weights" / "best.pt"), str(cbam / "weights" / "best.pt")]
    choices, reference = reference_options(store, [], uploads, None)
    assert reference == "plain-yolo11n (yolo11n, no added attention)" and len(choices) == 2
    results, _, held = run_evaluate(store, None, None, str(zip_folder(voc, tmp_path / "cells.zip")), "test", [],
                                    uploads, None, 0.25, 64, 100, "me", localisation=False)
    assert results["reference"] == reference
    skipped = [x["file"] for x in results["data set"]["skipped"]]
    assert skipped == [f"cells/pictures/{broken}"]  # skipped before the split was drawn: listed with every split
    # ultralytics' definition equals ultralytics' own val of the checkpoint on the same split and
    # size, on this user's data (the one-epoch runs, and a zoo model that finds the cells)
    zoo = str(WEIGHTS / "yolov8n-baseline-s0" / "best.pt")
    results, _, _ = run_evaluate(store, None, None, str(zip_folder(voc, tmp_path / "cells.zip")), "test", [],
                                 uploads + [zoo], None, 0.25, 320, 100, "me", localisation=False)
    for name, path in zip(list(results["models"]), uploads + [zoo]):
        theirs = YOLO(path).val(data=str(data), split="test", imgsz=320, batch=1, plots=False, verbose=False,
                                device="cpu", workers=0).box
        assert results["models"][name]["ultralytics"]["mAP50-95"] == pytest.approx(theirs.map, abs=5e-4), name
        assert results["models"][name]["ultralytics"]["mAP50"] == pytest.approx(theirs.map50, abs=5e-4), name
    assert results["models"][list(results["models"])[-1]]["ultralytics"]["mAP50-95"] > 0.2  # a real number


def test_analyze_names_checkpoint_files_as_the_app_does(researcher, tmp_path):
    voc, data, plain, cbam, broken = researcher
    out = tmp_path / "eval"
    r = subprocess.run([sys.executable, "-m", "attention_lens", "analyze", "--data", str(voc), "--imgsz", "64",
                        "--models", str(plain / "weights" / "best.pt"), str(cbam / "weights" / "best.pt"),
                        "--rounds", "100", "--no-localisation", "--out", str(out)],
                       capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["plain-yolo11n (yolo11n, no added attention)", "cbam-s0 (yolo11n, CBAM)"]
    assert results["reference"] == "plain-yolo11n (yolo11n, no added attention)"
    assert "reference: plain-yolo11n (yolo11n, no added attention)" in r.stdout
