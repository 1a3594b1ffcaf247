"""Process settings: offline-first ultralytics, and a malloc that keeps activation buffers.

Both are applied when the package is imported, before ultralytics is imported anywhere.
"""
from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from pathlib import Path


def configure_offline() -> None:
    """Keep ultralytics from reaching the network or installing packages.

    Must run before the first ``import ultralytics``; later calls are harmless. A user's own
    settings win (setdefault), except that the config dir must exist and be writable.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    config_dir = os.environ.get("YOLO_CONFIG_DIR")
    if not config_dir or not _writable(Path(config_dir)):
        path = Path(tempfile.gettempdir()) / "attention-lens-ultralytics"
        path.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(path)


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        return os.access(path, os.W_OK)
    except OSError:
        return False


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Buffers up to this size come from the heap instead of a fresh mmap. YOLO activations at
#: imgsz 640 are a few MB each; glibc's default (128 KiB, adapted only lazily) maps and unmaps
#: them on every forward, so each call page-faults its activations in again (docs/PERFORMANCE.md).
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Freed memory kept at the top of the heap before it is returned to the system.
TRIM_THRESHOLD = 128 * 1024 * 1024


def keep_freed_buffers() -> bool:
    """Tell glibc's malloc to reuse freed activation buffers instead of unmapping them.

    PyTorch's CPU tensors come from malloc; without this, a forward at imgsz 640 takes
    thousands of page faults (about 3x slower: docs/PERFORMANCE.md, section 11). Returns whether the
    setting took: False on a C library without ``mallopt`` (macOS, musl), which keeps its defaults.
    """
    return _mallopt(MMAP_THRESHOLD, TRIM_THRESHOLD)


def restore_malloc_defaults() -> bool:
    """glibc's default thresholds (128 KiB each), for measuring what ``keep_freed_buffers`` saves."""
    return _mallopt(128 * 1024, 128 * 1024)


def _mallopt(mmap_threshold: int, trim_threshold: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))


#: Every temporary folder a server process makes (unpacked zips, converted data sets, session
#: files) lies under one folder named for its process id, so that the next start can remove
#: what a killed process left behind (``sweep_dead_runs``) without touching a live one's.
RUN_PREFIX = "attention-lens-server-"


def run_folder() -> Path:
    """This process's temporary folder (created on first use, private to this user)."""
    path = Path(tempfile.gettempdir()) / f"{RUN_PREFIX}{os.getpid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def sweep_dead_runs() -> list[Path]:
    """Remove the temporary folders of server processes that no longer run; the ones removed."""
    import shutil

    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{RUN_PREFIX}*"):
        pid = folder.name[len(RUN_PREFIX):]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    return True
