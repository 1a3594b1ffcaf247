"""Params and GFLOPs of uploaded runs' checkpoints, as a lane job (attention_lens/jobs): building a
model from a file someone uploaded and running a FLOP-counting forward is work for a limited
child process, not the server. Writes ``costs.json`` (path -> costs) into the job's folder."""
from __future__ import annotations

import json
from pathlib import Path

COSTS = "costs.json"


def main(spec: dict, report) -> None:
    import torch

    from attention_lens.experiments.runs import checkpoint_costs

    torch.set_num_threads(1)
    items = spec["checkpoints"]
    out, costs = Path(spec["out"]), {}
    for i, item in enumerate(items):
        report(i, len(items), "costing uploaded checkpoints")
        costs[item["path"]] = checkpoint_costs(Path(item["path"]), int(item["imgsz"]))
        (out / COSTS).write_text(json.dumps(costs))  # what is done survives a limit hit on the next one
    report(len(items), len(items), "costing uploaded checkpoints")
