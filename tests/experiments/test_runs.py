"""The runs reader: real run directories, malformed ones, and read-only access."""
from __future__ import annotations

import hashlib
import json

from run_dirs import write_run

from attention_lens.experiments.runs import find_runs, load_run


def tree_digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
            h.update(str(p.stat().st_mtime_ns).encode())
    return h.hexdigest()


def test_shipped_style_runs_load_without_being_modified(tiny_weights):
    before = tree_digest(tiny_weights)
    runs = find_runs(tiny_weights)
    assert {r.name for r in runs} == {"baseline", "ema", "coordatt"}
    for run in runs:
        assert run.usable and not run.problems, run.problems
        raw = (run.path / "results.csv").read_text().splitlines()[0].split(",")
        assert list(run.results.columns) == [c.strip() for c in raw]
        assert run.summary["metrics"]["val"]["mAP50-95"] == json.loads((run.path / "summary.json").read_text())[
            "metrics"]["val"]["mAP50-95"]
        assert run.args["imgsz"] == 128
    assert tree_digest(tiny_weights) == before


def test_malformed_runs_say_what_is_wrong(tmp_path):
    write_run(tmp_path, "empty", {"results.csv": "epoch,metrics/mAP50(B)\n"})
    write_run(tmp_path, "padded", {"results.csv": "      epoch,  metrics/mAP50(B)\n1,  0.5\n"})
    write_run(tmp_path, "text", {"results.csv": "epoch,metrics/mAP50(B)\n1,abc\n", "summary.json": "{not json"})
    runs = {r.name: r for r in find_runs(tmp_path)}
    assert "no rows" in runs["empty"].problems[0]
    assert list(runs["padded"].results.columns) == ["epoch", "metrics/mAP50(B)"]
    assert any("summary.json" in p for p in runs["padded"].problems) and not runs["padded"].usable
    assert any("non-numeric" in p for p in runs["text"].problems)
    assert any("summary.json unreadable" in p for p in runs["text"].problems)
    assert load_run(tmp_path / "missing").problems == ["not a directory"]
