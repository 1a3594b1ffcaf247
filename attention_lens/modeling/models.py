"""Building detection models from YAML dicts with the attention layers available."""
from __future__ import annotations


def build_model(cfg: dict | str, nc: int | None = None, verbose: bool = False, detr: bool = False):
    """An ultralytics DetectionModel from a YAML dict or path, attention layers included; with
    ``detr``, its RTDETRDetectionModel (a YAML whose head is an RTDETRDecoder)."""
    from ultralytics.nn.tasks import DetectionModel, RTDETRDetectionModel

    from attention_lens.modeling.integration import register

    register()
    return (RTDETRDetectionModel if detr else DetectionModel)(cfg, nc=nc, verbose=verbose)


def probe_model(cfg: dict):
    """The layers a YAML dict describes, in a bare module whose state dict is named as a
    DetectionModel's (``model.<i>...``): what the meta-device size probe (cost.py) builds, since
    DetectionModel's own init computes strides and biases from real values."""
    import copy

    import torch
    from ultralytics.nn import tasks

    from attention_lens.modeling.integration import register

    register()
    probe = torch.nn.Module()
    probe.yaml = cfg
    probe.model, _ = tasks.parse_model(copy.deepcopy(cfg), ch=cfg.get("channels", cfg.get("ch", 3)), verbose=False)
    return probe
