"""recost: re-measured cost fields, metrics untouched, nothing written when any run is bad."""
from __future__ import annotations

import json
import shutil

import pytest

from attention_lens.cli import main
from attention_lens.experiments.recost import recost
from attention_lens.modeling.load import load_model


@pytest.fixture
def two_runs(tiny_weights, tmp_path):
    """Copies of the tiny baseline and EMA runs with their cost fields spoiled."""
    dirs = []
    for name in ("baseline", "ema"):
        d = shutil.copytree(tiny_weights / name, tmp_path / name)
        s = json.loads((d / "summary.json").read_text())
        s["params"], s["gflops"]["at_imgsz"], s["latency_cpu"] = 1, {"thop": 0, "torch": 0}, {}
        (d / "summary.json").write_text(json.dumps(s))
        dirs.append(d)
    return dirs


def test_recost_rewrites_params_gflops_and_latency_and_keeps_the_metrics(two_runs):
    before = [json.loads((d / "summary.json").read_text()) for d in two_runs]
    recost(two_runs, runs=3, warmup=1)
    after = [json.loads((d / "summary.json").read_text()) for d in two_runs]
    for d, old, new in zip(two_runs, before, after):
        assert new["metrics"] == old["metrics"] and new["imgsz"] == old["imgsz"]
        assert new["params"] == sum(p.numel() for p in load_model(d / "best.pt").parameters())
        for key, size in (("at_imgsz", old["imgsz"]), ("at_640", 640)):
            lat = new["latency_cpu"][key]
            assert lat["imgsz"] == size and lat["runs"] == 3 and lat["alternated_with"] == 1
            assert 0 < lat["min_ms"] <= lat["median_ms"] <= lat["max_ms"]
        assert new["cost_remeasured"]["runs"] == ["baseline", "ema"]
    base, ema = (s["gflops"]["at_imgsz"]["torch"] for s in after)
    assert 0 < base < ema  # EMA adds convolutions to the same network


def test_one_bad_run_changes_nothing(two_runs, tmp_path, capsys):
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "summary.json").write_text("{not json")
    before = (two_runs[0] / "summary.json").read_bytes()
    assert main(["recost", str(two_runs[0]), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "broken" in err and "not valid JSON" in err
    assert (two_runs[0] / "summary.json").read_bytes() == before
    (two_runs[1] / "best.pt").unlink()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        recost([two_runs[1]], runs=1, warmup=0)
