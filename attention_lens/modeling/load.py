"""The one door from a checkpoint file to a model: read it as data (checkpoints.py), pick the
builder its records call for (foreign.py for a YAML-described model, yolox.py for a YOLOX state
dict), build it first on the meta device to check and measure it (cost.py), then for real."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from attention_lens.modeling.checkpoints import (
    CheckpointError,
    load_checkpoint,
    looks_like_state_dict,
    model_record,
    plain_args,
)
from attention_lens.modeling.cost import CostError, check_model, measure
from attention_lens.modeling.foreign import rebuild_yolo
from attention_lens.modeling.yolox import build_yolox, is_yolox_state


def load_model(path: str | Path) -> nn.Module:
    """The detection model in a checkpoint, rebuilt by this project: float32, eval mode, no grads.

    Opens ultralytics 8.x (YOLOv8, YOLO11, YOLO12, YOLO26, YOLOv10, v5u, RT-DETR; best.pt and
    last.pt, forks with attention classes at any module path, ultralytics' own CBAM), classic
    yolov5 v6-v7 and YOLOX state dicts.
    """
    path = Path(path)
    model = model_from_checkpoint(load_checkpoint(path), path.name)
    model.pt_path = str(path)
    return model


def model_from_checkpoint(ckpt: dict, label: str) -> nn.Module:
    """Build the model a checkpoint dict (from ``load_checkpoint``) describes. Raises CheckpointError."""
    state = ckpt.get("model") if isinstance(ckpt.get("model"), dict) else ckpt

    def build():
        if looks_like_state_dict(state) and is_yolox_state(state):
            return build_yolox(state, label)
        return rebuild_yolo(model_record(ckpt, label), label)

    try:
        # First on the meta device (shapes, no storage): the weights' names and shapes are checked
        # against the file and the model's size is measured before anything real is allocated.
        with torch.device("meta"):
            probe = build()
            try:
                cost = measure(probe)
            except Exception as e:  # a layer ultralytics builds but cannot run on these shapes
                raise CheckpointError(f"{label}: its architecture does not run ({type(e).__name__}: "
                                      f"{str(e)[:120]})") from None
        check_model(cost, label)
        model = build()
    except CostError as e:
        raise CheckpointError(str(e)) from None
    except CheckpointError as e:  # errors from deep in a record (a module budget) name the file too
        raise e if str(e).startswith(f"{label}:") else CheckpointError(f"{label}: {e}") from None
    model.cost = cost
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.train_args = plain_args(ckpt.get("train_args") or ckpt.get("opt"))  # ultralytics 8.x; yolov5
    return model
