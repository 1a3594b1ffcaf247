"""Test helpers: run directories written from their files' text (malformed cases) or from numbers."""
from __future__ import annotations

import json
from pathlib import Path

from attention_lens.experiments.evaluate import VAL_METHOD as METHOD  # what this version's summaries say


def write_run(root: Path, name: str, files: dict[str, str]) -> Path:
    """``root/name`` holding each file of ``files`` (file name -> text)."""
    d = root / name
    d.mkdir(parents=True)
    for file_name, text in files.items():
        (d / file_name).write_text(text)
    return d




def fake_run(root, name, attention, test_map, seed=0, val_map=0.5, dataset="bccd", base="yolov8n"):
    d = root / name
    d.mkdir(parents=True)
    summary = {"seed": seed, "params": 3_000_000, "variant": {"base": base, "attention": attention,
                                                              "placement": "neck_outputs" if attention else None},
               "imgsz": 320, "train": {"epochs": 60},
               "dataset": {"name": dataset, "fingerprint": f"{abs(hash(dataset)):016x}"},
               "gflops": {"at_imgsz": {"thop": 2.0, "torch": 2.1}},
               "latency_cpu": {"at_imgsz": {"median_ms": 20.0}},
               "metrics": {"val": {"P": 0.8, "R": 0.7, "mAP50": 0.8, "mAP50-95": val_map, "method": METHOD},
                           "test": {"P": 0.8, "R": 0.7, "mAP50": 0.8, "mAP50-95": test_map, "method": METHOD}}}
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "results.csv").write_text("epoch,metrics/mAP50-95(B)\n1,0.1\n2,0.2\n")
    return d
