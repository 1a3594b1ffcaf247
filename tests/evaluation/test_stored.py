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
