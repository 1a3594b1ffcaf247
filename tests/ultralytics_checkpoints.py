"""Checkpoints written by ultralytics itself, for the detectors that carry their own attention."""
from __future__ import annotations

from pathlib import Path

import torch


def ultralytics_checkpoint(folder: Path, yaml: str, end2end: bool | None = None, nc: int | None = None) -> Path:
    """``YOLO(yaml).save(...)``: a checkpoint as ultralytics writes it; class biases zeroed so that
    an untrained head scores boxes around 0.5 (there is something to compare); the head's saved
    mode as given (None: the YAML's)."""
    from ultralytics import YOLO

    model = YOLO(yaml)
    if nc is not None:  # as a run on a data set of nc classes would write it
        from ultralytics.nn.tasks import DetectionModel

        model.model = DetectionModel(model.model.yaml, nc=nc, verbose=False)
        model.model.names = {i: f"class{i}" for i in range(nc)}
    head = model.model.model[-1]
    with torch.no_grad():
        for branch in list(head.cv3) + list(getattr(head, "one2one_cv3", None) or []):
            branch[-1].bias.zero_()
    if end2end is not None:
        head.end2end = end2end
    path = Path(folder) / f"{Path(yaml).stem}-{end2end}-{nc}.pt"
    model.save(path)
    return path


def rtdetr_checkpoint(folder: Path) -> Path:
    """``RTDETR(yaml).save(...)`` for ultralytics' rtdetr-l.yaml narrowed as the built-in fixtures
    narrow it (tests/fixtures/builtin/make_fixtures.py), its score heads' biases zeroed so that the
    untrained decoder scores its queries around 0.5."""
    import importlib.util

    import yaml as yaml_lib
    from ultralytics import RTDETR

    script = Path(__file__).resolve().parent / "fixtures" / "builtin" / "make_fixtures.py"
    spec = importlib.util.spec_from_file_location("builtin_fixtures", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg_path = Path(folder) / "rtdetr-l.yaml"
    cfg_path.write_text(yaml_lib.safe_dump(module.config("detr"), sort_keys=False))
    torch.manual_seed(0)  # one initialisation, the same every run
    model = RTDETR(str(cfg_path))
    head = model.model.model[-1]
    with torch.no_grad():
        for linear in [head.enc_score_head, *head.dec_score_head]:
            linear.bias.zero_()
    model.model.names = {0: "cell", 1: "blob"}
    path = Path(folder) / "rtdetr-l-narrow.pt"
    model.save(path)
    return path
