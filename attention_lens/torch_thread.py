"""One long-lived thread for every model load and forward of the dashboard process.

PyTorch's CPU kernels run on GNU OpenMP, which keeps a worker pool for each thread that has
started a parallel region, for as long as that thread lives. Once the pools together hold more
threads than there are cores, every pool throttles its spin-waiting and each parallel op pays a
sleep/wake-up. On a 2-core machine, after the main thread had loaded the models, forwards from a
gradio worker thread ran about 2x slower than the same forwards on the main thread
(docs/PERFORMANCE.md). Sending all torch work to one thread keeps one pool, whichever gradio
worker handles the request.
"""
from __future__ import annotations

import contextvars
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

THREAD_NAME = "attention-lens-torch"
_ident: list[int] = []
# One worker, started on first use and kept for the life of the process.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME,
                               initializer=lambda: _ident.append(threading.get_ident()))


def on_torch_thread() -> bool:
    """Whether the caller is the torch thread (work then runs inline: queueing would deadlock)."""
    return bool(_ident) and threading.get_ident() == _ident[0]


#: (busy, idle) callbacks: called on the torch thread before and after each piece of work sent
#: to it. The long-work lane pauses its jobs meanwhile (attention_lens/jobs/lane.py), so the
#: interactive views run at their idle speed however many evaluations are under way.
_listeners: list[tuple] = []


def on_activity(busy, idle) -> None:
    """Call ``busy()`` before and ``idle()`` after every piece of work the torch thread runs."""
    _listeners.append((busy, idle))


def _observed(fn, /, *args, **kwargs):
    for busy, _ in _listeners:
        busy()
    try:
        return fn(*args, **kwargs)
    finally:
        for _, idle in reversed(_listeners):
            idle()


def run_on_torch_thread(fn, /, *args, **kwargs):
    """``fn(*args, **kwargs)`` on the torch thread; its result or exception, as if called here,
    in a copy of the caller's context (so gradio's progress, which finds its event through
    context variables, reports from there too)."""
    if on_torch_thread():
        return fn(*args, **kwargs)
    return _executor.submit(contextvars.copy_context().run, _observed, fn, *args, **kwargs).result()


def torch_thread(fn):
    """Decorator: every call of ``fn`` runs on the torch thread."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return run_on_torch_thread(fn, *args, **kwargs)

    return wrapper
