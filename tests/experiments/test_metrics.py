"""The metrics table: numbers equal the files; seeds, Δ and noise flags computed right."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
import torch
from run_dirs import fake_run, write_run

from attention_lens.experiments.metrics import (
    collect_runs,
    display_table,
    metrics_table,
    published_table,
)


def test_real_runs_table_equals_the_files(tiny_weights):
    runs, skipped = collect_runs([tiny_weights])
    assert not skipped and len(runs) == 3
    df = metrics_table(runs).set_index("attention")
    for run in runs:
        s = json.loads((run.path / "summary.json").read_text())
        row = df.loc[s["variant"]["attention"] or "none"]
        for split in ("val", "test"):
            for m in ("P", "R", "mAP50", "mAP50-95"):
                assert row[f"{split} {m}"] == s["metrics"][split][m]
        assert row["params"] == s["params"] and row["GFLOPs (torch)"] == s["gflops"]["at_imgsz"]["torch"]
        # (the flag may add that a timing taken beside this test's other work was left out)
        assert row["seeds"] == 1 and (row["flag"].startswith("single baseline run: noise unknown")
                                      or row.name == "none")


def test_seeds_mean_std_delta_and_noise_flags(tmp_path):
    base = [0.50, 0.52, 0.48]
    for i, v in enumerate(base):
        fake_run(tmp_path, f"base-s{i}", None, v, seed=i)
    fake_run(tmp_path, "ema-s0", "EMA", 0.51)  # inside 2 sigma
    fake_run(tmp_path, "se-s0", "SE", 0.60)  # far outside, single run
    for i, v in enumerate([0.44, 0.45]):
        fake_run(tmp_path, f"eca-s{i}", "ECA", v, seed=i)
    df = metrics_table(collect_runs([tmp_path])[0]).set_index("attention")
    sd = statistics.stdev(base)
    assert df.loc["none", "test mAP50-95"] == pytest.approx(0.50)
    assert df.loc["none", "test mAP50-95 std"] == pytest.approx(sd)
    assert df.loc["ECA", "test mAP50-95"] == pytest.approx(0.445)
    assert df.loc["ECA", "test mAP50-95 std"] == pytest.approx(statistics.stdev([0.44, 0.45]))
    assert df.loc["EMA", "Δ test mAP50-95"] == pytest.approx(0.01) and df.loc["EMA", "flag"] == "within noise"
    assert df.loc["SE", "flag"] == "beyond noise (single run)" and math.isnan(df.loc["SE", "test mAP50-95 std"])
    assert df.loc["ECA", "flag"] == "beyond noise" and df.loc["ECA", "Δ test mAP50-95"] == pytest.approx(-0.055)
    shown = display_table(metrics_table(collect_runs([tmp_path])[0])).set_index("attention")
    assert shown.loc["none", "test mAP50-95"] == f"0.500 ± {sd:.3f}" and shown.loc["SE", "test mAP50-95"] == "0.600"
    # Each flag shows the band it was judged against (issue 35): 2 x the baseline seeds' std.
    assert shown.loc["EMA", "noise band"] == f"±{2 * sd:.3f} (3 baseline seeds)" and shown.loc["none", "noise band"] == "—"


def test_per_run_a_baseline_seed_shows_its_distance_from_the_seeds_mean(tmp_path):
    """Issue 35: every baseline seed showed Δ +0.000 in the per-run view."""
    base = [0.50, 0.53, 0.47]
    for i, v in enumerate(base):
        fake_run(tmp_path, f"base-s{i}", None, v, seed=i)
    fake_run(tmp_path, "ema-s0", "EMA", 0.51)
    df = metrics_table(collect_runs([tmp_path])[0], per_run=True).set_index("model")
    mean = statistics.mean(base)
    for i, v in enumerate(base):
        assert df.loc[f"base-s{i}", "Δ test mAP50-95"] == pytest.approx(v - mean)
    assert df.loc["ema-s0", "Δ test mAP50-95"] == pytest.approx(0.51 - mean)
    aggregated = metrics_table(collect_runs([tmp_path])[0]).set_index("attention")
    assert aggregated.loc["none", "Δ test mAP50-95"] == pytest.approx(0.0)  # the mean against itself


def test_single_seed_baseline_means_noise_unknown(tmp_path):
    fake_run(tmp_path, "base", None, 0.5)
    fake_run(tmp_path, "ema", "EMA", 0.9)
    df = metrics_table(collect_runs([tmp_path])[0]).set_index("attention")
    assert df.loc["EMA", "flag"] == "single baseline run: noise unknown"


def test_malformed_runs_are_skipped_with_reasons(tmp_path):
    fake_run(tmp_path, "good", None, 0.5)
    write_run(tmp_path, "empty", {"results.csv": ""})
    write_run(tmp_path, "nosummary", {"results.csv": "epoch,x\n1,2\n"})
    write_run(tmp_path, "padded", {"results.csv": "       epoch,   metrics/mAP50(B)\n1,0.3\n"})
    write_run(tmp_path, "badcell", {"results.csv": "epoch,metrics/mAP50(B)\n1,n/a?\n",
                                    "summary.json": '{"metrics": {}}'})
    runs, skipped = collect_runs([tmp_path])
    assert [r.name for r in runs] == ["good"]
    reasons = {p.split("/")[-1]: why for p, why in skipped}
    assert set(reasons) == {"empty", "nosummary", "padded", "badcell"}
    assert "no summary.json" in reasons["nosummary"] and "no summary.json" in reasons["padded"]
    assert "non-numeric" in reasons["badcell"]
    assert "results.csv unreadable" in reasons["empty"]


def zipped_run(run, path):
    """A zip of a run directory, as a user would make it: the run's folder at the top."""
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for f in run.iterdir():
            z.write(f, f"{run.name}/{f.name}")
    return path


def test_metrics_tab_extracts_an_upload_once_however_often_the_pickers_change(tmp_path, monkeypatch):
    import tempfile

    from attention_lens.app import errors, metrics_handlers
    from attention_lens.data import archives

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    calls = []
    real = archives.extract_zip
    monkeypatch.setattr(archives, "extract_zip", lambda *a: calls.append(a) or real(*a))
    upload = zipped_run(fake_run(tmp_path / "src", "ema", "EMA", 0.5), tmp_path / "run.zip")
    for column in ("metrics/mAP50(B)", "metrics/mAP50-95(B)", "metrics/mAP50(B)"):
        curves, per_class = metrics_handlers.metrics_charts([], str(upload), ["ema"], column)
        assert curves is not None and per_class is not None
    assert len(calls) == 1 and len(list((tmp_path / "tmp").iterdir())) == 1

    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(errors.UserError, match="Run zip refused: not a zip file"):
        metrics_handlers.metrics_charts([], str(broken), [], None)
    assert len(list((tmp_path / "tmp").iterdir())) == 1  # the failed extraction left nothing behind


def test_the_curves_start_with_the_preferred_runs_and_an_uploads_not_every_run(tmp_path, monkeypatch):
    import tempfile

    from attention_lens.app import metrics_handlers

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    for name, attention in (("base-s0", None), ("base-s1", None), ("ema", "EMA"), ("cbam", "CBAM"), ("se", "SE")):
        fake_run(tmp_path / "zoo", name, attention, 0.5)
    zoo = [str(tmp_path / "zoo")]
    preferred = ["base-s0", "ema", "gone"]  # a preferred name without a run is ignored
    picks, _column = metrics_handlers.metrics_pickers(zoo, None, None, None, preferred)
    assert sorted(picks["value"]) == ["base-s0", "ema"] and len(picks["choices"]) == 5
    curves, _per_class = metrics_handlers.metrics_charts(zoo, None, [], "metrics/mAP50-95(B)", preferred)
    assert sorted(t.name for t in curves.data) == ["base-s0", "ema"]
    # An uploaded run joins the default; a user's own pick wins; no preference at all: every run.
    upload = zipped_run(fake_run(tmp_path / "src", "mine", "EMA", 0.6), tmp_path / "run.zip")
    assert sorted(metrics_handlers.metrics_pickers(zoo, str(upload), None, None, preferred)[0]["value"]) == \
        ["base-s0", "ema", "mine"]
    assert metrics_handlers.metrics_pickers(zoo, None, ["se"], None, preferred)[0]["value"] == ["se"]
    assert len(metrics_handlers.metrics_pickers(zoo, None, None, None)[0]["value"]) == 5


def test_published_numbers_stay_apart_and_cite_their_source():
    pub = published_table()
    assert (pub["source"].str.len() > 0).all()
    ema = pub[(pub.attention == "EMA") & (pub.metric == "mAP50-95")].iloc[0]
    assert (ema["baseline"], ema["with attention"]) == (37.2, 38.4)


def test_metrics_tab_opens_on_the_map_curve_and_keeps_a_users_pick(tiny_weights):
    from attention_lens.app.metrics_handlers import DEFAULT_CURVE, metrics_pickers, metrics_view

    first = metrics_view([str(tiny_weights)], False, None, None, None)
    _runs, column = metrics_pickers([str(tiny_weights)], None, None, None)
    assert column["value"] == DEFAULT_CURVE and DEFAULT_CURVE in column["choices"]
    curves = first[5]
    assert curves.layout.yaxis.title.text == DEFAULT_CURVE
    assert [t.name for t in curves.data] and all(t.y is not None for t in curves.data)
    other = next(c for c in column["choices"] if c != DEFAULT_CURVE)
    assert metrics_pickers([str(tiny_weights)], None, None, other)[1]["value"] == other
    assert metrics_view([str(tiny_weights)], False, None, None, other)[5].layout.yaxis.title.text == other


def test_hostile_summaries_are_skipped_and_the_shipped_runs_still_show(tmp_path):
    """Each of these took the whole tab down once; now each is listed as skipped, with its reason."""
    from pathlib import Path

    from attention_lens.app.metrics_handlers import metrics_view

    bad = tmp_path / "bad"
    bad.mkdir()
    deep = '{"a": ' * 100_000 + "1" + "}" * 100_000
    cases = {"list": ("[1, 2]", "not an object"), "digits": ('{"params": ' + "9" * 5000 + "}", "5000-digit"),
             "deep": (deep, "nests too deeply"), "variant": ('{"variant": [1], "metrics": {}}', "'variant' is a list"),
             "types": ('{"metrics": {"test": {"per_class": [1]}}}', "per_class"),
             "<img src=x onerror=alert(1)>": ('{"metrics": 1}', "'metrics' is a int")}
    for name, (text, _) in cases.items():
        write_run(bad, name, {"results.csv": "epoch,x\n1,2\n", "summary.json": text})
    latin = write_run(bad, "latin", {"results.csv": "epoch,x\n1,2\n"})
    (latin / "summary.json").write_bytes('{"note": "caf\xe9"}'.encode("latin-1"))
    cases["latin"] = (None, "not UTF-8")
    long_csv = write_run(bad, "long", {"summary.json": json.dumps({"metrics": {"test": {"mAP50-95": 0.1}}})})
    (long_csv / "results.csv").write_text("epoch,metrics/mAP50-95(B)\n" + "".join(f"{i},0.1\n" for i in range(20_000)))

    runs, skipped = collect_runs([Path("weights"), bad])
    reasons = dict(skipped)
    for name, (_, why) in cases.items():
        assert why in reasons[name], name
    shipped = {p.name for p in Path("weights").iterdir() if (p / "summary.json").is_file()}
    assert shipped | {"long"} == {r.name for r in runs}
    assert len(next(r for r in runs if r.name == "long").results) == 5000  # capped rows
    assert all(str(tmp_path) not in f"{p} {why}" for p, why in skipped)

    table, _csv, notes, *_rest, curves, _per_class = metrics_view(["weights", str(bad)], False, None, ["long"],
                                                                   "metrics/mAP50-95(B)")
    variants = {tuple(json.loads((Path("weights") / n / "summary.json").read_text())["variant"].get(k)
                      for k in ("base", "attention", "placement")) for n in shipped}
    assert len(table) == len(variants) + 1  # every shipped variant (seeds pooled), and the "long" run
    assert "<img" not in notes and "&lt;img src=x onerror=alert\\(1\\)&gt;" in notes
    assert str(tmp_path) not in notes
    assert len(curves.data[0].x) <= 1000  # the chart gets a thinned curve, not 5000 points


def test_runs_of_another_data_set_are_never_pooled_or_compared_across(tmp_path):
    """The reported case: an EMA run trained elsewhere was pooled into the shipped EMA variant,
    and a second data set's baseline widened the noise band until every verdict read "within noise"."""
    base = [0.50, 0.52, 0.48]
    for i, v in enumerate(base):
        fake_run(tmp_path, f"base-s{i}", None, v, seed=i)
    fake_run(tmp_path, "ema-s0", "EMA", 0.58)  # 0.08 above the mean: beyond 2 x 0.02
    fake_run(tmp_path, "other-ema", "EMA", 0.05, dataset="kangaroos")
    fake_run(tmp_path, "other-base-s0", None, 0.9, dataset="kangaroos")
    fake_run(tmp_path, "other-base-s1", None, 0.1, seed=1, dataset="kangaroos")
    df = metrics_table(collect_runs([tmp_path])[0])
    assert len(df) == 4 and set(df["seeds"]) == {1, 2, 3}
    ours = df[(df["data set"].str.startswith("bccd")) & (df["attention"] == "EMA")].iloc[0]
    assert ours["test mAP50-95"] == pytest.approx(0.58) and ours["seeds"] == 1
    assert ours["baseline std"] == pytest.approx(statistics.stdev(base))
    assert ours["flag"] == "beyond noise (single run)"
    theirs = df[(df["data set"].str.startswith("kangaroos")) & (df["attention"] == "EMA")].iloc[0]
    assert theirs["Δ test mAP50-95"] == pytest.approx(0.05 - 0.5) and theirs["flag"] == "within noise"


def test_a_variant_is_compared_with_the_baseline_of_its_own_base_and_setting(tmp_path):
    for i, v in enumerate([0.50, 0.52]):
        fake_run(tmp_path, f"v8-s{i}", None, v, seed=i)
    fake_run(tmp_path, "v5-ema", "EMA", 0.45, base="yolov5n")
    df = metrics_table(collect_runs([tmp_path])[0]).set_index("model")
    # named as ultralytics names the v5u layout it builds
    assert df.loc["yolov5nu + EMA @ neck_outputs", "flag"] == "no baseline on this data set and setting"
    assert math.isnan(df.loc["yolov5nu + EMA @ neck_outputs", "Δ test mAP50-95"])


def test_a_seed_given_twice_is_counted_once_and_flagged(tmp_path):
    for i, v in enumerate([0.50, 0.52, 0.48]):
        fake_run(tmp_path, f"base-s{i}", None, v, seed=i)
    fake_run(tmp_path, "ema-a", "EMA", 0.50, seed=0)
    fake_run(tmp_path, "ema-b", "EMA", 0.70, seed=0)  # the same seed again (a copied folder, say)
    fake_run(tmp_path, "ema-c", "EMA", 0.54, seed=1)
    row = metrics_table(collect_runs([tmp_path])[0]).set_index("attention").loc["EMA"]
    assert row["seeds"] == 2 and row["test mAP50-95"] == pytest.approx(0.52)
    assert "seed 0 given twice (ema-a, ema-b): counted once" in row["flag"]


def test_the_verdict_sits_next_to_the_model_name(tmp_path):
    fake_run(tmp_path, "base", None, 0.5)
    shown = display_table(metrics_table(collect_runs([tmp_path])[0]))
    assert list(shown.columns[:7]) == ["model", "data set", "test mAP50-95", "Δ test mAP50-95", "flag", "noise band",
                                       "seeds"]


def test_a_plain_ultralytics_run_shows_its_best_val_epoch_and_its_checkpoints_costs(tiny_weights, tmp_path):
    """No summary.json: metrics from results.csv (the row best.pt was chosen by), params and GFLOPs
    from best.pt, checked against what the training-time summary recorded for the same run."""
    import shutil

    import pandas as pd

    src = tiny_weights / "ema"
    plain = tmp_path / "runs" / "detect" / "train3"
    (plain / "weights").mkdir(parents=True)
    shutil.copy2(src / "results.csv", plain / "results.csv")
    shutil.copy2(src / "best.pt", plain / "weights" / "best.pt")
    summary = json.loads((src / "summary.json").read_text())
    (plain / "args.yaml").write_text(f"model: yolov8n-ema.yaml\ndata: /somewhere/blood.yaml\nimgsz: {summary['imgsz']}\n")
    runs, skipped = collect_runs([tmp_path / "runs"])
    assert not skipped and [r.name for r in runs] == ["train3"]
    row = metrics_table(runs).iloc[0]
    csv = pd.read_csv(plain / "results.csv", skipinitialspace=True)
    fitness = 0.1 * csv["metrics/mAP50(B)"] + 0.9 * csv["metrics/mAP50-95(B)"]
    assert row["val mAP50-95"] == pytest.approx(csv.loc[fitness.idxmax(), "metrics/mAP50-95(B)"])
    assert row["params"] == summary["params"]
    assert row["GFLOPs (torch)"] == pytest.approx(summary["gflops"]["at_imgsz"]["torch"])
    assert math.isnan(row["test mAP50-95"]) and "not compared" in row["flag"]
    assert row["data set"] == "blood (no fingerprint)" and row["model"] == "yolov8n-ema.yaml (no summary.json)"


def test_rows_are_grouped_by_base_then_placement_with_the_baseline_first(tmp_path):
    import json as _json

    made = [("v8-ema-neck", "yolov8n", "EMA", "neck_outputs"), ("v5-base", "yolov5n", None, None),
            ("v8-cbam-bb", "yolov8n", "CBAM", "backbone_outputs"), ("v8-base", "yolov8n", None, None),
            ("v8-cbam-neck", "yolov8n", "CBAM", "neck_outputs"), ("v8-ema-bb", "yolov8n", "EMA", "backbone_outputs"),
            ("v11-base", "yolo11n", None, None)]
    for name, base, attention, placement in made:
        d = fake_run(tmp_path, name, attention, 0.5, base=base)
        summary = _json.loads((d / "summary.json").read_text())
        summary["variant"]["placement"] = placement
        (d / "summary.json").write_text(_json.dumps(summary))
    df = metrics_table(collect_runs([tmp_path])[0])
    # Bases in the pickers' order (yolov8n, yolov5nu, yolo11n), not alphabetical.
    assert list(df["model"]) == ["yolov8n baseline",
                                 "yolov8n + CBAM @ backbone_outputs", "yolov8n + EMA @ backbone_outputs",
                                 "yolov8n + CBAM @ neck_outputs", "yolov8n + EMA @ neck_outputs",
                                 "yolov5nu baseline", "yolo11n baseline"]


def test_csp_positions_are_different_variants(tmp_path):
    """EMA inside C3 at the main branch and at the concat (the tutorials' C3_EMA1 and C3_EMA3) are
    two variants: pooling them would average two different models as if they were seeds."""
    import json as _json

    fake_run(tmp_path, "base", None, 0.5, base="yolov5n")
    for name, position, value, seed in (("main-s0", "main", 0.50, 0), ("concat-s0", "concat", 0.56, 0)):
        d = fake_run(tmp_path, name, "EMA", value, seed=seed, base="yolov5n")
        summary = _json.loads((d / "summary.json").read_text())
        summary["variant"].update(placement="in_csp", params={"position": position})
        (d / "summary.json").write_text(_json.dumps(summary))
    df = metrics_table(collect_runs([tmp_path])[0]).set_index("model")
    assert df.loc["yolov5nu + EMA @ in_csp (main)", "test mAP50-95"] == pytest.approx(0.50)
    assert df.loc["yolov5nu + EMA @ in_csp (concat)", "test mAP50-95"] == pytest.approx(0.56)
    assert (df["seeds"] == 1).all()


def test_an_uploaded_zips_checkpoints_are_costed_in_a_lane_job_never_built_in_the_server(tmp_path, monkeypatch):
    """Issue 31, finding 5: /metrics built and ran uploaded runs' checkpoints in the server."""
    import shutil
    import zipfile

    from attention_lens.app import metrics_handlers, sessions
    from attention_lens.cache import BoundedCache
    from attention_lens.experiments import runs as runs_module
    from attention_lens.jobs.lane import Lane
    from attention_lens.modeling import load

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "ultralytics" / "u8-plain-best.pt"
    run = tmp_path / "train7"
    (run / "weights").mkdir(parents=True)
    shutil.copy2(fixture, run / "weights" / "best.pt")
    (run / "results.csv").write_text("epoch,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),"
                                     "metrics/mAP50-95(B)\n1,0.5,0.4,0.3,0.2\n")
    (run / "args.yaml").write_text("model: yolov8n.yaml\ndata: blood.yaml\nimgsz: 160\n")
    upload = tmp_path / "run.zip"
    with zipfile.ZipFile(upload, "w") as z:
        for f in run.rglob("*"):
            z.write(f, f.relative_to(tmp_path))
    monkeypatch.setattr(sessions, "SESSIONS_ROOT", tmp_path / "sessions")
    monkeypatch.setattr(load, "load_model", lambda *a: pytest.fail("a checkpoint was built in the server"))
    monkeypatch.setattr(runs_module, "_COSTS", BoundedCache(8))
    table, *_ = metrics_handlers.metrics_view([], True, str(upload), None, None, "s", None, Lane())
    row = table.iloc[0]
    # Independently: the same file's parameters, counted from its own tensors here.
    expected = sum(p.numel() for p in torch.load(fixture, weights_only=False)["model"].parameters())
    assert row["params (M)"] == pytest.approx(expected / 1e6, abs=0.0005)
    assert row["GFLOPs (torch)"] > 0 and row["GFLOPs (thop)"] > 0


def test_a_plain_ultralytics_run_evaluated_later_is_compared_with_its_base_and_yours_come_first(tmp_path):
    """Issue 34, item 4: a plain yolo11n run (its summary written by ``evaluate``, which did not
    say the base) sat in a group of its own; the user's runs were listed below the shipped ones."""
    import json

    shipped, mine = tmp_path / "shipped", tmp_path / "mine"
    for i, v in enumerate([0.50, 0.52]):
        fake_run(shipped, f"zoo-v8-s{i}", None, v, seed=i)
    plain = fake_run(mine, "plain-yolo11n", None, 0.40, base="yolo11n")
    summary = json.loads((plain / "summary.json").read_text())
    summary["variant"] = {}  # as an earlier evaluate wrote it
    (plain / "summary.json").write_text(json.dumps(summary))
    (plain / "args.yaml").write_text("model: yolo11n.yaml\nepochs: 60\n")
    fake_run(mine, "cbam-s0", "CBAM", 0.43, base="yolo11n")
    df = metrics_table(collect_runs([shipped, mine], yours=[mine])[0])
    assert list(df["model"])[:2] == ["yolo11n baseline", "yolo11n + CBAM @ neck_outputs"]
    cbam = df.set_index("model").loc["yolo11n + CBAM @ neck_outputs"]
    assert cbam["Δ test mAP50-95"] == pytest.approx(0.03) and cbam["baseline seeds"] == 1


def test_an_unsteady_latency_is_left_out_and_said_so(tmp_path):
    """Issue 34, item 6: a latency timed beside other work (median 1,490 ms, IQR 1,863 ms) was charted."""
    import json

    fake_run(tmp_path, "base", None, 0.5)
    busy = fake_run(tmp_path, "cbam", "CBAM", 0.5)
    summary = json.loads((busy / "summary.json").read_text())
    summary["latency_cpu"]["at_imgsz"] = {"median_ms": 1490.0, "iqr_ms": 1863.0}
    (busy / "summary.json").write_text(json.dumps(summary))
    df = metrics_table(collect_runs([tmp_path])[0]).set_index("attention")
    assert df.loc["none", "CPU ms (imgsz)"] == pytest.approx(20.0)
    assert math.isnan(df.loc["CBAM", "CPU ms (imgsz)"])
    assert "latency of cbam left out: unsteady timing (median 1490 ms, IQR 1863 ms" in df.loc["CBAM", "flag"]


def test_a_summary_from_an_earlier_validator_setting_says_so(tmp_path):
    """Issue 34, item 5: summaries validated square were up to 0.01 off ``yolo val``."""
    import json

    fake_run(tmp_path, "base", None, 0.5)
    old = fake_run(tmp_path, "ema-old", "EMA", 0.52)
    summary = json.loads((old / "summary.json").read_text())
    for m in summary["metrics"].values():
        del m["method"]
    (old / "summary.json").write_text(json.dumps(summary))
    df = metrics_table(collect_runs([tmp_path])[0]).set_index("attention")
    assert "ema-old: validated by an earlier version" in df.loc["EMA", "flag"]
    assert "earlier version" not in df.loc["none", "flag"]
