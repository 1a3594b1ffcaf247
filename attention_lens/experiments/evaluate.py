"""Evaluation through ultralytics' validator, and the run summary both train and evaluate write.

The summary (``summary.json`` in a run directory) holds: metrics on the val and test splits
(overall and per class), params, GFLOPs by both counters, CPU latency at batch 1, and the
provenance (seed, data set and a fingerprint of its split files, package versions, wall time).
"""
from __future__ import annotations

import functools
import hashlib
import json
import platform
import time
from pathlib import Path

import torch

from attention_lens.experiments.runs import SUMMARY_NAME
from attention_lens.modeling.load import load_model

SUMMARY_VERSION = 1


def validate(model: torch.nn.Module, data: str | Path, split: str, imgsz: int, batch: int = 1,
             device: str = "cpu") -> dict:
    """P, R, mAP50, mAP50-95 overall and per class on one split, from ultralytics' validator, as
    ``yolo val`` validates a checkpoint file: rect batches (``CheckpointValidator``), here of
    ``batch`` images; one a batch gives each image its own rect shape, as the Evaluate tab's pass
    does (on a split of one aspect ratio any batch gives the same numbers). ``device``: as
    ultralytics spells it ("cpu", "0")."""
    args = dict(data=str(data), split=split, imgsz=imgsz, batch=batch, plots=False, save_json=False,
                verbose=False, device=device, workers=0)
    validator = _checkpoint_validator()(args=args)
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
            "images": int(validator.seen), "per_class": per_class, "method": VAL_METHOD}


#: How ``validate`` computes its numbers (stored with them in a run's summary).
VAL_METHOD = "ultralytics val, rect batches of 1"


@functools.cache  # one class for the process; defined on first use, where ultralytics may be imported
def _checkpoint_validator():
    """ultralytics' DetectionValidator that keeps rect batches for a model handed over in memory.

    Given a model object rather than a file, the validator turns rect batches off and pads every
    image to a square, which moves mAP50-95 by up to 0.01 on the zoo against ``yolo val`` on
    the same checkpoint; this subclass builds the data set as it does for a checkpoint file."""
    from ultralytics.data import build_yolo_dataset
    from ultralytics.models.yolo.detect import DetectionValidator

    class CheckpointValidator(DetectionValidator):
        def build_dataset(self, img_path, mode="val", batch=None):
            return build_yolo_dataset(self.args, img_path, batch, self.data, mode=mode, stride=self.stride, rect=True)

    return CheckpointValidator


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


def build_summary(model: torch.nn.Module, data: str | Path, imgsz: int, batch: int = 1, *, seed=None,
                  latency_runs: int = 30, extra: dict | None = None, splits=("val", "test"), progress=None,
                  device: str = "cpu") -> dict:
    """The run summary (see the module docstring). ``progress(text)`` is told each step as it
    starts: the whole takes minutes on a CPU (latency, two validations, two FLOP counts). The
    validations run on ``device`` (ultralytics' spelling); the latency is always the CPU's, where
    the dashboard runs."""
    from attention_lens.experiments.flops import gflops
    from attention_lens.experiments.latency import steady_latency

    t0 = time.time()
    say = progress or (lambda text: None)
    say(f"CPU latency at {imgsz} and 640 px ({latency_runs} forwards each)")
    latency = {"at_imgsz": steady_latency(model, imgsz, latency_runs),
               "at_640": steady_latency(model, 640, latency_runs)}
    metrics = {}
    for s in splits:
        say(f"ultralytics val on the {s} split")
        metrics[s] = validate(model, data, s, imgsz, batch, device)
    say("params and GFLOPs")
    summary = {"version": SUMMARY_VERSION, "imgsz": imgsz, "seed": seed,
               "metrics": metrics,
               "params": int(sum(p.numel() for p in model.parameters())),
               "gflops": {"counters": {"thop": "ultralytics get_flops (thop, module hooks)",
                                       "torch": "torch.utils.flop_counter (aten ops, matmul included)"},
                          "at_imgsz": gflops(model, imgsz), "at_640": gflops(model, 640)},
               "latency_cpu": latency,
               "dataset": split_fingerprint(data), "versions": versions()}
    summary.update(extra or {})
    summary["evaluation_seconds"] = round(time.time() - t0, 1)
    return summary


def variant_of(model: torch.nn.Module) -> dict:
    """What a checkpoint holds, for a run that did not record it (a plain ultralytics run): its base
    as the loader named it, and its attention kinds (placement unknown)."""
    from attention_lens.attention import attention_modules

    kinds = sorted({type(m).__name__ for _, _, m in attention_modules(model, built_in=False)})
    return {"base": getattr(model, "base_name", None), "attention": "+".join(kinds) or None,
            "placement": "as stored" if kinds else None}


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
                                extra={"checkpoint": str(ckpt), "variant": variant_of(model)},
                                progress=lambda text: print(f"{Path(ckpt).name}: {text}", flush=True))
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
    p.add_argument("--batch", type=int, default=1, help="validation batch (rect batches, as yolo val)")
    p.add_argument("--latency-runs", type=int, default=30)
    p.add_argument("--out", help="write summaries under this folder instead of the checkpoints' run dirs")
    p.set_defaults(run=lambda a: not evaluate_checkpoints(a.ckpts, a.data, a.split, a.imgsz, a.batch, a.out,
                                                          a.latency_runs))
