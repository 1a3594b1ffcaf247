"""Training from scratch through ultralytics' trainer, then the run summary.

A run directory is what ultralytics writes (results.csv, args.yaml, weights/) plus
``summary.json`` and the model YAML it was built from. Plots are off: they would render the
data set's images into the run, and derivative images never ship.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch


def train(model_yaml: str | Path, data: str | Path, *, epochs: int, imgsz: int = 320, batch: int = 16,
          seed: int = 0, name: str, project: str | Path = "runs", workers: int = 2, device: str | None = None,
          latency_runs: int = 30, variant: dict | None = None, **overrides) -> Path:
    """Train ``model_yaml`` on ``data``; returns the run directory with its summary written.
    ``device``: auto, cpu, cuda or cuda:N (``attention_lens.device``; None: the environment's, else auto)."""
    from attention_lens.device import resolve_device, ultralytics_device
    from attention_lens.experiments.evaluate import build_summary, write_summary
    from attention_lens.modeling.load import load_model
    from attention_lens.modeling.yolo import YOLO

    t0 = time.time()
    threads = torch.get_num_threads()
    device = ultralytics_device(resolve_device(device))
    model = YOLO(str(model_yaml), task="detect")
    args = dict(data=str(data), epochs=epochs, imgsz=imgsz, batch=batch, seed=seed, deterministic=True,
                pretrained=False, project=str(Path(project).resolve()), name=name, exist_ok=False, plots=False,
                workers=workers, device=device, amp=False, verbose=True)
    args.update(overrides)
    model.train(**args)
    # Ultralytics' CPU trainer sets torch to cpu_count - 1 threads (1 on 2 cores) for the whole
    # process; the summary's latency is timed with the process's own setting, as the dashboard
    # and recost run models, and callers get their setting back.
    torch.set_num_threads(threads)
    run_dir = Path(model.trainer.save_dir)
    train_seconds = time.time() - t0
    (run_dir / "model.yaml").write_text(Path(model_yaml).read_text())
    best = run_dir / "weights" / "best.pt"
    selected = selected_epoch(run_dir / "results.csv")
    # Validated as the Evaluate tab and ``yolo val batch=1`` do (rect batches of one); each step
    # of the few silent minutes this takes is said as it starts.
    summary = build_summary(load_model(best), data, imgsz, 1, seed=seed, latency_runs=latency_runs, device=device,
                            progress=lambda text: print(f"summary: {text}", flush=True),
                            extra={"checkpoint": "weights/best.pt", "variant": variant or {},
                                   "train": {"epochs": epochs, "batch": batch, "selected_epoch": selected,
                                             "selection": "best val fitness (0.1 mAP50 + 0.9 mAP50-95)",
                                             "wall_seconds": round(train_seconds, 1), "device": device}})
    write_summary(run_dir, summary)
    return run_dir


def selected_epoch(results_csv: Path) -> int | None:
    """The epoch ultralytics kept as best.pt: highest 0.1*mAP50 + 0.9*mAP50-95 on val."""
    import pandas as pd

    df = pd.read_csv(results_csv)
    df.columns = [c.strip() for c in df.columns]
    fitness = 0.1 * df["metrics/mAP50(B)"] + 0.9 * df["metrics/mAP50-95(B)"]
    return int(df.loc[fitness.idxmax(), "epoch"]) if len(df) else None


def add_cli(sub) -> None:
    from attention_lens.attention import ATTENTION_MODULES
    from attention_lens.modeling.variants import PLACEMENTS

    p = sub.add_parser("train", help="train a variant (or any model YAML) from scratch and summarise the run")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--base", help="yolov5/yolov8/yolo11/yolo12/yolo26 with scale, e.g. yolov8n (builds the variant)")
    src.add_argument("--model", help="a model YAML instead of --base/--attention/--placement")
    p.add_argument("--attention", choices=list(ATTENTION_MODULES))
    p.add_argument("--placement", choices=list(PLACEMENTS), default="neck_outputs")
    p.add_argument("--param", action="append", metavar="NAME=VALUE")
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", required=True)
    p.add_argument("--project", default="runs")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", help="auto (the first GPU torch sees, else the CPU), cpu, cuda or cuda:N "
                                    "(default: $ATTENTION_LENS_DEVICE, else auto)")
    p.add_argument("--latency-runs", type=int, default=30)
    p.set_defaults(run=_run)


def _run(args) -> int:
    from attention_lens.modeling.variants import describe, make_variant, parse_params, to_yaml

    variant = {}
    if args.base:
        params = parse_params(args.param)
        d = make_variant(args.base, args.attention, args.placement if args.attention else None, params)
        variant = {"base": args.base, "attention": args.attention,
                   "placement": args.placement if args.attention else None, "params": params}
        yaml_path = Path(args.project) / f"{args.name}.yaml"
        yaml_path.parent.mkdir(parents=True, exist_ok=True)
        yaml_path.write_text(to_yaml(d, describe(args.base, args.attention, variant["placement"], params)))
    else:
        yaml_path = Path(args.model)
        variant = {"model_yaml": str(yaml_path)}
    run_dir = train(yaml_path, args.data, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, seed=args.seed,
                    name=args.name, project=args.project, workers=args.workers, device=args.device,
                    latency_runs=args.latency_runs, variant=variant)
    summary = json.loads((run_dir / "summary.json").read_text())
    for split, m in summary["metrics"].items():
        print(f"{split}: P {m['P']:.3f} R {m['R']:.3f} mAP50 {m['mAP50']:.3f} mAP50-95 {m['mAP50-95']:.3f}")
    print(f"run: {run_dir}")
    return 0
