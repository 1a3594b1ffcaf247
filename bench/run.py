"""``python -m bench``: performance as ratios measured side by side in one run.

Absolute times drift on shared machines, so every figure that matters is a ratio of two things
timed alternately in the same loop. Writes docs/PERFORMANCE.md (a --quick run writes under
test-artifacts/) and prints the same tables.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.reference_attention import FLOOR, READER
from bench import backends
from bench.evaluation import evaluation_cost
from bench.views import views_cost
from attention_lens.attention import ATTENTION_MODULES, create_attention
from attention_lens.env import keep_freed_buffers, restore_malloc_defaults
from attention_lens.experiments.latency import time_alternately
from attention_lens.torch_thread import run_on_torch_thread

ROOT = Path(__file__).resolve().parents[1]


def alternate(fns: list, runs: int, warmup: int = 3, settle: int = 0) -> list[float]:
    """Median ms of each callable, timed alternately in one loop so drift hits them all alike."""
    return [statistics.median(t) for t in time_alternately(fns, runs, warmup, settle)]


def module_cost(quick: bool) -> list[dict]:
    """Ours against the paper reader's module (the target) and, where module dispatch matters,
    against the bare-function floor."""
    rows = []
    runs = 10 if quick else 100
    for name in ATTENTION_MODULES:
        for c, s in ((64, 80), (128, 40), (256, 20)):
            m = create_attention(name, c).eval()
            reader = READER[name](m).eval()
            x = torch.randn(1, c, s, s)
            fns = [lambda: m(x), lambda: reader(x)]
            if name in FLOOR:
                fns.append(lambda: FLOOR[name](m, x))
            with torch.inference_mode():
                diff = float((m(x) - reader(x)).abs().max())
            ours, plain, *floor = alternate(fns, runs, warmup=10)
            rows.append({"module": name, "c": c, "hw": s, "ours ms": ours, "reader ms": plain,
                         "ratio": ours / plain, "floor ms": floor[0] if floor else float("nan"),
                         "ours - floor µs": (ours - floor[0]) * 1000 if floor else float("nan"),
                         "max abs diff": diff})
    return rows


def model_cost(weights: Path, quick: bool) -> list[dict]:
    from attention_lens.experiments.flops import gflops
    from attention_lens.modeling.catalog import prepare, read_manifest
    from attention_lens.modeling.load import load_model

    entries = read_manifest(weights)
    base = next((e for e in entries if not e.attention), None)
    if base is None:
        return []
    models = {e.name: prepare(load_model(e.checkpoint)) for e in entries}
    rows = []
    for size in (320, 640):
        x = torch.zeros(1, 3, size, size)
        names = list(models)
        times = dict(zip(names, alternate([lambda m=m: m(x) for m in models.values()], 5 if quick else 30,
                                              settle=1)))
        b_flops = gflops(models[base.name], size)
        b_params = sum(p.numel() for p in models[base.name].parameters())
        for name, m in models.items():
            f = gflops(m, size)
            rows.append({"model": name, "imgsz": size, "latency ratio": times[name] / times[base.name],
                         "params ratio": sum(p.numel() for p in m.parameters()) / b_params,
                         "GFLOPs ratio (thop)": f["thop"] / b_flops["thop"],
                         "GFLOPs ratio (torch)": f["torch"] / b_flops["torch"], "ms": times[name]})
            rows[-1]["GFLOPs predict latency?"] = _prediction(rows[-1])
    return rows


#: Latency ratios of identical models (the baseline seeds) spread about this much between runs.
LATENCY_RATIO_NOISE = 0.03


def _prediction(row: dict) -> str:
    lat, flops = row["latency ratio"], row["GFLOPs ratio (torch)"]
    if abs(lat - flops) <= LATENCY_RATIO_NOISE:
        return "yes"
    return f"no: latency {lat - 1:+.0%} for GFLOPs {flops - 1:+.2%}"


def shipped_store(weights: Path):
    """The manifest's models, loaded and prepared on the torch thread, as the dashboard does."""
    from attention_lens.modeling.catalog import ModelStore, read_manifest

    store = ModelStore(read_manifest(weights))
    run_on_torch_thread(store.load_all)
    return store


def pipeline_cost(store, quick: bool) -> dict:
    """Called from the main thread: the handler from a gradio-like worker, the rest on the torch thread."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    from attention_lens.analysis.compare import compare
    from attention_lens.runtime.letterbox import letterbox, model_stride
    from attention_lens.app.compare_handlers import run_compare

    models = {n: store.get(n) for n in store.names}
    if len(models) < 2:
        return {}
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    path = str(Path(tempfile.mkdtemp(prefix="attention-lens-bench-")) / "image.png")
    cv2.imwrite(path, image[..., ::-1])
    # Even letterboxing runs parallel ops: on this (main) thread it would start a second pool.
    tensors = run_on_torch_thread(lambda: {n: letterbox(image, 640, model_stride(m)) for n, m in models.items()})

    def raw():
        with torch.inference_mode():
            for n, m in models.items():
                m(tensors[n])

    def compare_with_malloc_defaults():
        restore_malloc_defaults()
        try:
            compare(image, models, imgsz=640)
        finally:
            keep_freed_buffers()

    gradio_worker = ThreadPoolExecutor(1)
    runs = 3 if quick else 10
    t_raw, t_handler, t_cmp, t_maps, t_defaults = alternate(
        [lambda: run_on_torch_thread(raw),
         lambda: gradio_worker.submit(run_compare, store, path, list(models), None, 0.25, 0.7, 640, None).result(),
         lambda: run_on_torch_thread(compare, image, models, imgsz=640),
         lambda: run_on_torch_thread(compare, image, models, imgsz=640, capture=True),
         lambda: run_on_torch_thread(compare_with_malloc_defaults)], runs, warmup=1)
    gradio_worker.shutdown()
    return {"models": len(models), "raw forward ms (sum)": t_raw, "compare handler ms": t_handler,
            "overhead ratio": t_handler / t_raw, "compare ms": t_cmp, "compare+maps ms": t_maps,
            "maps add": t_maps / t_cmp - 1, "compare ms, glibc malloc defaults": t_defaults}


def thread_probe(weights: str, runs: int) -> None:
    """In a fresh process: models loaded on the main thread (the app before torch_thread), then
    the same compare timed on the main thread and on a second thread, alternately. Prints JSON."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from attention_lens.analysis.compare import compare
    from attention_lens.env import keep_freed_buffers
    from attention_lens.modeling.catalog import ModelStore, read_manifest

    keep_freed_buffers()
    store = ModelStore(read_manifest(Path(weights)))
    store.load_all()
    models = {n: store.get(n) for n in store.names}
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    one_thread, two_threads = [], []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        compare(image, models, imgsz=640)
        one_thread.append(time.perf_counter() - t0)
        worker = ThreadPoolExecutor(1)  # a gradio worker: a second thread with its own OpenMP pool
        worker.submit(compare, image, models, imgsz=640).result()  # its pool's one-off start-up
        t0 = time.perf_counter()
        worker.submit(compare, image, models, imgsz=640).result()
        two_threads.append(time.perf_counter() - t0)
        worker.shutdown()  # the thread ends and its pool with it
    print(json.dumps({"one": statistics.median(one_thread[1:]) * 1000,
                      "two": statistics.median(two_threads[1:]) * 1000}))


def thread_cost(weights: Path, quick: bool) -> dict:
    import json

    code = f"from bench.run import thread_probe; thread_probe({str(weights)!r}, {3 if quick else 8})"
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True)
    if out.returncode != 0:
        return {}
    t = json.loads(out.stdout.strip().splitlines()[-1])
    return {"compare on the thread that loaded the models ms": t["one"],
            "same compare on a second thread ms": t["two"], "ratio": t["two"] / t["one"]}


def encode_cost(quick: bool) -> dict:
    """Gradio writes every result image to its cache before the browser can fetch it."""
    import tempfile

    import cv2
    from gradio.processing_utils import save_img_array_to_cache

    from attention_lens.app.widgets import DISPLAY_FORMAT

    image = cv2.imread(str(ROOT / "assets" / "examples" / "synthetic_smear_1.jpg"))[..., ::-1].copy()
    cache = tempfile.mkdtemp(prefix="attention-lens-bench-")
    webp, chosen = alternate([lambda: save_img_array_to_cache(image, cache, format="webp"),
                              lambda: save_img_array_to_cache(image, cache, format=DISPLAY_FORMAT)],
                             5 if quick else 20)
    return {"image": f"{image.shape[1]}x{image.shape[0]}", "webp (gradio's default) ms": webp,
            f"{DISPLAY_FORMAT} ms": chosen, "ratio": chosen / webp}


def cold_start(weights: Path) -> dict:
    code = ("import time, resource; t=time.perf_counter(); import app; "
            f"app.create_app({str(weights)!r}, []); "
            "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    inner, rss_kb = (float(v) for v in out.stdout.split()[-2:]) if out.returncode == 0 else (float("nan"),) * 2
    return {"process start to ready s": wall, "import+load s": inner, "peak RSS MB": rss_kb / 1024}


def _module_note(mods: list[dict]) -> str:
    worst = max(mods, key=lambda r: r["ratio"])
    head = (f"Worst ratio: {worst['module']} at c={worst['c']}, {worst['hw']}px: {worst['ratio']:.2f}. "
            + ("Every module is at least as fast as the reader's." if worst["ratio"] <= 1.0 else
               "Above 1.0: find the faster formulation."))
    gaps = [r["ours - floor µs"] for r in mods if r["ours - floor µs"] == r["ours - floor µs"]]
    if not gaps:
        return head
    return head + (f" Against the bare-function floor, ours costs {min(gaps):.1f} to {max(gaps):.1f} µs more: "
                   "the module's own call and its Gate submodules (the hook points of the Attention tab), "
                   "about 1 µs each.")


EVALUATION_FORMAT = {"ours / val": ".2f", "ORT / val": ".2f", "localisation adds": "+.0%",
                     "ORT / raw ORT (<= 1.2)": ".2f", "ORT / raw ORT in batches": ".2f",
                     "ORT / ours on PyTorch (<= 0.6)": ".2f"}


def table(rows: list[dict], fmt: dict | None = None) -> str:
    if not rows:
        return "(nothing to measure)\n"
    cols = list(dict.fromkeys(k for r in rows for k in r))  # a column only some rows have shows "-" elsewhere
    fmt = fmt or {}
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, float("nan")), fmt.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v, spec):
    if isinstance(v, float):
        return "-" if v != v else format(v, spec or ".3g")
    return str(v)


def run_bench(quick: bool, weights: Path, out: Path) -> str:
    # The fresh-process measurements first: on this VM (kernel memory monitoring, DAMON, active), a
    # child process timed after this one held a GB of models ran about 1.8x slower throughout.
    threads = thread_cost(weights, quick)
    cold = cold_start(weights)
    # All torch work on the torch thread, as in the dashboard: a second live OpenMP pool in this
    # process would slow every measurement below (section 4).
    mods = run_on_torch_thread(module_cost, quick)
    models = run_on_torch_thread(model_cost, weights, quick)
    store = shipped_store(weights)
    # Sections 3 and 7 weigh the app's own work against the forwards it needs, on PyTorch (its
    # fallback and the gradient methods' runtime); section 9 does the same on ONNX Runtime.
    with backends.backend("pytorch"):
        pipe = pipeline_cost(store, quick)
        views = views_cost(store, quick)
    evaluation = evaluation_cost(store, quick)
    per_backend = backends.per_model(store, quick)
    spinning = backends.after_other_runtime(store, quick)
    backend_views = backends.views(store, quick)
    encode = encode_cost(quick)
    text = [f"# Performance\n\nMeasured by `python -m bench{' --quick' if quick else ''}` on "
            f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}. Ratios come from alternating "
            "timings in one loop; absolute milliseconds are for orientation only.\n",
            "## 1. Module cost: ours / the paper reader's module (target <= 1.0)\n",
            "The reader's module (bench/reference_attention.py) is each mechanism written from its paper "
            "with the layers the paper draws: pooling layers, an nn.Sequential MLP, nn.Sigmoid. The floor is "
            "the same formula as one bare function with no module call at all (SE, CBAM, ECA, where calls "
            "are a visible share). All read the same weights; max abs diff is ours vs the reader's.\n",
            table(mods, {"ratio": ".2f", "max abs diff": ".1e", "ours ms": ".3f", "reader ms": ".3f",
                         "floor ms": ".3f", "ours - floor µs": ".1f"}),
            "\n" + _module_note(mods) + "\n",
            "## 2. Model cost vs the baseline (batch 1, CPU)\n",
            table(models, {"latency ratio": ".2f", "params ratio": ".4f", "GFLOPs ratio (thop)": ".4f",
                           "GFLOPs ratio (torch)": ".4f", "ms": ".1f"}),
            f"\nThe GFLOPs ratio predicts the latency ratio when they agree within {LATENCY_RATIO_NOISE} (the "
            "spread of identical models). Mostly it does not: every module reads its feature map at least "
            "twice (pooling, then the gate's product) and writes it once, memory-bound passes with almost no "
            "FLOPs that neither counter sees. EMA moves the most (groups folded into the batch, GroupNorm, "
            "two branches matched against each other's pixels), so it costs the most latency per FLOP. "
            "The share shrinks at 640, where the convolutions' FLOPs dominate.\n",
            "## 3. Dashboard pipeline on PyTorch: one compare of all shipped models on a 640x480 image at 640\n",
            table([pipe] if pipe else [], {"overhead ratio": ".2f", "maps add": "+.1%"}),
            "\nThe handler is called from a worker thread, as gradio calls it, and includes reading the image "
            "file, letterbox, NMS, drawing, the diff and the table. Targets: overhead ratio (handler / raw "
            "forwards) <= 1.3 and heatmap capture adding <= 10%. The last column is the same compare with "
            "glibc's malloc defaults restored for the call: every activation buffer is then mapped fresh and "
            "page-faulted in on each forward, which `attention_lens.env.keep_freed_buffers` (applied by the entry points) "
            "avoids.\n",
            "## 4. Which thread runs the forwards\n",
            table([threads] if threads else [], {"ratio": ".2f"}),
            "\nMeasured in a fresh process whose main thread loaded the models, as the app did before: PyTorch's "
            "GNU OpenMP keeps a worker pool per thread that ran a parallel op; with two pools alive on two cores "
            "both throttle their spin-waiting and every op pays a wake-up. Gradio runs handlers on worker "
            "threads, so the dashboard now loads and runs every model on one thread "
            "(attention_lens/torch_thread.py) whichever worker takes the request; requests that run models also "
            "queue one at a time (`INFERENCE_QUEUE`), since they would only wait for that thread.\n",
            "## 5. Sending one result image to the browser\n",
            table([encode], {"ratio": ".2f"}),
            "\nPer image, per model (or per map in the Attention tab), after the models have run. The "
            "galleries use the cheaper format (`DISPLAY_FORMAT`); downloads stay lossless.\n",
            "## 6. Cold start and memory (targets <= 15 s, <= 2 GB)\n",
            table([cold], {"process start to ready s": ".1f", "import+load s": ".1f", "peak RSS MB": ".0f"}),
            "\n## 7. Views on PyTorch against the model passes they need (target ratio <= 1.5)\n",
            table(views, {"passes ms": ".0f", "view ms": ".0f", "ratio": ".2f"}),
            "\nThe Attention view is what the page waits for before its matrix shows (capture, LayerCAM for "
            "the model without attention, the matrix figure; the image gallery and channel charts follow). "
            "Its passes: one forward per attention model, a forward and backward for the plain one. One "
            "explanation: the /explain handler for one box (Grad-CAM, P3-P5); its passes: a forward and "
            "backward per model.\n",
            "## 8. A data-set evaluation against ultralytics' own `val` (targets: ours / val <= 1.2, "
            "localisation adds <= 15%)\n",
            table(evaluation, EVALUATION_FORMAT),
            "\nOne shipped model per attention kind (and the baseline) over the BCCD test split at 320: ultralytics' "
            "DetectionValidator (rect batches of 16) against our pass (8 images a run; "
            "COCO metrics by faster-coco-eval), "
            "alone and with the localisation scores (gate maps, LayerCAM for the baseline), on PyTorch and on "
            "ONNX Runtime (the gate maps are captured in the pass's own runs; LayerCAM runs on PyTorch, in runs its memory bound allows). "
            "The raw ORT forwards are the pass's runs alone, on the inputs it feeds (the validator's letterbox, "
            "prepared beforehand). The paired bootstrap of the deltas is timed on its own (ultralytics has none); "
            "the error analysis (TIDE's types, their dAP at 0.5 and 0.50:0.95, their bootstrap series) uncached, "
            "against the rest of the Evaluate job.\n",
            "## 9. ONNX Runtime against PyTorch eager\n",
            table(per_backend, {"pytorch ms": ".1f", "onnxruntime ms": ".1f", "ratio": ".2f", "openvino ms": ".1f",
                                "openvino ratio": ".2f"}),
            "\nRaw forwards at batch 1 on the torch thread; ONNX Runtime's include every gate map as an extra "
            "output. Each export was checked against PyTorch before it was timed "
            "(attention_lens/runtime/onnx_backend.py). OpenVINO is timed in a loop of its own (below).\n",
            table(spinning, {"ms": ".1f", "ratio": ".2f"}),
            "\nA PyTorch forward (320) timed right after another runtime's run returned. ONNX Runtime's threads "
            "would spin on for a while after each run and hold the cores; its sessions now stop them "
            "(`session.force_spinning_stop`; with the process-wide pool used before, this ratio was 2.2), so the PyTorch work the "
            "app does between ORT runs, and the PyTorch side of every alternated timing here, are not slowed.\n",
            table(backend_views, {"ORT view / raw (<= 1.2)": ".2f", "ORT view / raw (<= 1.5)": ".2f",
                                  "ORT view / PyTorch view (<= 0.6)": ".2f"}),
            "\nThe same handlers the page calls, with the backend switched between alternated calls.\n"]
    doc = "\n".join(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_file():  # sections measured by other scripts (tests/soak/stall.py writes "## 10.") are kept
        kept = out.read_text().partition(KEPT_SECTIONS)
        doc += ("\n" + kept[1] + kept[2]) if kept[1] else ""
    out.write_text(doc)
    return doc


#: Where the sections this bench does not measure begin (their scripts write them).
KEPT_SECTIONS = "## 10. "


def default_out(quick: bool) -> Path:
    return ROOT / "test-artifacts" / "PERFORMANCE-quick.md" if quick else ROOT / "docs" / "PERFORMANCE.md"
