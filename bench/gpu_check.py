"""The GPU check (issue 37): one prepared run on a machine with a CUDA device, a few minutes.

    bash bench/gpu_check.sh            # on the GPU machine (installs carried wheels, then this)
    python -m bench.gpu_check --device cpu --images 40 --sizes 320   # a dry run of the same steps here

What it reports (JSON to --out, a summary on stdout; absolute times belong in docs/PERFORMANCE.md
with the GPU named):

1. Detections on the GPU against the CPU's, PyTorch float32 both (the exactness contract): per
   model and image size, the largest box and score differences and any count mismatch.
2. The Attention view (capture) and Explain one detection on the GPU: each one's time, and
   Explain's matched candidate against the CPU's.
3. The evaluation pass against ultralytics' own ``val`` on the same device, models and split, at
   each size, on a synthetic split the script makes (the example images cropped, flipped and
   resized; labels from the first model's own detections, so mAP is not degenerate): both mAPs,
   and the time ratio ours / val (target at most 1.2); the pass in float16, its mAP difference.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("yolov8n-baseline-s0", "yolov8n-ema-neck-s0", "yolo11n-baseline-s0", "yolo12n-baseline-s0",
          "yolo26n-ema-neck-s0")
DETR = ROOT / "tests" / "fixtures" / "builtin" / "detr-bccd-best.pt"


def load_models(device):
    import torch

    from attention_lens.modeling.catalog import prepare
    from attention_lens.modeling.load import load_model

    paths = {n: ROOT / "weights" / n / "best.pt" for n in MODELS} | {"rtdetr-narrow": DETR}
    out = {}
    for name, path in paths.items():
        if path.is_file():
            model = load_model(path)
            out[name] = (prepare(copy.deepcopy(model), device=torch.device("cpu")), prepare(model, device=device))
    return out


def examples():
    from attention_lens.analysis.images import load_image

    return [load_image(p) for p in sorted((ROOT / "assets" / "examples").iterdir())
            if p.suffix.lower() in (".jpg", ".jpeg", ".png")]


def detections_check(pairs, images, sizes) -> list[dict]:
    from attention_lens.runtime.detect import detect

    rows = []
    for name, (cpu, gpu) in pairs.items():
        for size in sizes:
            worst_box = worst_score = 0.0
            mismatched = 0
            for im in images:
                a, b = detect(cpu, im, imgsz=size), detect(gpu, im, imgsz=size)
                if a.classes != b.classes or len(a.boxes) != len(b.boxes):
                    mismatched += 1
                    continue
                if len(a.boxes):
                    worst_box = max(worst_box, float(np.abs(a.boxes - b.boxes).max()))
                    worst_score = max(worst_score, float(np.abs(a.scores - b.scores).max()))
            rows.append({"model": name, "imgsz": size, "images": len(images), "count or class mismatches": mismatched,
                         "max box diff px": round(worst_box, 5), "max score diff": round(worst_score, 6),
                         "backend": b.backend})
    return rows


def views_check(pairs, image, size) -> list[dict]:
    import torch

    from attention_lens.analysis.attention_view import inspect
    from attention_lens.analysis.explain import explain_box
    from attention_lens.runtime.detect import detect

    rows = []
    for name, (cpu, gpu) in pairs.items():
        inspect(image, {name: gpu}, imgsz=size)  # warm
        torch.cuda.synchronize() if torch.cuda.is_available() else None
        t0 = time.perf_counter()
        ins = inspect(image, {name: gpu}, imgsz=size)
        attention_ms = (time.perf_counter() - t0) * 1000
        det = detect(cpu, image, imgsz=size)
        row = {"model": name, "imgsz": size, "attention view ms": round(attention_ms, 1),
               "layers captured": len(ins.models[0].layers)}
        if len(det.boxes):
            a = explain_box(cpu, name, image, det.boxes[0], det.classes[0], imgsz=size)
            t0 = time.perf_counter()
            b = explain_box(gpu, name, image, det.boxes[0], det.classes[0], imgsz=size)
            row |= {"explain ms": round((time.perf_counter() - t0) * 1000, 1),
                    "explain matched box diff px": round(float(np.abs(a.matched - b.matched).max()), 5),
                    "explain cam max diff": round(float(np.abs(a.cam - b.cam).max()), 5)}
        rows.append(row)
    return rows


def synthetic_split(folder: Path, n: int, labeller, size: int = 320) -> Path:
    """``n`` images (640 x 480) cut from the examples, YOLO labels from ``labeller``'s detections at
    confidence 0.5; a data.yaml whose val and test are these images."""
    import cv2
    import yaml
    from ultralytics.utils.ops import xyxy2xywhn

    from attention_lens.runtime.detect import detect

    rng = np.random.default_rng(0)
    sources = examples()
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    names = labeller.names
    for k in range(n):
        src = sources[k % len(sources)]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        im = cv2.resize(src[y:y + ch, x:x + cw], (640, 480))
        if rng.random() < 0.5:
            im = im[:, ::-1].copy()
        cv2.imwrite(str(folder / "images" / f"{k:05d}.jpg"), im[..., ::-1])
        det = detect(labeller, im, imgsz=size, conf=0.5)
        by_name = {v: i for i, v in names.items()}
        xywhn = xyxy2xywhn(det.boxes.astype(np.float64), w=640, h=480, clip=True)  # YOLO label format
        lines = [f"{by_name[c]} " + " ".join(f"{v:.6f}" for v in b) for b, c in zip(xywhn, det.classes)]
        (folder / "labels" / f"{k:05d}.txt").write_text("\n".join(lines))
    data = folder / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(folder), "train": "images", "val": "images", "test": "images",
                                    "names": {int(i): str(v) for i, v in names.items()}}))
    return data


def pass_check(pairs, data: Path, size: int, device, half: bool) -> list[dict]:
    import torch
    from ultralytics import RTDETR, YOLO

    from attention_lens.data.datasets import read_split
    from attention_lens.device import ultralytics_device
    from attention_lens.evaluation.predict import predict_models
    from attention_lens.evaluation.ultralytics_metrics import ultralytics_metrics

    split = read_split(data, "test")
    rows = []
    for name, (_, gpu) in pairs.items():
        path = DETR if name == "rtdetr-narrow" else ROOT / "weights" / name / "best.pt"
        t0 = time.perf_counter()
        theirs = (RTDETR if name == "rtdetr-narrow" else YOLO)(str(path)).val(
            data=str(data), split="test", imgsz=size, batch=8, plots=False, verbose=False,
            device=ultralytics_device(device), workers=4, half=False).box
        val_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = predict_models({name: gpu}, split, size)[name][0]
        mine = ultralytics_metrics(split, ours, size)
        ours_s = time.perf_counter() - t0
        row = {"model": name, "imgsz": size, "images": len(split.images), "val mAP50-95": round(float(theirs.map), 4),
               "ours mAP50-95": round(mine["mAP50-95"], 4), "val s": round(val_s, 2), "ours s": round(ours_s, 2),
               "ours / val": round(ours_s / val_s, 3)}
        if half and device.type == "cuda":
            halves = predict_models({name: gpu}, split, size, half=True)[name][0]
            row["float16 mAP50-95 diff"] = round(ultralytics_metrics(split, halves, size)["mAP50-95"] - mine["mAP50-95"], 5)
        rows.append(row)
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--images", type=int, nargs="+", default=[1000, 5000], help="synthetic split sizes")
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 640])
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    a = p.parse_args(argv)
    os.environ.setdefault("ATTENTION_LENS_BACKEND", "pytorch")  # the CPU reference on PyTorch, float32
    import torch

    from attention_lens.device import device_label, set_device

    device = set_device(a.device)
    report = {"device": device_label(device), "torch": torch.__version__, "when": time.strftime("%Y-%m-%d %H:%M")}
    pairs = load_models(device)
    images = examples()
    say = lambda k, v: (report.__setitem__(k, v), print(k, json.dumps(v, indent=1), flush=True))  # noqa: E731
    say("detections, GPU vs CPU", detections_check(pairs, images, a.sizes))
    say("views on the device", [r for s in a.sizes for r in views_check(pairs, images[0], s)])
    with tempfile.TemporaryDirectory() as tmp:
        labeller = pairs[next(iter(pairs))][1]
        rows = []
        for n in a.images:
            data = synthetic_split(Path(tmp) / f"split-{n}", n, labeller)
            for size in a.sizes if n == min(a.images) else a.sizes[:1]:
                rows += pass_check(pairs if n == min(a.images) else dict(list(pairs.items())[:2]), data, size, device,
                                   half=n == min(a.images))
                say("evaluation pass vs ultralytics val", rows)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "gpu_check.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
