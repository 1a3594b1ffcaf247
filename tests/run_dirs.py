"""Test helper: run directories written from their files' text, for malformed-run cases."""
from __future__ import annotations

from pathlib import Path


def write_run(root: Path, name: str, files: dict[str, str]) -> Path:
    """``root/name`` holding each file of ``files`` (file name -> text)."""
    d = root / name
    d.mkdir(parents=True)
    for file_name, text in files.items():
        (d / file_name).write_text(text)
    return d
