"""`python -m attention_lens analyze`: results, report and stored detections, grown with --merge."""
from __future__ import annotations

import json

from attention_lens.evaluation.stored import load_detections
from attention_lens.cli import main


def test_analyze_writes_results_report_and_merges_stored_detections(tiny_bccd, tiny_weights, tmp_path, capsys):
    stored = tmp_path / "stored" / "test.json.gz"
    common = ["analyze", "--data", str(tiny_bccd), "--split", "test", "--weights", str(tiny_weights), "--imgsz", "128",
              "--rounds", "50", "--save-detections", str(stored)]
    assert main([*common, "--models", "ema", "baseline", "--out", str(tmp_path / "a")]) == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["reference"] == "baseline"  # the baseline, though named second
    assert set(results["against reference"]) == {"ema"}
    report = (tmp_path / "a" / "report.html").read_text()
    embedded = report.split("<script type='application/json' id='results'>", 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded) == results  # the element's raw text is the results, as a script reads it
    assert "reference: baseline" in capsys.readouterr().out
    first = load_detections(stored)[2]

    assert main([*common, "--models", "baseline", "coordatt", "--out", str(tmp_path / "b"), "--merge"]) == 0
    _, size, dets, scores = load_detections(stored)
    assert size == 128 and sorted(dets) == ["baseline", "coordatt", "ema"]  # ema kept from the first pass
    assert all((a == b).all() for a, b in zip(dets["ema"], first["ema"]))
    assert sorted(scores) == ["baseline", "coordatt", "ema"]


def test_a_checkpoint_file_is_loaded_and_named_as_the_app_names_an_upload(tiny_bccd, tiny_weights, tmp_path):
    """analyze goes through the app's model store: a catalogue name as the Evaluate tab loads it,
    a file as an upload (named by its run, base and attention)."""
    from attention_lens.modeling.catalog import ModelStore, read_manifest

    file = next(e.checkpoint for e in read_manifest(tiny_weights) if e.name == "ema")
    assert main(["analyze", "--data", str(tiny_bccd), "--split", "test", "--weights", str(tiny_weights), "--imgsz",
                 "128", "--rounds", "20", "--no-localisation", "--models", "baseline", str(file),
                 "--out", str(tmp_path / "c")]) == 0
    results = json.loads((tmp_path / "c" / "results.json").read_text())
    expected, _ = ModelStore(read_manifest(tiny_weights)).upload(file)  # the app's name for this upload
    assert results["reference"] == "baseline" and set(results["against reference"]) == {expected}
    assert "EMA" in expected and expected != "ema"
