"""Shared fixtures. The offline settings apply before any test imports ultralytics."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import components  # noqa: E402,F401  (applies YOLO_OFFLINE etc.)

BCCD = ROOT.parent / "shared" / "datasets" / "bccd" / "BCCD"


@pytest.fixture(scope="session")
def bccd_root() -> Path:
    if not (BCCD / "Annotations").is_dir():
        pytest.skip(f"BCCD data set not found at {BCCD}")
    return BCCD
