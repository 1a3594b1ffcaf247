"""A data set's image file checked before a pass over it: its upright size, and whether it is whole.

Ultralytics checks every image of a data set before training (``verify_image_label``) and skips
the ones it cannot use, with a warning; a data set here is checked the same way when it is read,
so one damaged file costs that file, never the whole evaluation. Only the header is decoded,
except for a JPEG that lacks its end-of-image marker, which is decoded in full to tell a truncated
file (skipped) from one with bytes appended after the marker (kept).
"""
from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

#: Largest image accepted, in pixels (about 9400 x 9400): just under PIL's own decompression-bomb
#: threshold (Image.MAX_IMAGE_PIXELS, 89.5 MP). Larger files are refused before decoding.
MAX_PIXELS = 89_000_000
#: Smallest side ultralytics accepts for a data set image (its verify_image_label: "> 9 pixels").
MIN_SIDE = 10
#: The EXIF tag saying how the camera was held; values 5-8 swap width and height when applied.
EXIF_ORIENTATION = 0x0112
_TRANSPOSED = {5, 6, 7, 8}
_JPEG_END = b"\xff\xd9"


class ImageFileError(ValueError):
    """The file is not an image a data set can use; the message is the reason, for the user."""


def checked_size(path: Path) -> tuple[int, int]:
    """(height, width) of the image as shown upright (EXIF rotation applied, as ultralytics and the
    app's decoder apply it), or ImageFileError saying why the file cannot be used."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageFileError(f"{w}x{h} pixels, over the {MAX_PIXELS // 1_000_000} megapixel limit")
                if min(w, h) < MIN_SIDE:
                    raise ImageFileError(f"{w}x{h} pixels, smaller than {MIN_SIDE} px on a side")
                if im.getexif().get(EXIF_ORIENTATION, 1) in _TRANSPOSED:
                    w, h = h, w
                if im.format == "JPEG":
                    if not _ends_with(path, _JPEG_END):
                        im.load()  # raises when the data ends early; fine when bytes follow the marker
                    return h, w
            with Image.open(path) as im:  # verify() must come straight after opening
                im.verify()  # PNG: every chunk's CRC; others: what the format's plugin checks
    except ImageFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageFileError(f"more than the {MAX_PIXELS // 1_000_000} megapixel limit") from None
    except (Image.UnidentifiedImageError, ImportError):
        # ImportError: ultralytics patches Image.open to retry unknown formats through pi-heif,
        # which is not installed (and never auto-installed here).
        raise ImageFileError("not a readable image") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageFileError("damaged or truncated image data") from None
    return h, w


def _ends_with(path: Path, marker: bytes) -> bool:
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() < len(marker):
            return False
        f.seek(-len(marker), 2)
        return f.read() == marker
