"""Reading an uploaded data set: fingerprints keyed by pixels, labels bounded, clear refusals."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attention_lens.data.datasets import MAX_BOXES_PER_IMAGE, DatasetError, Split, read_split

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"


def yolo_set(root: Path, images: dict[str, np.ndarray | bytes], labels: dict[str, str]) -> Path:
    """A one-class YOLO data set at ``root``: images/test/<name>, labels/test/<stem>.txt, data.yaml."""
    (root / "images" / "test").mkdir(parents=True)
    (root / "labels" / "test").mkdir(parents=True)
    for name, pixels in images.items():
        target = root / "images" / "test" / name
        if isinstance(pixels, bytes):
            target.write_bytes(pixels)
        else:
            Image.fromarray(pixels).save(target)
    for stem, text in labels.items():
        (root / "labels" / "test" / f"{stem}.txt").write_text(text)
    (root / "data.yaml").write_text("path: .\ntest: images/test\nnames: {0: RBC, 1: WBC, 2: Platelets}\n")
    return root / "data.yaml"


def smear() -> np.ndarray:
    return np.asarray(Image.open(EXAMPLES / "synthetic_smear_1.jpg").convert("RGB"))


def test_same_names_and_labels_over_other_pixels_get_another_fingerprint(tmp_path):
    labels = {"a": "0 0.5 0.5 0.2 0.2\n"}
    first = read_split(yolo_set(tmp_path / "one", {"a.png": smear()}, labels), "test")
    grey = np.full_like(smear(), 128)
    second = read_split(yolo_set(tmp_path / "two", {"a.png": grey}, labels), "test")
    assert first.images == second.images and np.array_equal(first.boxes[0], second.boxes[0])
    assert first.fingerprint != second.fingerprint
    shutil.copytree(tmp_path / "one", tmp_path / "copy")  # the same files elsewhere: the same split
    assert read_split(tmp_path / "copy" / "data.yaml", "test").fingerprint == first.fingerprint


@pytest.mark.parametrize("row", ["0 nan 0.5 0.1 0.1", "0 0.5 inf 0.1 0.1", "0 0.5 0.5 1e300 0.1",
                                 "0 -0.2 0.5 0.1 0.1"])
def test_an_image_whose_labels_are_not_normalised_numbers_is_skipped_by_line(tmp_path, row):
    data = yolo_set(tmp_path, {"a.png": smear(), "b.png": smear()},
                    {"a": f"0 0.5 0.5 0.1 0.1\n{row}\n", "b": "1 0.5 0.5 0.2 0.2\n"})
    split = read_split(data, "test")
    assert split.images == ["b.png"] and len(split.boxes[0]) == 1
    assert split.skipped == [{"file": "a.png", "reason": "a.txt line 2: box values must be numbers from 0 to 1 "
                                                        "(normalised)"}]


def test_an_image_with_too_many_boxes_is_skipped_before_the_rest_is_read(tmp_path):
    rows = "".join("0 0.5 0.5 0.01 0.01\n" for _ in range(50_000))  # the 50k-row label file of issue 31
    data = yolo_set(tmp_path, {"a.png": smear()}, {"a": rows})
    with pytest.raises(DatasetError, match=f"a.png: a.txt: more than {MAX_BOXES_PER_IMAGE} boxes in one image"):
        read_split(data, "test")  # the only image: nothing usable is left


def test_a_file_that_is_no_image_is_skipped_without_library_text(tmp_path):
    data = yolo_set(tmp_path, {"a.png": smear(), "b.jpg": b"%PDF-1.4 not an image"}, {})
    split = read_split(data, "test")
    assert split.images == ["a.png"] and split.skipped == [{"file": "b.jpg", "reason": "not a readable image"}]
    assert Split.from_dict(split.as_dict()).skipped == split.skipped


def zipped_set(tmp_path: Path, path_line: str) -> Path:
    """An upload: a data set whose data.yaml has ``path_line``, unpacked as the app unpacks a zip."""
    data = yolo_set(tmp_path / "upload" / "set", {"a.png": smear()}, {"a": "0 0.5 0.5 0.2 0.2\n"})
    text = data.read_text().replace("path: .\n", path_line)
    data.write_text(text)
    return data


def test_an_absolute_path_from_another_machine_is_read_as_the_yaml_folder(tmp_path):
    data = zipped_set(tmp_path, "path: /home/someone/datasets/set\n")
    split = read_split(data, "test", confine=True)
    assert split.images == ["a.png"] and "found beside the YAML" in split.notes[0]


def test_an_absolute_path_elsewhere_on_this_machine_is_still_refused_when_the_split_is_not_beside_it(tmp_path):
    outside = yolo_set(tmp_path / "outside", {"x.png": smear()}, {})
    data = zipped_set(tmp_path, f"path: {outside.parent}\n")
    shutil.rmtree(data.parent / "images")
    with pytest.raises(DatasetError, match="points outside its own folder"):
        read_split(data, "test", confine=True)
