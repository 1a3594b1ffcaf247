"""Building detection models from YAML dicts with the attention layers available."""
from __future__ import annotations


def build_model(cfg: dict | str, nc: int | None = None, verbose: bool = False):
    """An ultralytics DetectionModel from a YAML dict or path, attention layers included."""
    from ultralytics.nn.tasks import DetectionModel

    from components.modeling.integration import register

    register()
    return DetectionModel(cfg, nc=nc, verbose=verbose)
