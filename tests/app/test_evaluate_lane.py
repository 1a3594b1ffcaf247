"""The Evaluate tab's work as a lane job: refused before a job when the request is bad, and the
same numbers through the child process as in this one."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from attention_lens.app.evaluate_handlers import review_image, run_evaluate
from attention_lens.app.evaluate_lane import evaluate, submit_evaluation
from attention_lens.app.errors import UserError
from attention_lens.jobs.lane import Lane
from attention_lens.modeling.catalog import ModelStore, read_manifest

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
STORED = WEIGHTS / "evaluation"
PICKED = ["yolov8n-baseline-s0", "yolov8n-ema-neck-s0"]


@pytest.fixture(scope="module")
def store():
    return ModelStore(read_manifest(WEIGHTS))


@pytest.mark.parametrize("models, rounds, message", [
    (["yolov8n-baseline-s0", "../../etc/passwd"], 100, "Unknown model"),
    (["yolov8n-baseline-s0"], 100, "at least two models"),
    (PICKED, 20_000, "rounds must be a whole number"),
])
def test_a_bad_request_is_refused_before_any_job_starts(store, tmp_path, monkeypatch, models, rounds, message):
    monkeypatch.setattr("attention_lens.app.sessions.SESSIONS_ROOT", tmp_path)
    lane = Lane()
    with pytest.raises(UserError, match=message):
        submit_evaluation(lane, store, str(WEIGHTS), None, STORED, None, "test", models, [], None, 0.25, 320, rounds)
    assert lane.active == []


def test_the_stored_split_through_a_job_gives_the_numbers_of_this_process(store, tmp_path, monkeypatch):
    monkeypatch.setattr("attention_lens.app.sessions.SESSIONS_ROOT", tmp_path)
    here, _, _ = run_evaluate(store, None, STORED, None, "test", PICKED, [], PICKED[0], 0.25, 320, 200, "here")
    there, paths, held = evaluate(Lane(), store, str(WEIGHTS), None, STORED, None, "test", PICKED, [], PICKED[0],
                                  0.25, 320, 200, True, "there")
    assert there["models"] == here["models"]
    assert there["against reference"][PICKED[1]]["bootstrap"] == here["against reference"][PICKED[1]]["bootstrap"]
    assert all(Path(p).is_file() and "there" in Path(p).parts for p in paths)
    assert not held.split.has_pixels and set(held.detections) == set(PICKED)


def test_an_uploaded_zip_is_unpacked_in_the_jobs_folder_and_its_images_open_for_review(store, tmp_path,
                                                                                       monkeypatch):
    from PIL import Image

    monkeypatch.setattr("attention_lens.app.sessions.SESSIONS_ROOT", tmp_path / "sessions")
    smear = WEIGHTS.parent / "assets" / "examples" / "synthetic_smear_1.jpg"
    data = tmp_path / "set.zip"
    with zipfile.ZipFile(data, "w") as z:
        z.writestr("set/data.yaml", "path: .\ntest: images/test\nnames: {0: RBC, 1: WBC, 2: Platelets}\n")
        z.write(smear, "set/images/test/cell.jpg")
        z.writestr("set/labels/test/cell.txt", "0 0.30 0.30 0.10 0.10\n")
    results, _paths, held = evaluate(Lane(), store, str(WEIGHTS), None, STORED, str(data), "test", PICKED, [],
                                     None, 0.25, 320, 100, False, "zip")
    assert results["data set"]["images"] == 1
    assert held.split.has_pixels and held.split.paths[0].is_relative_to(tmp_path / "sessions" / "zip")
    assert Image.open(held.split.paths[0]).size == Image.open(smear).size
    fig, caption = review_image(held, "cell.jpg")
    assert "blank canvas" not in caption and len(fig.layout.shapes) >= 1  # the ground-truth box at least


def test_a_voc_zip_with_its_own_folder_names_and_a_truncated_image_evaluates_and_names_the_skipped_file(
        store, tmp_path, monkeypatch):
    """Issue 34, items 1 and 3: ``annots/`` + ``images/`` were refused ("no data.yaml and no VOC
    tree"), and one truncated JPEG aborted the whole evaluation."""
    import io

    from PIL import Image

    from attention_lens.views.results import data_set_summary

    monkeypatch.setattr("attention_lens.app.sessions.SESSIONS_ROOT", tmp_path / "sessions")
    smear = Image.open(WEIGHTS.parent / "assets" / "examples" / "synthetic_smear_1.jpg").convert("RGB")
    data = tmp_path / "voc.zip"
    with zipfile.ZipFile(data, "w") as z:
        for i in range(8):
            buffer = io.BytesIO()
            smear.save(buffer, "JPEG")
            jpeg = buffer.getvalue()
            z.writestr(f"cells/images/{i:05d}.jpg", jpeg if i != 5 else jpeg[: len(jpeg) // 3])
            z.writestr(f"cells/annots/{i:05d}.xml",
                       f"<annotation><filename>{i:05d}.jpg</filename><object><name>RBC</name><bndbox><xmin>40"
                       "</xmin><ymin>40</ymin><xmax>90</xmax><ymax>90</ymax></bndbox></object></annotation>")
    results, _paths, held = evaluate(Lane(), store, str(WEIGHTS), None, STORED, str(data), "test", PICKED, [],
                                     None, 0.25, 320, 100, False, "voc")
    skipped = results["data set"]["skipped"]
    assert [(x["file"], x["reason"]) for x in skipped] == [("cells/images/00005.jpg",
                                                            "damaged or truncated image data")]
    # the seeded split of the 7 usable images: 0.7 / 0.15 / 0.15 -> 5, 1, 1
    assert results["data set"]["images"] == 1 and "00005.jpg" not in held.split.images
    assert results["data set"]["name"] == "cells"  # the zip's folder, not the converted copy's
    summary = data_set_summary(results)
    assert "1 file(s) left out" in summary and "cells/images/00005.jpg: damaged or truncated image data" in summary


def test_the_reference_picker_names_uploads_as_the_evaluation_does_and_prefers_a_plain_one(store, tmp_path,
                                                                                       monkeypatch):
    """Issue 34, item 9: with only uploaded models the Reference picker stayed empty."""
    from attention_lens.app.evaluate_handlers import reference_options

    uploads = [str(WEIGHTS / "yolov8n-ema-neck-s0" / "best.pt"), str(WEIGHTS / "yolov8n-baseline-s1" / "best.pt")]
    choices, value = reference_options(store, [], uploads, None)
    assert choices == ["yolov8n-ema-neck-s0 (yolov8n, EMA)", "yolov8n-baseline-s1 (yolov8n, no attention)"]
    assert value == "yolov8n-baseline-s1 (yolov8n, no attention)"
    assert reference_options(store, [], uploads, choices[0]) == (choices, choices[0])  # a choice is kept
    monkeypatch.setattr("attention_lens.app.sessions.SESSIONS_ROOT", tmp_path / "sessions")
    data = tmp_path / "set.zip"
    with zipfile.ZipFile(data, "w") as z:
        z.writestr("set/data.yaml", "test: images/test\nnames: {0: RBC, 1: WBC, 2: Platelets}\n")
        z.write(WEIGHTS.parent / "assets" / "examples" / "synthetic_smear_1.jpg", "set/images/test/cell.jpg")
        z.writestr("set/labels/test/cell.txt", "0 0.30 0.30 0.10 0.10\n")
    results, _, _ = run_evaluate(store, None, STORED, str(data), "test", [], uploads, None, 0.25, 320, 100, "u",
                                 localisation=False, out=tmp_path)
    assert results["reference"] == value and list(results["against reference"]) == [choices[0]]
