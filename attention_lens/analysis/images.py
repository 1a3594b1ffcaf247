"""Decoding user images safely: one clear error for anything that is not a usable picture.

Everything is turned into upright 8-bit RGB: EXIF rotation applied, grayscale / RGBA / 16-bit
/ CMYK converted. A pixel limit stops huge images and decompression bombs before they decode.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from attention_lens.data.image_files import MAX_PIXELS  # an 8000 x 8000 photo is a normal upload


class ImageError(ValueError):
    """The input is not an image this app can use; the message says why, for the user."""


def load_image(source) -> np.ndarray:
    """An upright HxWx3 uint8 RGB array from a path, bytes, a PIL image or an array."""
    if source is None:
        raise ImageError("No image: upload one or pick an example.")
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _to_rgb(source)
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), "the upload"
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{path.name}: file not found.")
        data, label = path.read_bytes(), path.name
    if not data:
        raise ImageError(f"{label} is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageError(f"{label} is {w}x{h} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels.")
                im.load()
                return _to_rgb(im)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{label} has more pixels than the {MAX_PIXELS // 1_000_000} megapixel limit "
                         "(a decompression bomb?); refused.") from None
    except (Image.UnidentifiedImageError, ImportError):
        # ImportError: ultralytics patches Image.open to retry unknown formats through pi-heif,
        # which is not installed (and never auto-installed here).
        raise ImageError(f"{label} is not an image file this app can read.") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{label} is damaged or truncated ({e}).") from None


#: The EXIF tag saying how the camera was held (1: upright as stored).
EXIF_ORIENTATION = 0x0112


def _to_rgb(im: Image.Image) -> np.ndarray:
    # Each step below copies the whole image, so only the ones a picture needs are taken (an
    # upright RGB JPEG needs none: the copies were half the load time of a 640x480 photo).
    if im.getexif().get(EXIF_ORIENTATION, 1) != 1:
        im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        hi = a.max() or 1.0
        im = Image.fromarray((a / hi * 255).round().astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im.convert("RGBA"))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def _from_array(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ImageError(f"Expected an HxWx3 image array, got shape {a.shape}.")
    if a.dtype != np.uint8:
        hi = float(a.max()) or 1.0
        a = (a.astype(np.float64) / hi * 255).round().astype(np.uint8)
    return _to_rgb(Image.fromarray(a[..., :3]))


#: Longest side of an image as the views show it. Larger uploads (an 8000x8000 photo is normal)
#: are detected at full resolution but drawn, stored between events and sent on at this size.
DISPLAY_MAX_SIDE = 1600


def display_copy(rgb: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> tuple[np.ndarray, float]:
    """(the image at most ``max_side`` on its longer side, the scale applied); the same array if it fits."""
    import cv2

    (h, w), scale = display_size(rgb.shape[:2], max_side)
    if scale == 1.0:
        return rgb, 1.0
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA), scale


def display_size(hw: tuple[int, int], max_side: int = DISPLAY_MAX_SIDE) -> tuple[tuple[int, int], float]:
    """((h, w) of the display copy of an image of size ``hw``, the scale), without resizing anything."""
    h, w = hw
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return (h, w), 1.0
    return (max(1, round(h * scale)), max(1, round(w * scale))), scale



def jpeg_data_uri(rgb: np.ndarray, quality: int = 85) -> str:
    """An RGB image as a JPEG ``data:`` URI (a plotly image trace's source)."""
    import base64

    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("could not encode the image for display")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")
