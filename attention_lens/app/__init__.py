"""The Gradio layer: each tab's layout, and the handlers its events call.

- layout only: ``compare_tab`` (with ``explain_section``), ``attention_tab``, ``evaluate_tab``,
  ``metrics_tab``; ``widgets`` (the pickers and inputs every tab shares)
- handlers, module-level functions a test calls without a browser (the tabs bind the store with
  ``errors.event``): ``compare_handlers``, ``explain_handlers``, ``attention_handlers``,
  ``query_handlers``, ``evaluate_handlers``, ``metrics_handlers``
- what every handler shares: ``errors`` (what the page is told), ``inputs`` (what a request names,
  checked before anything is allocated), ``sessions`` (per-session folders), ``plots`` (figures as
  gr.Plot sends them)
- ``evaluate_lane`` and ``evaluate_job``: the Evaluate tab's work as a job in the long-work lane

Computation lives in the layers above (analysis, evaluation, views).
"""
from __future__ import annotations

import gradio as gr

from attention_lens.app.attention_tab import build_attention_tab
from attention_lens.app.compare_tab import build_compare_tab
from attention_lens.app.evaluate_tab import build_evaluate_tab
from attention_lens.app.sessions import end_session
from attention_lens.app.compare_handlers import shipped_domain
from attention_lens.app.metrics_tab import build_metrics_tab

TITLE = "Attention Lens"
INTRO = ("Did adding attention to your YOLO help, and where does it look? Compare a baseline with "
         "attention variants on your own image.")


#: Gradio's file cache (uploads, result files): every 10 minutes, files older than 30 minutes go.
DELETE_CACHE = (600, 1800)


def build_app(store, examples: list[str], run_sources: list[str] | None = None, data: str | None = None,
              stored_evaluations: str | None = None, lane=None, weights: str | None = None) -> gr.Blocks:
    """The dashboard. ``lane`` runs the long work (evaluations) in child processes; ``weights``
    is the folder of the shipped models' manifest, which those processes read."""
    from attention_lens.jobs.lane import Lane

    lane = lane or Lane()
    with gr.Blocks(title=TITLE, delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        domain = shipped_domain(store)
        if domain:
            gr.Markdown(domain, elem_id="shipped-domain")
        if not store.names:
            gr.Markdown("**No shipped models found** (weights/manifest.json). Upload two checkpoints to compare.")
        with gr.Tabs() as tabs:
            with gr.Tab("Compare", id="compare"):
                build_compare_tab(store, examples)
            with gr.Tab("Attention", id="attention"):
                attention = build_attention_tab(store, examples)
            with gr.Tab("Evaluate", id="evaluate"):
                build_evaluate_tab(store, data, stored_evaluations, lane, weights, attention, tabs)
            with gr.Tab("Metrics", id="metrics"):
                build_metrics_tab(demo, run_sources or [], store.default_selection(), lane)

        def on_session_end(request: gr.Request):
            """A browser session ended: its job (if any) is cancelled, the files written for it removed."""
            session = request.session_hash if request else None
            if session:
                lane.cancel_session(session)
            end_session(session)

        demo.unload(on_session_end)
    return demo
