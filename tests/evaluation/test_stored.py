"""Stored detections: written, read back, and grown model by model without a second pass."""
from __future__ import annotations

import numpy as np
import pytest

from attention_lens.data.datasets import Split
from attention_lens.evaluation.stored import load_detections, merged_detections, save_detections


def split(fingerprint="f00d"):
    boxes = [np.array([[0, 10, 10, 50, 50]], float), np.zeros((0, 5))]
    return Split("toy", "test", ["cell"], ["a.jpg", "b.jpg"], [(100, 100), (80, 120)], boxes, fingerprint)


def dets(x):
    return [np.array([[x, 10, 50, 50, 0.9, 0]], float), np.zeros((0, 6))]


def test_merging_adds_new_models_replaces_rerun_ones_and_keeps_the_rest(tmp_path):
    path = tmp_path / "stored.json.gz"
    save_detections(path, split(), 320, {"old": dets(10), "rerun": dets(11)},
                    {"old": [{"L1": {"kind": "k", "stride": 8, "groups": {"all": [1.5, True]}}}, None]})
    merged, scores = merged_detections(path, split(), 320, {"rerun": dets(12), "new": dets(13)}, {"new": None})
    save_detections(path, split(), 320, merged, scores)
    _, size, got, got_scores = load_detections(path)
    assert size == 320 and sorted(got) == ["new", "old", "rerun"]
    assert got["old"][0][0, 0] == 10 and got["rerun"][0][0, 0] == 12 and got["new"][0][0, 0] == 13
    assert got_scores["old"][0]["L1"]["groups"]["all"] == [1.5, True]


@pytest.mark.parametrize("other", [dict(fingerprint="beef"), dict(imgsz=640)])
def test_another_data_set_or_image_size_is_not_merged(tmp_path, other):
    path = tmp_path / "stored.json.gz"
    save_detections(path, split(), 320, {"old": dets(10)})
    with pytest.raises(ValueError, match="not merged"):
        merged_detections(path, split(other.get("fingerprint", "f00d")), other.get("imgsz", 320), {"new": dets(1)}, {})


def test_the_zoos_stored_detections_may_span_several_files_of_one_split(tmp_path):
    """A Space keeps files over 10 MB out of plain git: the zoo's models are stored in several
    files of one split and joined; the first file (by name) wins a model both hold; a file of
    another data set, split or image size is left out."""
    import numpy as np

    from attention_lens.data.datasets import Split
    from attention_lens.evaluation.stored import joined_detections, save_detections

    def split(fingerprint="f00d", name="test"):
        return Split("toy", name, ["cell"], ["a.jpg"], [(100, 100)], [np.array([[0, 10, 10, 50, 50]], float)],
                     fingerprint)

    def dets(x):
        return [np.array([[x, 10, 50, 50, 0.9, 0]], float)]

    scores = [{"L1 SE": {"kind": "k", "stride": 8, "groups": {"all": [1.5, True]}}}]
    save_detections(tmp_path / "a.json.gz", split(), 320, {"m1": dets(1), "m2": dets(2)}, {"m1": scores})
    save_detections(tmp_path / "b.json.gz", split(), 320, {"m2": dets(20), "m3": dets(3)}, {"m3": scores})
    save_detections(tmp_path / "c.json.gz", split("beef"), 320, {"other": dets(4)})
    save_detections(tmp_path / "d.json.gz", split(), 640, {"big": dets(5)})
    save_detections(tmp_path / "e.json.gz", split(name="val"), 320, {"val": dets(6)})
    paths = sorted(tmp_path.glob("*.json.gz"))
    found, got, got_scores = joined_detections(paths, "test", 320)
    assert found.fingerprint == "f00d" and sorted(got) == ["m1", "m2", "m3"]
    assert got["m2"][0][0, 0] == 2 and got["m3"][0][0, 0] == 3  # a.json.gz's m2, b's m3
    assert sorted(got_scores) == ["m1", "m3"]
    assert joined_detections(paths, "train", 320) == (None, {}, {})
