"""Evaluation through ultralytics' validator, and the run summary both train and evaluate write.

The summary (``summary.json`` in a run directory) holds: metrics on the val and test splits
(overall and per class), params, GFLOPs by both counters, CPU latency at batch 1, and the
provenance (seed, data set and a fingerprint of its split files, package versions, wall time).
"""
from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path

import torch

from attention_lens.experiments.runs import SUMMARY_NAME
from attention_lens.modeling.load import load_model

SUMMARY_VERSION = 1


def validate(model: torch.nn.Module, data: str | Path, split: str, imgsz: int, batch: int = 16) -> dict:
    """P, R, mAP50, mAP50-95 overall and per class on one split, from ultralytics' validator."""
    from ultralytics.models.yolo.detect import DetectionValidator

    args = dict(data=str(data), split=split, imgsz=imgsz, batch=batch, plots=False, save_json=False,
                verbose=False, device="cpu", workers=0)
    validator = DetectionValidator(args=args)
    threads = torch.get_num_threads()
    try:
        validator(model=model)
    finally:  # its device selection sets the whole process to cores - 1 threads (1 on 2 cores)
        torch.set_num_threads(threads)
    box = validator.metrics.box
    names = validator.metrics.names
    per_class = {}
    for j, c in enumerate(box.ap_class_index):
        p, r, ap50, ap = box.class_result(j)
        per_class[names[int(c)]] = {"P": float(p), "R": float(r), "mAP50": float(ap50), "mAP50-95": float(ap)}
    return {"P": float(box.mp), "R": float(box.mr), "mAP50": float(box.map50), "mAP50-95": float(box.map),
            "images": int(validator.seen), "per_class": per_class}


def split_fingerprint(data: str | Path) -> dict:
    """Name of the data set and a sha256 over its split file lists and labels."""
    import yaml

    data = Path(data)
    cfg = yaml.safe_load(data.read_text())
    root = Path(cfg.get("path") or data.parent)
    h = hashlib.sha256()
    for split in ("train", "val", "test"):
        if split not in cfg:
            continue
        labels = sorted((root / str(cfg[split]).replace("images", "labels", 1)).glob("*.txt"))
        for f in labels:
            h.update(f"{split}/{f.name}\n".encode())
            h.update(f.read_bytes())
    return {"name": root.name, "data_yaml": str(data), "fingerprint": h.hexdigest()[:16],
            "names": cfg.get("names")}


def versions() -> dict:
    import cv2
    import ultralytics

    return {"python": platform.python_version(), "torch": torch.__version__, "ultralytics": ultralytics.__version__,
            "opencv": cv2.__version__, "platform": platform.platform(), "cpu_threads": torch.get_num_threads()}


def build_summary(model: torch.nn.Module, data: str | Path, imgsz: int, batch: int = 16, *, seed=None,
                  latency_runs: int = 30, extra: dict | None = None, splits=("val", "test")) -> dict:
    from attention_lens.experiments.flops import gflops
    from attention_lens.experiments.latency import measure_latency

    t0 = time.time()
    latency = {"at_imgsz": measure_latency(model, imgsz, latency_runs),
               "at_640": measure_latency(model, 640, latency_runs)}
    summary = {"version": SUMMARY_VERSION, "imgsz": imgsz, "seed": seed,
               "metrics": {s: validate(model, data, s, imgsz, batch) for s in splits},
               "params": int(sum(p.numel() for p in model.parameters())),
               "gflops": {"counters": {"thop": "ultralytics get_flops (thop, module hooks)",
                                       "torch": "torch.utils.flop_counter (aten ops, matmul included)"},
                          "at_imgsz": gflops(model, imgsz), "at_640": gflops(model, 640)},
               "latency_cpu": latency,
               "dataset": split_fingerprint(data), "versions": versions()}
    summary.update(extra or {})
    summary["evaluation_seconds"] = round(time.time() - t0, 1)
    return summary


def write_summary(run_dir: str | Path, summary: dict) -> Path:
    path = Path(run_dir) / SUMMARY_NAME
    path.write_text(json.dumps(summary, indent=2, default=str))
    return path


def evaluate_checkpoints(ckpts: list[str], data: str, split: str, imgsz: int, batch: int, out: str | None,
                         latency_runs: int = 30) -> list[Path]:
    """Write a summary per checkpoint (next to it, or under ``out``). Shows progress."""
    from ultralytics.utils import TQDM

    written = []
    for ckpt in TQDM(ckpts, desc="evaluate", unit="ckpt"):
        model = load_model(ckpt)
        splits = ("val", "test") if split == "all" else (split,)
        summary = build_summary(model, data, imgsz, batch, latency_runs=latency_runs, splits=splits,
                                extra={"checkpoint": str(ckpt)})
        target = Path(out) / Path(ckpt).stem if out else _run_dir_of(Path(ckpt))
        target.mkdir(parents=True, exist_ok=True)
        written.append(write_summary(target, summary))
        print(f"{ckpt}: " + ", ".join(f"{s} mAP50-95 {summary['metrics'][s]['mAP50-95']:.4f}" for s in splits))
    return written


def _run_dir_of(ckpt: Path) -> Path:
    return ckpt.parent.parent if ckpt.parent.name == "weights" else ckpt.parent


def add_cli(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate checkpoints and write their run summaries")
    p.add_argument("ckpts", nargs="+", help="checkpoint files (.pt)")
    p.add_argument("--data", required=True, help="data.yaml")
    p.add_argument("--split", default="all", choices=["val", "test", "all"])
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--latency-runs", type=int, default=30)
    p.add_argument("--out", help="write summaries under this folder instead of the checkpoints' run dirs")
    p.set_defaults(run=lambda a: not evaluate_checkpoints(a.ckpts, a.data, a.split, a.imgsz, a.batch, a.out,
                                                          a.latency_runs))
