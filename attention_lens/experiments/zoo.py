"""Shipping trained runs into weights/: stripped checkpoint, run files, manifest entry."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from attention_lens.modeling.catalog import MANIFEST
from attention_lens.modeling.variants import placement_label

RUN_FILES = ("results.csv", "args.yaml", "summary.json", "model.yaml")


def ship_run(run_dir: str | Path, weights_dir: str | Path, name: str) -> dict:
    """Copy a finished run into weights_dir/name (best.pt without optimizer state, run files)
    and add or replace its manifest entry. Returns the entry."""
    from ultralytics.utils.torch_utils import strip_optimizer

    run_dir, weights_dir = Path(run_dir), Path(weights_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    target = weights_dir / name
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run_dir / "weights" / "best.pt", target / "best.pt")
    strip_optimizer(target / "best.pt")
    for f in RUN_FILES:
        if (run_dir / f).is_file():
            shutil.copy2(run_dir / f, target / f)
    variant = summary.get("variant", {})
    entry = {"name": name, "base": variant.get("base"), "attention": variant.get("attention"),
             "placement": placement_label(variant), "seed": summary.get("seed"),
             "checkpoint": f"{name}/best.pt", "run": name}
    add_to_manifest(weights_dir, entry)
    return entry


def add_to_manifest(weights_dir: str | Path, entry: dict) -> None:
    path = Path(weights_dir) / MANIFEST
    manifest = json.loads(path.read_text()) if path.is_file() else {"models": []}
    models = [m for m in manifest["models"] if m["name"] != entry["name"]] + [entry]
    models.sort(key=lambda m: (m.get("attention") is not None, m.get("attention") or "", m.get("seed") or 0))
    manifest["models"] = models
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def add_cli(sub) -> None:
    add_table_cli(sub)
    p = sub.add_parser("ship", help="copy a finished run into weights/ and list it in the manifest")
    p.add_argument("run_dir")
    p.add_argument("--name", help="catalogue name (default: the run folder's name)")
    p.add_argument("--weights", default="weights")
    p.set_defaults(run=lambda a: print(json.dumps(ship_run(a.run_dir, a.weights, a.name or Path(a.run_dir).name))))


def results_markdown(weights_dir: str | Path) -> str:
    """The zoo's test results as a markdown table (mean ± std where there are seeds), from the runs."""
    from attention_lens.experiments.metrics import collect_runs, display_table, metrics_table

    runs, _ = collect_runs([weights_dir])
    shown = display_table(metrics_table(runs))
    cols = ["model", "seeds", "params (M)", "GFLOPs (thop)", "GFLOPs (torch)", "CPU ms (imgsz)", "test P", "test R",
            "test mAP50", "test mAP50-95", "Δ test mAP50-95", "flag"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(row[c]) for c in cols) + " |" for _, row in shown.iterrows()]
    return "\n".join(lines) + "\n"


def add_table_cli(sub) -> None:
    p = sub.add_parser("zoo-table", help="print the shipped zoo's test results as a markdown table")
    p.add_argument("--weights", default="weights")
    p.set_defaults(run=lambda a: print(results_markdown(a.weights), end=""))
