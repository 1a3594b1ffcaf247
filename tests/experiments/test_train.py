"""Training through ultralytics on a few BCCD images, the run summary, and evaluate."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from attention_lens.attention import ATTENTION_MODULES
from attention_lens.experiments.evaluate import evaluate_checkpoints
from attention_lens.experiments.train import train
from attention_lens.modeling.load import load_model
from attention_lens.modeling.variants import make_variant, to_yaml


def run_variant(attention, data, project, epochs=1):
    yaml_path = project / f"{attention or 'plain'}.yaml"
    yaml_path.write_text(to_yaml(make_variant("yolov8n", attention, "neck_outputs" if attention else None)))
    return train(yaml_path, data, epochs=epochs, imgsz=128, batch=4, seed=0, name=attention or "plain",
                 project=project, workers=0, latency_runs=2, variant={"attention": attention})


def read_results(run_dir):
    df = pd.read_csv(run_dir / "results.csv")
    df.columns = [c.strip() for c in df.columns]
    return df


@pytest.mark.parametrize("attention", list(ATTENTION_MODULES))
def test_one_epoch_per_module_trains_saves_and_reloads_safely(attention, tiny_bccd, tmp_path):
    from ultralytics.nn.tasks import load_checkpoint as ultralytics_load

    run_dir = run_variant(attention, tiny_bccd, tmp_path)
    df = read_results(run_dir)
    losses = df[[c for c in df.columns if c.startswith("train/")]].to_numpy().ravel()
    assert len(losses) and all(math.isfinite(v) for v in losses)
    ckpt = run_dir / "weights" / "last.pt"
    ours = load_model(ckpt)
    theirs, _ = ultralytics_load(str(ckpt), device="cpu", fuse=False)  # trusted file: reference loader
    assert sum(isinstance(m, ATTENTION_MODULES[attention]) for m in ours.modules()) == 3
    x = torch.rand(2, 3, 128, 160)
    with torch.no_grad():
        assert torch.equal(ours(x)[0], theirs.float().eval()(x)[0])


def test_summary_matches_results_csv_and_evaluate_reproduces_it(tiny_bccd, tmp_path):
    threads = torch.get_num_threads()
    run_dir = run_variant("EMA", tiny_bccd, tmp_path, epochs=2)
    summary = json.loads((run_dir / "summary.json").read_text())
    df = read_results(run_dir)
    row = df[df["epoch"] == summary["train"]["selected_epoch"]].iloc[0]
    val = summary["metrics"]["val"]
    for key, col in (("P", "metrics/precision(B)"), ("R", "metrics/recall(B)"), ("mAP50", "metrics/mAP50(B)"),
                     ("mAP50-95", "metrics/mAP50-95(B)")):
        assert val[key] == pytest.approx(float(row[col]), abs=2e-3), key  # best.pt is stored in fp16
    for at in ("at_imgsz", "at_640"):
        assert summary["gflops"][at]["thop"] > 0 and summary["gflops"][at]["torch"] > 0
        assert summary["latency_cpu"][at]["median_ms"] > 0
        # timed with this process's threads, not the cpu_count - 1 ultralytics' CPU trainer sets
        assert summary["latency_cpu"][at]["threads"] == threads == torch.get_num_threads()
    assert summary["params"] == sum(p.numel() for p in load_model(run_dir / "weights/best.pt").parameters())
    assert summary["dataset"]["fingerprint"] and summary["versions"]["torch"] == torch.__version__
    assert summary["metrics"]["test"]["images"] == 6

    out = tmp_path / "eval"
    (written,) = evaluate_checkpoints([str(run_dir / "weights/best.pt")], str(tiny_bccd), "test", 128, 4, str(out),
                                      latency_runs=2)
    again = json.loads(written.read_text())["metrics"]["test"]
    for key in ("P", "R", "mAP50", "mAP50-95"):
        assert again[key] == pytest.approx(summary["metrics"]["test"][key], abs=1e-6)
