"""The Evaluate tab's work as a lane job: refused before a job when the request is bad, and the
same numbers through the child process as in this one."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from attention_lens.app.evaluate_handlers import review_image, run_evaluate
from attention_lens.app.evaluate_lane import evaluate, submit_evaluation
from attention_lens.app.handlers import UserError
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
    monkeypatch.setattr("attention_lens.app.handlers.SESSIONS_ROOT", tmp_path)
    lane = Lane()
    with pytest.raises(UserError, match=message):
        submit_evaluation(lane, store, str(WEIGHTS), None, STORED, None, "test", models, [], None, 0.25, 320, rounds)
    assert lane.active == []


def test_the_stored_split_through_a_job_gives_the_numbers_of_this_process(store, tmp_path, monkeypatch):
    monkeypatch.setattr("attention_lens.app.handlers.SESSIONS_ROOT", tmp_path)
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

    monkeypatch.setattr("attention_lens.app.handlers.SESSIONS_ROOT", tmp_path / "sessions")
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
