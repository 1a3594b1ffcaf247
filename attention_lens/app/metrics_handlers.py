"""Metrics tab handlers: stored runs (the server's and an uploaded zip's) into the runs table,
its CSV, the Pareto charts, training curves and per-class AP. Plain functions from widget values
to widget values; tests call them without a browser. An uploaded zip's checkpoints are costed by
a job on the lane (attention_lens/jobs), never built in the server.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from attention_lens.app.errors import UserError
from attention_lens.app.inputs import uploaded_path
from attention_lens.app.sessions import session_folder


def extracted_zip(zip_path) -> Path:
    """The folder an uploaded run zip unpacks into (unpacked once per upload)."""
    from attention_lens.data.archives import extracted

    try:
        return extracted(zip_path, prefix="attention-lens-run-")
    except ValueError as e:
        raise UserError(f"Run zip refused: {e}") from None


def _runs_for(sources: list[str], zip_path, lane=None, session: str | None = None) -> tuple[list, list, Path | None]:
    """(runs, skipped, the folder the uploaded zip unpacked into) for the Metrics tab.

    The checkpoints of an uploaded zip's plain runs are costed (params, GFLOPs) by a job on
    ``lane``, never built in this process; without a lane (tests, scripts) they are built here.
    ``sources``: the shipped runs first, then the user's (``--runs``), which are listed first."""
    from attention_lens.experiments.metrics import collect_runs

    uploaded = extracted_zip(zip_path) if zip_path else None
    if uploaded and lane is not None:
        runs, skipped = collect_runs(list(sources), uploaded=[str(uploaded)], yours=list(sources)[1:])
        _cost_in_lane(lane, [r for r in runs if not r.may_build], session)
    else:
        runs, skipped = collect_runs(list(sources), uploaded=[str(uploaded)] if uploaded else [],
                                     yours=list(sources)[1:])
    return runs, skipped, uploaded


def _cost_in_lane(lane, runs: list, session: str | None) -> None:
    """Params and GFLOPs of the runs' checkpoints not costed yet, from a lane job (waited for:
    the job is bounded by the lane's limits). A busy lane or a failed job leaves them blank."""
    import json

    from attention_lens.experiments.cost_job import COSTS
    from attention_lens.experiments.runs import pending_costs, remember_costs
    from attention_lens.jobs.lane import LaneFull

    pending = pending_costs(runs)
    if not pending:
        return
    out = session_folder(session, "costs")
    try:
        job = lane.submit(str(session or "anonymous"), "attention_lens.experiments.cost_job", {"checkpoints": pending,
                                                                                          "out": str(out)}, out)
    except LaneFull:
        return
    job.wait()
    try:
        costs = json.loads((out / COSTS).read_text())
    except (OSError, ValueError):
        costs = {}
    for item in pending:  # a file the job could not cost is remembered as such, not built here later
        found = costs.get(item["path"])
        remember_costs(item["path"], item["imgsz"], found if isinstance(found, dict) else {})


def metrics_charts(sources: list[str], zip_path, picked, column, preferred: list[str] | None = None, lane=None,
                   session: str | None = None):
    """(curves, per-class) figures for the picked runs (none picked: ``_picks``' default) and
    results.csv column."""
    from attention_lens.views.charts import curves_figure, per_class_figure

    runs, _, uploaded = _runs_for(sources, zip_path, lane, session)
    picked, _column = _picks(runs, picked, column, preferred, uploaded)
    chosen = [r for r in runs if r.name in picked]
    return (curves_figure(chosen, column) if column else None), per_class_figure(chosen)


def md_escape(text: str, limit: int = 200) -> str:
    """Text from a file (a run's folder name, a reason) as literal Markdown: no HTML, no markup."""
    import html
    import re

    text = html.escape(str(text)[:limit], quote=True)
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~>])", r"\\\1", text)


#: The curve the Metrics tab shows first: the metric best.pt is mostly chosen on.
DEFAULT_CURVE = "metrics/mAP50-95(B)"


def metrics_view(sources: list[str], per_run: bool, zip_path, picked, column, session: str | None = None,
                 preferred: list[str] | None = None, lane=None):
    """(table, csv path, skipped notes, 2 Pareto figures, curves, per-class) for the stored runs.

    ``picked``/``column`` choose the runs and results.csv column the two charts draw; unknown
    or missing picks fall back to ``_picks``' default and the default column (``metrics_pickers``
    says which).
    """
    from attention_lens.views.charts import curves_figure, pareto_figure, per_class_figure
    from attention_lens.experiments.metrics import display_table, metrics_table

    runs, skipped, uploaded = _runs_for(sources, zip_path, lane, session)
    df = metrics_table(runs, per_run=bool(per_run))
    shown = display_table(df)
    csv_path = str(session_folder(session, "metrics") / "attention-lens-metrics.csv")
    shown.to_csv(csv_path, index=False)
    notes = ("" if not skipped else "**Skipped runs:**\n" + "\n".join(f"- {md_escape(p)}: {md_escape(why)}"
                                                                  for p, why in skipped))
    picked, column = _picks(runs, picked, column, preferred, uploaded)
    chosen = [r for r in runs if r.name in picked]
    return (shown, csv_path, notes, pareto_figure(df, "GFLOPs (thop)"), pareto_figure(df, "CPU ms (imgsz)"),
            curves_figure(chosen, column) if column else None, per_class_figure(chosen))


def _picks(runs: list, picked, column, preferred: list[str] | None = None,
           uploaded: Path | None = None) -> tuple[list[str], str | None]:
    """The runs and column the curves and per-class charts draw. Without valid picks: the
    ``preferred`` runs (the app passes the model pickers' default selection, so 38 zoo runs do not
    start as 38 curves) plus every run from an uploaded zip; with no preferred run present, all."""
    from attention_lens.views.charts import curve_columns

    names = [r.name for r in runs]
    default_runs = [r.name for r in runs if r.name in (preferred or ()) or (uploaded and uploaded in r.path.parents)]
    picked = [p for p in (picked or []) if p in names] or default_runs or names
    columns = curve_columns(runs)
    default = DEFAULT_CURVE if DEFAULT_CURVE in columns else (columns[0] if columns else None)
    return picked, (column if column in columns else default)


def metrics_pickers(sources: list[str], zip_path, picked, column, preferred: list[str] | None = None, lane=None,
                    session: str | None = None):
    """UI only: the run and column pickers' choices and values after the runs were (re)read."""
    import gradio as gr

    from attention_lens.views.charts import curve_columns

    runs, _, uploaded = _runs_for(sources, zip_path, lane, session)
    picked, column = _picks(runs, picked, column, preferred, uploaded)
    return gr.update(choices=[r.name for r in runs], value=picked), gr.update(choices=curve_columns(runs), value=column)


def metrics_page(sources: list[str], preferred: list[str] | None, lane, per_run: bool = False, run_zip=None,
                 runs: list[str] | None = None, column: str | None = None, request: gr.Request = None):
    """The runs table (per variant, or per run), its CSV, skipped runs, and the charts."""
    return metrics_view(sources, per_run, uploaded_path(run_zip), runs, column,
                        request.session_hash if request else None, preferred, lane)


def pickers_after_load(sources: list[str], preferred: list[str] | None, lane, run_zip=None,
                       runs: list[str] | None = None, column: str | None = None, request: gr.Request = None):
    """The curves' run and column pickers for the runs just loaded (unchanged where the load failed:
    ``metrics_page`` already said why)."""
    try:
        return metrics_pickers(sources, uploaded_path(run_zip), runs, column, preferred, lane,
                               request.session_hash if request else None)
    except UserError:
        return gr.skip(), gr.skip()


def charts_for_picks(sources: list[str], preferred: list[str] | None, lane, run_zip=None,
                     runs: list[str] | None = None, column: str | None = None, request: gr.Request = None):
    """The training curves and per-class chart for the runs and column picked."""
    return metrics_charts(sources, uploaded_path(run_zip), runs, column, preferred, lane,
                          request.session_hash if request else None)
