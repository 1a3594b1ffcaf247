"""Offline-first process settings, applied before ultralytics is imported anywhere."""
from __future__ import annotations

import os
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
