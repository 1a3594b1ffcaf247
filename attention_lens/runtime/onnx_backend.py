"""The fast path for detection forwards: each model exported to ONNX once and run by ONNX Runtime.

Why ONNX Runtime rather than OpenVINO or PyTorch eager: docs/PERFORMANCE.md, section 9 (the two
runtimes about as fast at float32, which the exactness contract needs; OpenVINO's faster default
precision moved boxes; ONNX Runtime's wheel is smaller and reads torch's graphs as they are).

What runs where:
- The graph is exported from a private copy of the model (the shared one is never put in export
  mode or train mode), with dynamic batch, height and width, and every attention gate's output and
  every attention module's input as extra outputs: the maps come from the same run.
- Each export is checked against PyTorch before it is used (onnx_check.py); one that fails to
  export or to match is never used, and its reason is kept.
- Exports are cached on disk by the model's identity (structure, wiring, weights), so a restart
  only loads them. A first export runs in the background, one model at a time on the torch
  thread between users' requests; until it is ready the model answers through PyTorch.
- Gradient-based explanations (Grad-CAM, LayerCAM) stay on PyTorch: they need the autograd graph.
- It is the CPU's fast path: a model placed on a GPU (``attention_lens.device``) runs on PyTorch
  there and is never exported.
"""
from __future__ import annotations

import copy
import io
import logging
import os
import queue
import tempfile
import threading
import warnings
import weakref
from pathlib import Path

import torch

from attention_lens.device import model_device
from attention_lens.modeling.identity import loaded_identity
from attention_lens.runtime import onnx_check
from attention_lens.runtime.capture import attention_layout, capture_gates, raw_prediction
from attention_lens.runtime.onnx_session import Exported, ExportError
from attention_lens.torch_thread import run_on_torch_thread

log = logging.getLogger(__name__)

OPSET = 17
#: The graphs' layout (part of the cache key): 2 = a dynamic batch axis.
GRAPH = 2
CACHE_ENV = "ATTENTION_LENS_ONNX_CACHE"
#: Cached graphs kept on disk (oldest removed first); each is about the model's fp32 size.
CACHE_FILES = 64
BACKEND_ENV = "ATTENTION_LENS_BACKEND"  # "pytorch" turns the fast path off


def enabled() -> bool:
    if os.environ.get(BACKEND_ENV, "onnxruntime").lower() in ("pytorch", "torch", "off"):
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


_private: list[Path] = []


def cache_dir() -> Path:
    """The graph cache: ``$ATTENTION_LENS_ONNX_CACHE``, else a folder in the temp dir. A graph is
    loaded from here as it is, so the folder must be this user's alone: one that another user owns
    or can write to is not used (a fresh private folder for this process instead)."""
    path = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / f"attention-lens-onnx-{os.getuid()}")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
        if st.st_uid == os.getuid() and not st.st_mode & 0o022:
            return path
    except OSError:
        pass
    if not _private:
        _private.append(Path(tempfile.mkdtemp(prefix="attention-lens-onnx-")))
    return _private[0]


def model_key(model: torch.nn.Module) -> str:
    """The graph's cache key: the model's identity (structure, wiring, every tensor;
    ``modeling.identity``) and the exporter's and runtime's versions."""
    import onnxruntime

    return loaded_identity(model, f"{GRAPH}|{torch.__version__}|{onnxruntime.__version__}|{OPSET}|")[:32]


class _WithMaps(torch.nn.Module):
    """The model's raw prediction, then every gate's output and every attention module's input."""

    def __init__(self, model: torch.nn.Module, gates: list[str], modules: list[str]):
        super().__init__()
        self.model = model
        self.gate_names, self.module_names = gates, modules

    def forward(self, x):

        maps, inputs = {}, {}
        with capture_gates(self.model, maps, inputs):  # the app's own hooks: the same maps, by name
            y = self.model(x)
        y = raw_prediction(y)
        return (y, *[maps[n] for n in self.gate_names], *[inputs[n] for n in self.module_names])


def export_bytes(model: torch.nn.Module) -> tuple[bytes, list[str], list[str]]:
    """The ONNX graph of a private copy of ``model`` (dynamic batch, h and w), and its extra outputs' names."""
    private = copy.deepcopy(model).float().eval()
    layout = attention_layout(private)
    gates, modules = layout.gate_names, layout.module_names
    head = private.model[-1] if hasattr(private, "model") and hasattr(private.model, "__getitem__") else None
    for attr, value in (("export", True), ("dynamic", True), ("format", "onnx")):
        if head is not None and hasattr(head, attr):
            setattr(head, attr, value)
    wrapper = _WithMaps(private, gates, modules).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        torch.onnx.export(wrapper, (torch.zeros(1, 3, *onnx_check.CHECK_SHAPES[0]),), buf, opset_version=OPSET, dynamo=False,
                          input_names=["images"], output_names=["pred"] + [f"gate:{n}" for n in gates]
                          + [f"input:{n}" for n in modules], dynamic_axes={"images": {0: "n", 2: "h", 3: "w"}})
    return buf.getvalue(), gates, modules


def open_session(graph: bytes | str):
    """An ONNX Runtime session with its own pool of as many threads as PyTorch uses, whose threads
    stop spinning as soon as a run returns.

    ONNX Runtime's threads spin-wait after a run by default, holding the cores: a PyTorch forward
    right after an ONNX Runtime run took nearly twice its time alone (docs/PERFORMANCE.md, section
    11), which slowed everything the app still runs on PyTorch (LayerCAM,
    Grad-CAM, a model whose export failed) and made PyTorch look slower than it is in any timing that
    alternates the two. ``session.force_spinning_stop`` ends the spinning at the end of each run (the
    process-wide pool that ``set_global_thread_pool_sizes`` gives ignores it); a run itself still
    spins between its parallel ops, so forwards are as fast as before (bench section 9)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, torch.get_num_threads())
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.force_spinning_stop", "1")
    so.log_severity_level = 4  # failures reach the caller as exceptions (and our log), not stderr
    return ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])


def build(model: torch.nn.Module) -> Exported:
    """Export (or load from the cache), open and check ``model``'s graph. Raises ExportError."""
    key = model_key(model)
    folder = cache_dir()
    path = folder / f"{key}.onnx"
    layout = attention_layout(model)
    gates, modules = layout.gate_names, layout.module_names
    try:
        if not path.is_file():
            graph, gates_e, modules_e = export_bytes(model)
            if (gates_e, modules_e) != (gates, modules):
                raise ExportError("the copy's attention layers differ from the model's")
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(graph)
            os.replace(tmp, path)  # whole files only: a crash never leaves half a graph
            _trim(folder)
        else:
            os.utime(path)
        exported = Exported(open_session(str(path)), gates, modules, path)
    except ExportError:
        raise
    except Exception as e:  # the exporter and the runtime raise many kinds; the model stays on PyTorch
        path.unlink(missing_ok=True)
        raise ExportError(f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}") from None
    try:
        problem = onnx_check.check(model, exported)
    except Exception as e:  # noqa: BLE001  (a graph that cannot run a shape PyTorch runs)
        problem = f"{type(e).__name__} on a check input: {(str(e).splitlines() or [''])[0][:300]}"
    if problem:
        path.unlink(missing_ok=True)
        raise ExportError(f"does not match PyTorch: {problem}")
    exported.batched = onnx_check.batch_check(model, exported)
    return exported


def _trim(folder: Path) -> None:
    files = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime)
    for old in files[:-CACHE_FILES]:
        old.unlink(missing_ok=True)


class Registry:
    """Which models run on ONNX Runtime: ready sessions, exports waiting, and refusals with reasons.

    Keyed by the model object (weakly: an evicted upload takes its session with it). Exports run
    one at a time on the torch thread, queued by a background thread, so a user's request waits
    for at most one export.
    """

    def __init__(self):
        self._ready: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._failed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._pending: weakref.WeakSet = weakref.WeakSet()
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def session(self, model: torch.nn.Module) -> Exported | None:
        """The model's session if it is ready; else None (and its export is queued once). None
        for a model on a GPU: it runs on PyTorch there."""
        if not enabled() or model_device(model).type != "cpu":
            return None
        with self._lock:
            ready = self._ready.get(model)
            if ready is not None or model in self._failed:
                return ready
        self.prepare([model])
        return None

    def backend(self, model: torch.nn.Module) -> str:
        if model_device(model).type != "cpu":
            return pytorch_label(model)
        with self._lock:
            if model in self._ready:
                return "onnxruntime"
            if model in self._failed:
                return "pytorch (export failed)"
            return "pytorch (exporting)" if model in self._pending else "pytorch"

    def failure(self, model: torch.nn.Module) -> str | None:
        with self._lock:
            return self._failed.get(model)

    def prepare(self, models, wait: bool = False) -> None:
        """Queue ``models`` for export in the background (``wait``: build them now, on this call)."""
        if not enabled():
            return
        for model in models:
            if model_device(model).type != "cpu":
                continue
            with self._lock:
                if model in self._ready or model in self._failed or (model in self._pending and not wait):
                    continue
                self._pending.add(model)
            if wait:
                run_on_torch_thread(self._build, model)
            else:
                self._queue.put(weakref.ref(model))
        with self._lock:
            if not wait and (self._worker is None or not self._worker.is_alive()):
                self._worker = threading.Thread(target=self._drain, name="attention-lens-export", daemon=True)
                self._worker.start()

    def _drain(self) -> None:
        while True:
            try:
                ref = self._queue.get(timeout=5)
            except queue.Empty:
                return
            try:
                model = ref()
                if model is not None:
                    run_on_torch_thread(self._build, model)
            except RuntimeError:  # the torch thread is gone: the interpreter is shutting down
                return
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Until every queued export has finished (or failed)."""
        self._queue.join()

    def _build(self, model: torch.nn.Module) -> None:
        with self._lock:
            if model in self._ready or model in self._failed:
                return
        try:
            exported = build(model)
        except Exception as e:  # noqa: BLE001  (whatever went wrong, the model stays on PyTorch)
            reason = str(e) if isinstance(e, ExportError) else f"{type(e).__name__}: {str(e)[:200]}"
            log.warning("ONNX Runtime not used for a model: %s", reason)
            with self._lock:
                self._failed[model] = reason
                self._pending.discard(model)
            return
        with self._lock:
            self._ready[model] = exported
            self._pending.discard(model)


def pytorch_label(model: torch.nn.Module, half: bool | None = None) -> str:
    """How a PyTorch forward is named on the page and in the JSON: "pytorch", or with the GPU it ran
    on ("pytorch (cuda:0 NVIDIA H100 80GB HBM3)", ", float16" for a float16 pass; ``half`` None:
    read from the model's parameters)."""
    from attention_lens.device import device_label

    device = model_device(model)
    if device.type == "cpu":
        return "pytorch"
    if half is None:
        half = next((p.dtype for p in model.parameters()), None) == torch.float16
    return f"pytorch ({device_label(device)}{', float16' if half else ''})"


#: The process's one registry (models are shared by every session, and so are their sessions).
REGISTRY = Registry()


def run_if_ready(model: torch.nn.Module, x: torch.Tensor, capture: bool = True):
    """(raw prediction, gate maps, module inputs) through ONNX Runtime when the model's session
    is ready, else None (the caller runs PyTorch; the model's export is queued). Without
    ``capture`` the maps are not fetched (empty)."""
    exported = REGISTRY.session(model)
    return None if exported is None else exported.run(x, capture)
