"""Per-session bounds: big photos are kept at display size, written files leave with the session."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from attention_lens.analysis.images import DISPLAY_MAX_SIDE
from attention_lens.app.sessions import SESSIONS_ROOT, end_session
from attention_lens.app.attention_handlers import attention_downloads, run_attention
from attention_lens.app.compare_handlers import run_compare
from attention_lens.modeling.catalog import ModelStore, read_manifest


@pytest.fixture(scope="module")
def store(tiny_weights):
    return ModelStore(read_manifest(tiny_weights))


@pytest.fixture(scope="module")
def big_photo(bccd_test_images, tmp_path_factory):
    """An 8000x6000 JPEG (a normal camera photo): a BCCD image scaled up 12.5x."""
    rgb = cv2.imread(str(bccd_test_images[0]))
    path = tmp_path_factory.mktemp("big") / "photo.jpg"
    cv2.imwrite(str(path), cv2.resize(rgb, (8000, 6000), interpolation=cv2.INTER_LINEAR))
    return path


def test_a_big_photo_is_detected_in_full_and_shown_at_display_size(store, big_photo):
    items, _table, payload, by_model, _names = run_compare(store, str(big_photo), ["baseline", "ema"], [], 0.001,
                                                           0.7, 320, None)
    assert payload["image_size"] == [6000, 8000]
    assert all(max(im.shape[:2]) == DISPLAY_MAX_SIDE for im, _ in items)
    assert all(max(im.shape[:2]) == DISPLAY_MAX_SIDE for im in by_model["images"].values())  # what the session keeps
    boxes = np.array([d["box"] for d in payload["detections"]])
    assert boxes.size and boxes[:, 2].max() > DISPLAY_MAX_SIDE  # boxes stay in the photo's own pixels
    assert boxes[:, 2].max() <= 8000 and boxes[:, 3].max() <= 6000


def test_the_attention_inspection_keeps_a_display_copy_with_boxes_scaled(store, big_photo):
    *_, ins = run_attention(store, str(big_photo), ["baseline", "ema"], "jet", 0.5, 0.001, 320)
    assert max(ins.image.shape[:2]) == DISPLAY_MAX_SIDE
    scale = DISPLAY_MAX_SIDE / 8000
    for mm in ins.models:
        assert mm.boxes.size == 0 or mm.boxes[:, 2].max() <= 8000 * scale + 1e-3
        for cam in mm.layercam:
            assert cam["map"].shape == ins.image.shape[:2]


def test_download_files_live_in_the_session_folder_and_leave_with_the_session(store, bccd_test_images):
    *_, ins = run_attention(store, str(bccd_test_images[0]), ["ema"], "jet", 0.5, 0.25, 320)
    first = attention_downloads(ins, "jet", 0.5, "session-a")
    second = attention_downloads(ins, "magma", 0.5, "session-a")
    other = attention_downloads(ins, "jet", 0.5, "session-b")
    folder = SESSIONS_ROOT / "session-a"
    assert all(folder in __import__("pathlib").Path(p).parents for p in first + second)
    assert len(list(folder.rglob("*.*"))) == 2  # only the latest files are kept
    end_session("session-a")
    assert not folder.exists()
    assert all(__import__("os").path.exists(p) for p in other)  # another session's files stay
    end_session("session-b")


def test_the_app_removes_a_sessions_files_when_it_ends(tiny_weights):
    from app import create_app

    demo, _ = create_app(str(tiny_weights), [])
    assert "on_session_end" in {fn.fn.__name__ for fn in demo.fns.values() if fn.fn is not None}
    states = [b for b in demo.blocks.values() if type(b).__name__ == "State"]
    assert states and all(s.time_to_live for s in states)
