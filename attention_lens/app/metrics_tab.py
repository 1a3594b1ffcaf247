"""Layout of the Metrics tab; numbers and figures come from attention_lens.experiments.metrics and charts."""
from __future__ import annotations

import gradio as gr

from attention_lens.app.errors import event
from attention_lens.app.metrics_handlers import charts_for_picks, metrics_page, pickers_after_load
from attention_lens.experiments.metrics import published_table


def build_metrics_tab(demo, sources: list[str], preferred: list[str] | None = None, lane=None) -> None:
    """``preferred``: the runs the curves and per-class charts start with (none: every run);
    ``lane``: where an uploaded zip's checkpoints are costed (a child process, not the server)."""
    gr.Markdown("Measured runs, grouped by **data set** (the fingerprint of its split files), image size and "
                "epochs, and never pooled across them. **Δ** is against the mean test mAP50-95 of the baseline of "
                "the same base in the same group; **within noise** means |Δ| is under twice that baseline's "
                "seed-to-seed standard deviation (the shaded band on the charts, in the base's colour). A seed "
                "given twice is counted once. Runs without summary.json show their best validation epoch and "
                "are not compared. P, R and mAP here are **ultralytics val**'s (as `yolo val batch=1` reports them "
                "for the checkpoint); the Evaluate tab shows them beside COCO's definition, from the same detections.")
    with gr.Row():
        per_run = gr.Checkbox(label="One row per run (instead of per variant)", value=False)
        upload = gr.File(label="Add a run (zip of a run directory)", file_types=[".zip"])
        refresh = gr.Button("Reload runs")
    table = gr.Dataframe(label="Runs", elem_id="metrics-table", wrap=True, headers=["model", "data set", "seeds"])
    csv = gr.File(label="Table as CSV")
    skipped = gr.Markdown(label="Skipped runs", show_label=False)
    with gr.Row():
        pareto_flops = gr.Plot(label="test mAP50-95 vs GFLOPs (thop)", elem_id="pareto-flops")
        pareto_latency = gr.Plot(label="test mAP50-95 vs CPU latency", elem_id="pareto-latency")
    with gr.Row():
        runs_pick = gr.Dropdown(label="Runs for curves and per-class AP", multiselect=True, choices=[])
        column = gr.Dropdown(label="results.csv column", choices=[], value=None)  # filled on load
    curves = gr.Plot(label="Training curves", elem_id="curves")
    per_class = gr.Plot(label="Per-class test mAP50-95", elem_id="per-class")
    with gr.Accordion("Published numbers: other people's results on other data (not comparable)", open=False):
        gr.Dataframe(value=published_table(), interactive=False)

    on_load = event(metrics_page, sources, preferred, lane)
    outputs = [table, csv, skipped, pareto_flops, pareto_latency, curves, per_class]
    inputs = [per_run, upload, runs_pick, column]
    pickers = dict(fn=event(pickers_after_load, sources, preferred, lane), inputs=[upload, runs_pick, column],
                   outputs=[runs_pick, column], api_name=False, preprocess=False, show_progress="hidden")
    refresh.click(on_load, inputs, outputs, api_name="metrics", preprocess=False).success(**pickers)
    demo.load(on_load, inputs, outputs, api_name=False, preprocess=False).success(**pickers)
    for control in (per_run, upload):
        control.change(on_load, inputs, outputs, api_name=False, preprocess=False,
                       trigger_mode="always_last").success(**pickers)

    for control in (runs_pick, column):  # only the two charts that depend on the picks
        control.change(event(charts_for_picks, sources, preferred, lane), [upload, runs_pick, column],
                       [curves, per_class], api_name=False, preprocess=False, trigger_mode="always_last")
