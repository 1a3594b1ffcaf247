"""Layout of the Evaluate tab: models over a labelled split, against a reference. No computation."""
from __future__ import annotations

import gradio as gr

from components.analysis.compare import IMGSZ_CHOICES
from components.app.handlers import SPLIT_CHOICES, UserError, run_evaluate, uploaded_path
from components.app.widgets import INFERENCE_QUEUE, model_picker, reference_choices


def build_evaluate_tab(store, data: str | None, stored_dir: str | None) -> None:
    baselines = [n for n in store.names if not store.entries[n].attention]
    attention = [n for n in store.names if store.entries[n].attention]
    # The baseline's seeds (they give the seed noise) and the first EMA and CBAM variants.
    default = baselines + [next(n for n in attention if store.entries[n].attention == kind)
                           for kind in ("EMA", "CBAM") if any(store.entries[n].attention == kind for n in attention)]
    source = ("the data set this app was started with" if data else
              "the BCCD test split stored with the shipped models (numbers only)" if stored_dir else "none yet")
    gr.Markdown(f"Evaluate models over a whole labelled split and compare each with a reference. Data set: "
                f"{source}; or upload a zip (images + YOLO labels + data.yaml, or a Pascal VOC folder). "
                "P, R and found objects use the confidence below at IoU 0.5; mAP uses every detection. "
                "Δ intervals are a paired bootstrap over images; where the reference has several seeds "
                "selected, their spread is the seed noise.")
    with gr.Row():
        with gr.Column(scale=1):
            button = gr.Button("Evaluate", variant="primary", elem_id="evaluate-button")
            models = model_picker(store, default, "Models (the reference's seeds give the seed noise)")
            uploads = gr.File(file_count="multiple", file_types=[".pt"], label="Your checkpoints (.pt)")
            dataset = gr.File(file_types=[".zip"], label="Your labelled data set (.zip)")
            reference = gr.Dropdown(choices=store.names, value=store.baseline_name(), label="Reference",
                                    allow_custom_value=True)
            with gr.Row():
                split = gr.Dropdown(choices=list(SPLIT_CHOICES), value="test", label="Split")
                imgsz = gr.Dropdown(choices=list(IMGSZ_CHOICES), value=320, label="Image size")
            with gr.Row():
                conf = gr.Slider(0.05, 0.95, value=0.25, step=0.05, label="Confidence (P, R, found)")
                rounds = gr.Slider(100, 2000, value=1000, step=100, label="Bootstrap rounds")
        with gr.Column(scale=2):
            table = gr.Dataframe(label="Per model: metrics, Δ mAP50-95 vs the reference with its 95% interval, verdict",
                                 elem_id="evaluate-table")
            delta = gr.Plot(label="Δ mAP50-95 with bootstrap interval", elem_id="evaluate-delta")
            objects = gr.Plot(label="Ground-truth objects: found by both, only one, neither", elem_id="evaluate-objects")
            images = gr.Dataframe(label="Images where a model and the reference disagree most", elem_id="evaluate-images")
            files = gr.File(label="Results (JSON) and report (HTML)", file_count="multiple")
            with gr.Accordion("All numbers (JSON)", open=False):
                raw = gr.JSON(label="Results")

    def on_evaluate(models=None, checkpoints=None, dataset=None, reference=None, split="test", image_size=320,
                    confidence=0.25, rounds=1000, request: gr.Request = None, progress=gr.Progress()):
        """Evaluate ``models`` (and uploaded ``checkpoints``) on a labelled split against ``reference``:
        the metrics table, the Δ and found-objects charts, the images ranked by disagreement, every
        number as JSON and the files."""
        try:
            files_ = [uploaded_path(f) for f in checkpoints or []]
            zip_path = uploaded_path(dataset) if dataset else None
            out = run_evaluate(store, data, stored_dir, zip_path, split, models, files_, reference, confidence,
                               image_size, rounds, request.session_hash if request else None, progress)
        except UserError as e:
            raise gr.Error(str(e), print_exception=False) from None
        table_, objects_, delta_, images_, results, paths = out
        return table_, delta_, objects_, images_, paths, results

    button.click(on_evaluate, [models, uploads, dataset, reference, split, imgsz, conf, rounds],
                 [table, delta, objects, images, files, raw], api_name="evaluate", preprocess=False,
                 **INFERENCE_QUEUE)
    models.change(lambda selected, current: reference_choices(store, selected, current), [models, reference], reference,
                  api_name=False)
