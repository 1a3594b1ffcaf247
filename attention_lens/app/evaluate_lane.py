"""The Evaluate tab on the long-work lane: check a request here, run it in a child process
(``evaluate_job``), read back what it left. Plain functions; tests call them without a browser.

The request is checked in the server first (split, image size, rounds, confidence, model names,
files), so a bad one is refused at once; the work itself (reading the data set, the models'
forwards, the bootstrap) never runs in the server process.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import gradio as gr

from attention_lens.app.errors import UserError
from attention_lens.app.evaluate_handlers import (
    EvaluationView,
    KeptEvaluation,
    checked_request,
    error_types,
    evaluation_views,
    outcome_view,
)
from attention_lens.app.inputs import check_names, uploaded_path
from attention_lens.app.sessions import session_folder
from attention_lens.jobs.lane import DONE, Job, Lane, LaneFull
from attention_lens.modeling.catalog import ModelStore
from attention_lens.views.results import data_set_summary

JOB_MODULE = "attention_lens.app.evaluate_job"


def submit_evaluation(lane: Lane, store: ModelStore, weights: str | None, data: str | None, stored_dir,
                      upload: str | None, split, selected, uploads, reference, confidence, imgsz, rounds,
                      localisation: bool = True, session: str | None = None) -> Job:
    """Check the request and queue it on ``lane``; the job's files go to the session's folder."""
    split, imgsz, rounds, confidence = checked_request(split, imgsz, rounds, confidence)
    names = check_names(store, selected)
    if len(names) + len(uploads or []) < 2:
        raise UserError("Pick at least two models: a reference and one to compare with it.")
    spec = {"weights": weights, "data": data, "stored": str(stored_dir) if stored_dir else None, "upload": upload,
            "split": split, "models": names, "checkpoints": list(uploads or []),
            "reference": str(reference) if reference else None, "confidence": confidence, "image_size": imgsz,
            "rounds": rounds, "localisation": bool(localisation)}
    out = session_folder(session, "evaluate")
    spec["out"] = str(out)
    try:
        return lane.submit(str(session or "anonymous"), JOB_MODULE, spec, out)
    except LaneFull as e:
        raise UserError(str(e)) from None


def collect_evaluation(job: Job, data: str | None = None) -> EvaluationView:
    """The evaluation a finished job left, or UserError with its message.

    The image files the child read are taken only inside the job's folder (an uploaded zip is
    unpacked there) or the app's own ``--data``; anything else is treated as no pixels."""
    from attention_lens.evaluation.stored import load_detections
    from attention_lens.app.evaluate_handlers import REPORT, RESULTS
    from attention_lens.app.evaluate_job import DETECTIONS, IMAGES

    if job.state != DONE:
        raise UserError(job.message or "The evaluation did not finish.")
    out = job.out
    try:
        results = json.loads((out / RESULTS).read_text())
        split, imgsz, detections, _scores = load_detections(out / DETECTIONS)
        images = json.loads((out / IMAGES).read_text())
    except (OSError, ValueError):
        raise UserError("The evaluation's results could not be read; run it again.") from None
    roots = [out.resolve()] + ([_data_root(data)] if data else [])
    paths = [Path(p).resolve() for p in images if isinstance(p, str)]
    if len(paths) == len(split.images) and all(any(p.is_relative_to(r) for r in roots) and p.is_file()
                                               for p in paths):
        split.paths = paths
    kept = KeptEvaluation(split, detections, float(results["confidence"]), imgsz)
    return EvaluationView(results, [str(out / RESULTS), str(out / REPORT)], kept)


def _data_root(data: str) -> Path:
    path = Path(data).resolve()
    return path.parent if path.is_file() else path


def evaluate(lane: Lane, store: ModelStore, weights: str | None, data: str | None, stored_dir, upload: str | None,
             split, selected, uploads, reference, confidence, imgsz, rounds, localisation: bool = True,
             session: str | None = None):
    """``submit_evaluation`` then wait for the job and ``collect_evaluation``: the whole request,
    blocking (tests and scripts; the tab polls instead, so a cancel reaches the job)."""
    job = submit_evaluation(lane, store, weights, data, stored_dir, upload, split, selected, uploads, reference,
                            confidence, imgsz, rounds, localisation, session)
    job.wait()
    return collect_evaluation(job, data)


#: How often a waiting request looks at its job (queue place, progress).
POLL_S = 0.25
#: Requests that may wait for their jobs at once (the lane itself bounds the jobs).
JOB_WAITERS = 16


async def evaluate_request(lane: Lane, store: ModelStore, weights: str | None, data: str | None, stored_dir,
                           models: list[str] | None = None, checkpoints: list | None = None, dataset=None,
                           reference: str | None = None, split: str = "test", image_size: int = 320,
                           confidence: float = 0.25, rounds: int = 1000, localisation: bool = True,
                           request: gr.Request = None, progress=gr.Progress()):
    """Evaluate ``models`` (and uploaded ``checkpoints``) on a labelled split against ``reference``:
    what was evaluated (and the files the data set left out, with why), the metrics table, the Δ and
    found-objects charts, the images ranked by disagreement, the
    files, every number as JSON, and (``localisation``) where each model's maps fall.

    The work runs as a job in a child process (one per session, in arrival order): the page
    shows its place in the queue, then its progress; Stop ends the process."""
    files_ = [uploaded_path(f) for f in checkpoints or []]
    zip_path = uploaded_path(dataset) if dataset else None
    job = submit_evaluation(lane, store, weights, data, stored_dir, zip_path, split, models, files_, reference,
                            confidence, image_size, rounds, localisation, request.session_hash if request else None)
    try:
        while not job.finished:
            ahead = job.position()
            if ahead:
                progress(0.0, desc=f"Queued: {ahead} evaluation(s) ahead of yours")
            elif job.progress:
                done, total, text = job.progress
                progress((done, total), desc=text)
            else:
                progress(0.0, desc="Starting the evaluation")
            await asyncio.sleep(POLL_S)
    except asyncio.CancelledError:  # Stop, or the page went away: the job's process ends too
        job.cancel()
        raise
    results, paths, kept = collect_evaluation(job, data)
    table_, delta_, objects_, images_, located_table_, located_ = evaluation_views(results)
    return (data_set_summary(results), table_, delta_, objects_, images_, paths, results, located_table_,
            located_, error_types(results), outcome_view(results), kept)
