"""The Evaluate tab's work as a lane job: run in a child process (attention_lens/jobs), never in the
server. ``main`` reads the spec ``evaluate_lane.submit_evaluation`` wrote, runs ``run_evaluate``
and leaves its files in the job's folder: the results (JSON), the report (HTML), the detections
(numbers, for the filters and the image review) and the image files it read."""
from __future__ import annotations

import json
from pathlib import Path


def main(spec: dict, report) -> None:
    import torch

    from attention_lens.evaluation.stored import save_detections
    from attention_lens.app.evaluate_handlers import run_evaluate
    from attention_lens.app.errors import UserError
    from attention_lens.jobs import JobError
    from attention_lens.modeling.catalog import ModelStore, read_manifest

    torch.set_num_threads(1)  # the lane's share: the other core stays with the interactive views
    out = Path(spec["out"])
    store = ModelStore(read_manifest(spec["weights"]) if spec.get("weights") else [])

    def progress(pair, desc=""):
        report(pair[0], pair[1], desc)

    def paced(pair, desc=""):  # the bulk of the job (the pass, the numbers): the lane ends it early if it cannot finish
        report(pair[0], pair[1], desc, paced=True)

    try:
        results, _paths, held = run_evaluate(
            store, spec.get("data"), spec.get("stored"), spec.get("upload"), spec["split"], spec["models"],
            spec["checkpoints"], spec.get("reference"), spec["confidence"], spec["image_size"], spec["rounds"],
            progress=progress, localisation=spec["localisation"], out=out, pass_progress=paced)
    except UserError as e:
        raise JobError(str(e)) from None
    save_detections(out / DETECTIONS, held.split, held.imgsz, held.detections)
    (out / IMAGES).write_text(json.dumps([str(p) for p in held.split.paths]))


#: What a finished job leaves in its folder besides the JSON and HTML that run_evaluate writes.
DETECTIONS = "detections.json.gz"
IMAGES = "images.json"
