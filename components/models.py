"""Building detection models from YAML dicts with the attention layers available."""
from __future__ import annotations

from . import configure_offline

configure_offline()


def build_model(cfg: dict | str, nc: int | None = None, verbose: bool = False):
    """An ultralytics DetectionModel from a YAML dict or path, attention layers included."""
    from ultralytics.nn.tasks import DetectionModel

    from .integration import register

    register()
    return DetectionModel(cfg, nc=nc, verbose=verbose)
