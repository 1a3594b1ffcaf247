"""Zip archives a user uploads (stored runs, labelled data sets): unpacked safely, once each.

An upload is hostile until shown otherwise: every entry must land inside the extraction folder
(no absolute paths, no ``..``), and the declared sizes and entry count are bounded before a
byte is written. ``extracted`` keeps a small cache so an upload that several views read (the
Metrics tab asks on every picker change) is unpacked once, and evicted folders are deleted.
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from attention_lens.cache import BoundedCache, remove_folder
from attention_lens.env import run_folder

MAX_UNPACKED_BYTES = 200 * 2**20
MAX_ENTRIES = 20_000
#: Uploads kept unpacked at once; the oldest folder is removed when a new one arrives.
CACHE_SIZE = 8


def extract_zip(path: str | Path, dest: str | Path, max_bytes: int = MAX_UNPACKED_BYTES,
                max_entries: int = MAX_ENTRIES) -> Path:
    """Unpack the zip at ``path`` into ``dest``; ValueError with a user-facing reason if unsafe."""
    dest = Path(dest).resolve()
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > max_entries:
                raise ValueError(f"the zip holds more than {max_entries} entries")
            total = 0
            for info in infos:
                # is_relative_to, not a string prefix: "../dest-sibling/x" shares dest's prefix.
                if info.filename.startswith("/") or not (dest / info.filename).resolve().is_relative_to(dest):
                    raise ValueError(f"the zip holds an unsafe path: {info.filename}")
                total += info.file_size
                if total > max_bytes:
                    raise ValueError(f"the zip unpacks to more than {max_bytes // 2**20} MB")
            z.extractall(dest)
    except zipfile.BadZipFile:
        raise ValueError("not a zip file (or a damaged one)") from None
    return dest


#: Unpacked uploads by file version; an evicted one's folder is removed.
_UNPACKED: BoundedCache[Path] = BoundedCache(CACHE_SIZE, on_evict=remove_folder)


def extracted(zip_path: str | Path, prefix: str = "attention-lens-zip-") -> Path:
    """The folder ``zip_path`` unpacks into, unpacked on the first call for that exact file.

    Keyed by (path, size, mtime), so a re-upload under the same name is unpacked afresh.
    Raises ValueError (the reason) for an unreadable or unsafe archive, leaving nothing behind.
    """
    try:
        st = Path(zip_path).stat()
    except OSError as e:
        raise ValueError(e.strerror or str(e)) from None

    def unpack() -> Path:
        dest = Path(tempfile.mkdtemp(prefix=prefix, dir=run_folder()))
        try:
            extract_zip(zip_path, dest)
        except (ValueError, OSError) as e:
            shutil.rmtree(dest, ignore_errors=True)
            raise ValueError(str(e)) from None
        return dest

    return _UNPACKED.get_or_make((str(zip_path), st.st_size, st.st_mtime_ns), unpack)
