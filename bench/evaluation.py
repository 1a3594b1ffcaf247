"""Section 8 of the bench: a data-set evaluation against ultralytics' own ``val``.

The same shipped models (one per attention kind, and the baseline), the BCCD test split, 320 px,
timed alternately in one loop:

- ultralytics ``val`` of each model (its DetectionValidator: rect batches of 16, its mAP);
- the bare ONNX Runtime forwards of the pass, one image a run (issue 19's yardstick) and as the
  pass runs them (8 images a run where a graph takes batches);
- our evaluation pass: every model's detections over the split in one pass (each image read
  once), and the metrics from the COCO tools (what the Evaluate tab waits for before the bootstrap);
- the same pass with the localisation scores (gate capture, or LayerCAM for a model without
  attention, scored against the ground truth).

The paired bootstrap of the Δs is timed on its own: ultralytics has nothing like it; so is the
error analysis (TIDE's types, their dAP at 0.5 and 0.50:0.95, and its bootstrap series), uncached,
against the whole Evaluate job it is part of (target: it adds <= 50%).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BCCD = Path(os.environ.get("ATTENTION_LENS_BCCD", ROOT.parent / "shared" / "datasets" / "bccd")) / "BCCD"


def _one_per_kind(store) -> list[str]:
    seen, names = set(), []
    for n in store.names:
        kind = store.entries[n].attention
        if kind not in seen:
            seen.add(kind)
            names.append(n)
    return names


def evaluation_cost(store, quick: bool) -> list[dict]:
    from bench.backends import backend, bare_forwards, ort_sessions
    from bench.run import alternate
    from attention_lens.evaluation.report import evaluate_detections
    from attention_lens.evaluation.predict import PASS_BATCH, predict_models
    from attention_lens.evaluation.coco import coco_eval, metrics_of
    from attention_lens.analysis.images import load_image
    from attention_lens.runtime.letterbox import input_key, val_input
    from attention_lens.data.convert import convert_voc
    from attention_lens.data.datasets import read_split
    from attention_lens.experiments.evaluate import validate
    from attention_lens.torch_thread import run_on_torch_thread

    if not (BCCD / "Annotations").is_dir():
        return []
    names = _one_per_kind(store)
    models = {n: run_on_torch_thread(store.get, n) for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        convert_voc(BCCD, Path(tmp) / "bccd")
        data = Path(tmp) / "bccd" / "data.yaml"
        split = read_split(data, "test")

        def ultralytics_val():
            for m in models.values():
                validate(m, data, "test", 320)

        def ours(localise: bool, runtime: str):
            def run():
                with backend(runtime):
                    for dets, _ in predict_models(models, split, 320, localise=localise).values():
                        metrics_of(coco_eval(split, dets), split)
            return run

        # The bare ONNX Runtime forwards the pass needs, on the inputs it feeds (the validator's
        # letterbox, every image prepared beforehand): what issue 19 holds the pass to, as it holds
        # the views.
        sessions = ort_sessions(models)
        kinds = {input_key(m): m for m in models.values()}
        boxed = run_on_torch_thread(lambda: {key: [val_input(m, load_image(p), 320)[0] for p in split.paths]
                                             for key, m in kinds.items()})

        def raw_ort():
            bare_forwards(sessions, models, {n: boxed[input_key(m)] for n, m in models.items()})

        # The same forwards as the pass runs them: PASS_BATCH images a run where a graph takes
        # batches (all of BCCD's images letterbox to one shape).
        batches = {key: [torch.cat(xs[k:k + PASS_BATCH]) for k in range(0, len(xs), PASS_BATCH)]
                   for key, xs in boxed.items()}

        def raw_ort_batched():
            bare_forwards(sessions, models, {n: batches[input_key(m)] if sessions[n] and sessions[n].batched
                                             else boxed[input_key(m)] for n, m in models.items()})

        runs = 1 if quick else 3
        timed = alternate([lambda: run_on_torch_thread(ultralytics_val), lambda: run_on_torch_thread(raw_ort),
                           lambda: run_on_torch_thread(raw_ort_batched)]
                          + [lambda loc=loc, rt=rt: run_on_torch_thread(ours(loc, rt))
                             for rt in ("pytorch", "onnxruntime") for loc in (False, True)], runs, warmup=1)
        t_val, t_raw, t_raw_b, t_ours, t_loc, t_ours_ort, t_loc_ort = timed
        dets = {n: d for n, (d, _) in run_on_torch_thread(predict_models, models, split, 320).items()}
        (t_boot,) = alternate([lambda: evaluate_detections(split, dets, names[0], rounds=1000)], 1, warmup=0)

        def error_analysis():  # what evaluate_detections adds for the error types, without its caches
            from attention_lens.evaluation.error_deltas import dap_series
            from attention_lens.evaluation.error_types import classify, dap_50_95

            for d in dets.values():
                c = classify(split, d)
                dap_50_95(split, d, at_50=c)
                dap_series(c, 1000)

        (t_errors,) = alternate([error_analysis], 1, warmup=0)
    job = t_ours_ort + t_boot  # the Evaluate job: the pass on ONNX Runtime with metrics, then the rest
    return [{"models": len(names), "images": len(split.images), "ultralytics val s": t_val / 1000,
             "ours s": t_ours / 1000, "ours / val": t_ours / t_val, "with localisation s": t_loc / 1000,
             "localisation adds": t_loc / t_ours - 1, "ours on ONNX Runtime s": t_ours_ort / 1000,
             "ORT / val": t_ours_ort / t_val, "raw ORT forwards s": t_raw / 1000,
             "ORT / raw ORT (<= 1.2)": t_ours_ort / t_raw, "raw ORT forwards in batches s": t_raw_b / 1000,
             "ORT / raw ORT in batches": t_ours_ort / t_raw_b, "ORT / ours on PyTorch (<= 0.6)": t_ours_ort / t_ours,
             "ORT with localisation s": t_loc_ort / 1000,
             "bootstrap 1000 rounds s": t_boot / 1000, "error analysis s": t_errors / 1000,
             "error analysis / the rest of the job (<= 0.5)": t_errors / (job - t_errors)}]
