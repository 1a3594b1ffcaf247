"""A data set's image checked as ultralytics' own data check (``check_image``) checks it."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from ultralytics.data.utils import check_image

from attention_lens.data.image_files import ImageFileError, checked_size

EXAMPLE = Path(__file__).resolve().parents[2] / "assets" / "examples" / "synthetic_smear_1.jpg"


def jpeg_bytes(exif_orientation: int | None = None) -> bytes:
    im = Image.open(EXAMPLE).convert("RGB").resize((96, 64))
    buffer = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    im.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def ultralytics_verdict(path: Path, tmp_path: Path):
    """ultralytics' check_image on a copy (it rewrites a JPEG it can restore): its (h, w), or None
    where it raises (its data set loader then skips the image as corrupt)."""
    copy = tmp_path / f"copy-{path.name}"
    shutil.copy(path, copy)
    try:
        return check_image(str(copy))[1]
    except Exception:
        return None


def test_a_whole_jpeg_gives_its_size(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes())
    assert checked_size(path) == (64, 96) == ultralytics_verdict(path, tmp_path)


def test_a_truncated_jpeg_is_refused_as_ultralytics_refuses_it(tmp_path):
    data = jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(ImageFileError, match="^damaged or truncated image data$"):
        checked_size(path)
    assert ultralytics_verdict(path, tmp_path) is None


def test_bytes_after_the_end_marker_are_kept_as_ultralytics_keeps_them(tmp_path):
    path = tmp_path / "tail.jpg"
    path.write_bytes(jpeg_bytes() + b"camera maker's trailer")
    assert checked_size(path) == (64, 96) == ultralytics_verdict(path, tmp_path)


@pytest.mark.parametrize("orientation, expected", [(1, (64, 96)), (3, (64, 96)), (6, (96, 64)), (8, (96, 64))])
def test_the_size_is_the_upright_one(tmp_path, orientation, expected):
    path = tmp_path / f"o{orientation}.jpg"
    path.write_bytes(jpeg_bytes(orientation))
    assert checked_size(path) == expected == ultralytics_verdict(path, tmp_path)
    # and what the app's decoder shows (EXIF applied) has that shape
    from attention_lens.analysis.images import load_image

    assert load_image(path).shape[:2] == expected


def test_a_png_with_a_damaged_chunk_and_a_tiny_image_are_refused(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[-20] ^= 0xFF  # inside the image data chunk: its CRC no longer matches
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(data))
    with pytest.raises(ImageFileError):
        checked_size(bad)
    assert ultralytics_verdict(bad, tmp_path) is None
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((6, 40, 3), np.uint8)).save(tiny)
    with pytest.raises(ImageFileError, match="smaller than 10 px"):
        checked_size(tiny)
    assert ultralytics_verdict(tiny, tmp_path) is None


def test_a_file_that_is_no_image_says_so_without_library_text(tmp_path):
    path = tmp_path / "b.jpg"
    path.write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(ImageFileError) as e:
        checked_size(path)
    assert str(e.value) == "not a readable image"
