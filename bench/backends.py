"""Section 9 of the bench: ONNX Runtime against PyTorch eager, per model and through the views.

Every figure is a ratio of two things timed alternately in one loop, each call after one untimed
call of the same kind (``settle``): both runtimes keep worker threads spinning for a moment after
a run, so a call timed right after the other runtime's pays for that one's threads. The backend is switched
between the alternated calls by the setting the app reads (``ATTENTION_LENS_BACKEND``); every
model's export is built and checked before the timing starts.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "assets" / "examples" / "synthetic_smear_1.jpg"


@contextmanager
def backend(name: str):
    from attention_lens.runtime.onnx_backend import BACKEND_ENV

    old = os.environ.get(BACKEND_ENV)
    os.environ[BACKEND_ENV] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(BACKEND_ENV, None)
        else:
            os.environ[BACKEND_ENV] = old


def on(name: str, fn):
    def call():
        with backend(name):
            return fn()
    return call


def openvino_runner(path: Path):
    """A callable running the cached ONNX graph at ``path`` on OpenVINO's CPU plugin (same graph,
    maps included, as many threads as PyTorch), or None when openvino is not installed. Only the
    bench uses it: the app ships one runtime (see onnx_backend's docstring for why)."""
    try:
        import openvino as ov
    except ImportError:
        return None
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": torch.get_num_threads(),
                                                          "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                                                          "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()

    def run(x: torch.Tensor):
        request.infer({0: x.numpy()})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())
    return run


def ort_sessions(models: dict) -> dict:
    """name -> the model's checked ONNX Runtime session (None where its export failed), every
    export built and checked first, so no timing waits for one."""
    from attention_lens.runtime.onnx_backend import REGISTRY

    with backend("onnxruntime"):
        REGISTRY.prepare(list(models.values()), wait=True)
        return {n: REGISTRY.session(m) for n, m in models.items()}


def per_model(store, quick: bool) -> list[dict]:
    """Raw forwards (gate maps included on the exported graph) of every shipped model at 320 and
    640, on PyTorch eager, ONNX Runtime and, where it is installed, OpenVINO."""
    from bench.run import alternate
    from attention_lens.runtime.onnx_backend import REGISTRY
    from attention_lens.torch_thread import run_on_torch_thread

    models = {n: store.get(n) for n in store.names}
    sessions = ort_sessions(models)
    rows = []
    for size in (320, 640):
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
        for name, m in models.items():
            exported = sessions[name]
            if exported is None:
                rows.append({"model": name, "imgsz": size, "pytorch ms": float("nan"), "onnxruntime ms": float("nan"),
                             "ratio": float("nan"), "note": REGISTRY.failure(m) or "not exported"})
                continue

            def eager(m=m):
                with torch.no_grad():
                    m(x)

            t_torch, t_ort = alternate([lambda: run_on_torch_thread(eager), lambda: run_on_torch_thread(exported.run, x)],
                                       3 if quick else 15, warmup=2, settle=1)
            row = {"model": name, "imgsz": size, "pytorch ms": t_torch, "onnxruntime ms": t_ort,
                   "ratio": t_ort / t_torch}
            note = ""
            ov_run = run_on_torch_thread(openvino_runner, exported.path)
            if ov_run is not None:
                # Timed in a loop of its own: OpenVINO's threads spin on after a run, which slowed the
                # PyTorch call after it (ONNX Runtime's sessions stop theirs; see open_session).
                diff = float((run_on_torch_thread(ov_run, x) - exported.run(x)[0]).abs().max())
                note = f"OpenVINO vs ORT max |diff| {diff:.1e}"
                (t_ov,) = alternate([lambda: run_on_torch_thread(ov_run, x)], 3 if quick else 15, warmup=2)
                row.update({"openvino ms": t_ov, "openvino ratio": t_ov / t_torch})
            rows.append({**row, "note": note})
    return rows


def after_other_runtime(store, quick: bool) -> list[dict]:
    """A PyTorch forward timed right after a run of another runtime, against one timed right after a
    PyTorch forward: what a runtime's threads, still spinning once its run has returned, cost the
    PyTorch work that follows (LayerCAM, Grad-CAM, a model whose export failed)."""
    import statistics
    import time

    from attention_lens.torch_thread import run_on_torch_thread

    name = store.default_selection()[0]
    model = store.get(name)
    exported = ort_sessions({name: model})[name]
    x = torch.rand(1, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    before = {"PyTorch": lambda: model(x)}
    if exported is not None:
        before["ONNX Runtime"] = lambda: exported.run(x, False)
        ov_run = run_on_torch_thread(openvino_runner, exported.path)
        if ov_run is not None:
            before["OpenVINO"] = lambda: ov_run(x)

    def measure():
        times = {k: [] for k in before}
        with torch.no_grad():
            for _ in range(10 if quick else 40):
                for k, run in before.items():
                    run()
                    t = time.perf_counter()
                    model(x)
                    times[k].append((time.perf_counter() - t) * 1000)
        return {k: statistics.median(v) for k, v in times.items()}

    ms = run_on_torch_thread(measure)
    return [{"model": name, "PyTorch forward right after": k, "ms": v, "ratio": v / ms["PyTorch"]}
            for k, v in ms.items()]


def bare_forwards(sessions: dict, models: dict, inputs: dict, capture: bool = False) -> None:
    """The forwards a view or pass needs and nothing else: each model on each of its letterboxed
    inputs (``inputs``: name -> tensors), on its ONNX Runtime session (the gate maps fetched only
    with ``capture``, as the app fetches them), or on PyTorch where its export failed (as the app
    would run it)."""
    for n, xs in inputs.items():
        for x in xs:
            if sessions[n] is not None:
                sessions[n].run(x, capture)
            else:
                with torch.no_grad():
                    models[n](x)


def views(store, quick: bool) -> list[dict]:
    """The compare handler (all shipped models, 640) and the Attention view (the default selection's
    attention models at 320; every attention model at 640), each on both backends, against the raw
    ONNX Runtime forwards they need."""
    import cv2

    from bench.run import alternate
    from attention_lens.runtime.letterbox import letterbox, model_stride
    from attention_lens.app.attention_handlers import run_attention
    from attention_lens.app.compare_handlers import run_compare
    from attention_lens.torch_thread import run_on_torch_thread

    names = store.names
    models = {n: store.get(n) for n in names}
    sessions = ort_sessions(models)
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    path = str(Path(tempfile.mkdtemp(prefix="attention-lens-bench-")) / "image.png")
    cv2.imwrite(path, image[..., ::-1])
    x640 = run_on_torch_thread(lambda: {n: letterbox(image, 640, model_stride(m)) for n, m in models.items()})

    def raw_ort(chosen, x, capture=False):
        return lambda: bare_forwards(sessions, models, {n: [x[n]] for n in chosen}, capture)

    def compare(size):
        return lambda: run_compare(store, path, names, None, 0.25, 0.7, size, None)

    runs = 2 if quick else 6
    t_raw, t_ort, t_torch = alternate([lambda: run_on_torch_thread(raw_ort(names, x640)),
                                       on("onnxruntime", compare(640)), on("pytorch", compare(640))], runs, warmup=1,
                                      settle=1)
    rows = [{"view": f"compare, {len(names)} models, 640", "raw ONNX Runtime forwards ms": t_raw,
             "view on ONNX Runtime ms": t_ort, "view on PyTorch ms": t_torch,
             "ORT view / raw (<= 1.2)": t_ort / t_raw, "ORT view / PyTorch view (<= 0.6)": t_ort / t_torch}]
    rgb = cv2.imread(str(EXAMPLE))[..., ::-1].copy()
    default = [n for n in store.default_selection() if store.entries[n].attention]
    every = [n for n in names if store.entries[n].attention]
    # Issue 33's: three models, two of them carrying self-attention (the query view's matrices
    # captured and kept), at 320 and 640.
    carrying = [n for n in ("yolo11n-baseline-s0", "yolo11n-ema-neck-s0", "yolov8n-ema-neck-s0") if n in names]
    # The Attention view as a visitor first sees it (the default selection at 320), and as the
    # issue's compare figure reads (every shipped attention model at 640).
    for chosen, size in ((default, 320), (every, 640), (carrying, 320), (carrying, 640)):
        if not chosen or (chosen is carrying and len(carrying) < 3):
            continue
        x = run_on_torch_thread(lambda: {n: letterbox(rgb, size, model_stride(models[n])) for n in chosen})

        def view(chosen=chosen, size=size):
            return run_attention(store, str(EXAMPLE), chosen, "jet", 0.5, 0.25, size)

        t_raw, t_ort, t_torch = alternate([lambda: run_on_torch_thread(raw_ort(chosen, x, True)),
                                           on("onnxruntime", view), on("pytorch", view)], runs, warmup=1,
                                          settle=1)
        what = (f"attention, {len(chosen)} models with attention, {size}" if chosen is not carrying else
                f"attention, 3 models, 2 with self-attention, {size}")
        target = "ORT view / raw (<= 1.2)" if chosen is not carrying else "ORT view / raw (<= 1.5)"
        rows.append({"view": what, "raw ONNX Runtime forwards ms": t_raw, "view on ONNX Runtime ms": t_ort,
                     "view on PyTorch ms": t_torch, target: t_ort / t_raw,
                     "ORT view / PyTorch view (<= 0.6)": t_ort / t_torch})
    return rows
