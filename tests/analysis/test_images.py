"""Bad and unusual images: each decodes right or fails with a clear message."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from attention_lens.analysis.images import MAX_PIXELS, ImageError, load_image


def png_bytes(im: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def test_non_image_truncated_and_empty_inputs_get_clear_messages(bccd_test_images):
    jpeg = bccd_test_images[0].read_bytes()
    cases = {b"hello, not an image": "not an image", jpeg[: len(jpeg) // 3]: "damaged or truncated", b"": "empty"}
    for data, pattern in cases.items():
        with pytest.raises(ImageError, match=pattern):
            load_image(data)
    with pytest.raises(ImageError, match="No image"):
        load_image(None)


def test_huge_image_and_decompression_bomb_are_refused_before_decoding():
    side = int(MAX_PIXELS ** 0.5) + 10
    big = png_bytes(Image.new("L", (side, side)))  # compresses to a few KB: a bomb in miniature
    with pytest.raises(ImageError, match="limit"):
        load_image(big)
    header_only = png_bytes(Image.new("1", (20000, 20000)))
    with pytest.raises(ImageError, match="megapixel limit"):
        load_image(header_only)


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "CMYK", "P", "1"])
def test_modes_become_rgb_uint8(mode):
    base = Image.new("RGB", (40, 30), (200, 100, 50))
    im = base.convert(mode) if mode != "I;16" else Image.fromarray(np.full((30, 40), 40000, np.uint16))
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = load_image(png_bytes(im, fmt))
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    if mode == "I;16":
        assert out.max() == 255  # 16-bit range scaled, not clipped to black
    if mode == "RGBA":
        assert tuple(out[0, 0]) == (200, 100, 50)


def test_exif_rotation_is_applied():
    im = Image.new("RGB", (60, 20), (0, 0, 0))
    im.paste((255, 0, 0), (0, 0, 10, 20))  # red strip at the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    out = load_image(png_bytes(im, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape == (60, 20, 3)  # upright: portrait
    assert out[:10, :, 0].mean() > 200 and out[-10:, :, 0].mean() < 50  # red now at the top


def test_one_pixel_image_is_accepted():
    assert load_image(png_bytes(Image.new("RGB", (1, 1), (9, 9, 9)))).shape == (1, 1, 3)
