"""Section 7 of the bench: the Attention view and one explanation against the model passes they need.

Each is timed as the page runs it (the handler on the torch thread, plus the figure it draws),
alternating with the bare passes: one forward per attention model; a forward and a backward
for a model without attention (its LayerCAM) and for every model of an explanation.
"""
from __future__ import annotations

from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "assets" / "examples" / "synthetic_smear_1.jpg"


def _three(store) -> list[str]:
    plain = [n for n in store.names if not store.entries[n].attention][:1]
    attention = [n for n in store.names if store.entries[n].attention][:2]
    return plain + attention


def views_cost(store, quick: bool) -> list[dict]:
    from bench.run import alternate
    from attention_lens.analysis.images import load_image
    from attention_lens.runtime.detect import detect
    from attention_lens.runtime.letterbox import letterbox, model_stride
    from attention_lens.app.explain_handlers import detection_value, run_explain
    from attention_lens.app.attention_handlers import run_attention
    from attention_lens.torch_thread import run_on_torch_thread

    names = _three(store)
    if len(names) < 3:
        return []
    models = {n: store.get(n) for n in names}
    image = load_image(EXAMPLE)
    x = run_on_torch_thread(lambda: {n: letterbox(image, 320, model_stride(m)) for n, m in models.items()})
    first = run_on_torch_thread(detect, models[names[0]], image)
    detection = detection_value(first.classes[0], first.boxes[0])

    def forward_backward(model, t):
        t = t.clone().requires_grad_(True)
        with torch.enable_grad():
            out = model(t)
            (out[0] if isinstance(out, (list, tuple)) else out)[0, 4:].amax(0).topk(20).values.sum().backward()

    def attention_passes():
        with torch.no_grad():
            for n, m in models.items():
                if store.entries[n].attention:
                    m(x[n])
        for n, m in models.items():
            if not store.entries[n].attention:
                forward_backward(m, x[n])

    def explain_passes():
        for n, m in models.items():
            forward_backward(m, x[n])

    def attention_view():  # what the page waits for before the matrix shows (the rest follows)
        run_attention(store, str(EXAMPLE), names, "jet", 0.5, 0.25, 320)

    runs = 3 if quick else 10
    t_att, t_view, t_exp, t_explain = alternate(
        [lambda: run_on_torch_thread(attention_passes), attention_view,
         lambda: run_on_torch_thread(explain_passes),
         lambda: run_explain(store, str(EXAMPLE), names, None, detection, "Grad-CAM", ["P3", "P4", "P5"], 320)],
        runs, warmup=1)
    for p in (p for m in models.values() for p in m.parameters()):
        p.grad = None
    return [{"view": "Attention (3 models, 320)", "models": ", ".join(names), "passes ms": t_att,
             "view ms": t_view, "ratio": t_view / t_att},
            {"view": "Explain one detection (3 models, Grad-CAM)", "models": ", ".join(names), "passes ms": t_exp,
             "view ms": t_explain, "ratio": t_explain / t_exp}]
