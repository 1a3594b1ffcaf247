"""Two labelled FLOP counters, because they disagree on attention modules.

- ``thop``: ultralytics' own counter (``get_flops``). It counts layers by module hooks, so the
  bare matmuls inside EMA and PolarizedSA are invisible to it.
- ``torch``: ``torch.utils.flop_counter.FlopCounterMode``, which counts the aten ops that run,
  matmul/bmm included. Neither counts element-wise work (softmax, sigmoid, products).

Both report FLOPs as 2 x multiply-accumulates, in GFLOPs, at batch 1.
"""
from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode


def gflops_thop(model: torch.nn.Module, imgsz: int) -> float:
    from ultralytics.utils.torch_utils import get_flops

    return float(get_flops(copy.deepcopy(model).float(), imgsz))


def gflops_torch(model: torch.nn.Module, imgsz: int) -> float:
    m = copy.deepcopy(model).float().eval()
    x = torch.zeros(1, 3, imgsz, imgsz)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        m(x)
    return counter.get_total_flops() / 1e9


def gflops(model: torch.nn.Module, imgsz: int) -> dict:
    return {"thop": round(gflops_thop(model, imgsz), 4), "torch": round(gflops_torch(model, imgsz), 4), "imgsz": imgsz}
