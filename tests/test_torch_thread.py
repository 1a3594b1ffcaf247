"""All torch work of the dashboard runs on one thread, whoever calls."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from attention_lens.torch_thread import on_torch_thread, run_on_torch_thread, torch_thread


def test_calls_from_many_threads_run_on_one_thread_and_return_their_results():
    with ThreadPoolExecutor(4) as callers:
        idents = list(callers.map(lambda i: run_on_torch_thread(lambda: (i, threading.get_ident())), range(12)))
    assert [i for i, _ in idents] == list(range(12))
    assert len({ident for _, ident in idents}) == 1 and idents[0][1] != threading.get_ident()


def test_exceptions_reach_the_caller_and_nested_calls_run_inline():
    def boom():
        raise ValueError("bad image")

    with pytest.raises(ValueError, match="bad image"):
        run_on_torch_thread(boom)

    @torch_thread
    def outer():
        return on_torch_thread(), run_on_torch_thread(on_torch_thread)  # would deadlock if queued

    assert outer() == (True, True) and not on_torch_thread()


def test_dashboard_handlers_run_their_forwards_on_the_torch_thread(tiny_weights, bccd_test_images):
    from app import create_app
    from attention_lens.app.attention_handlers import run_attention
    from attention_lens.app.compare_handlers import run_compare

    _, store = create_app(str(tiny_weights), [])
    seen = []
    hooks = [store.get(n).register_forward_pre_hook(lambda m, a: seen.append(threading.get_ident()))
             for n in store.names]
    try:
        image = str(bccd_test_images[0])
        with ThreadPoolExecutor(2) as gradio_workers:  # gradio calls handlers from its worker threads
            gradio_workers.submit(run_compare, store, image, store.names, None, 0.25, 0.7, 320, None).result()
            gradio_workers.submit(run_attention, store, image, store.names[:2], "jet", 0.5, 0.25, 320).result()
    finally:
        for h in hooks:
            h.remove()
    torch_ident = run_on_torch_thread(threading.get_ident)
    assert len(seen) >= len(store.names) and set(seen) == {torch_ident}


def test_work_on_the_torch_thread_sees_the_callers_context_variables():
    """gradio's Progress finds its event through context variables: a progress call made from
    the torch thread must reach the caller's event, not nobody's."""
    import contextvars

    event = contextvars.ContextVar("event", default=None)

    def caller(name):
        event.set(name)
        return run_on_torch_thread(event.get)

    with ThreadPoolExecutor(4) as callers:
        assert list(callers.map(caller, ["a", "b", "c", "d"])) == ["a", "b", "c", "d"]
    assert event.get() is None  # the caller's own context is unchanged


def test_activity_listeners_bracket_each_piece_of_work(monkeypatch):
    from attention_lens import torch_thread

    seen = []
    monkeypatch.setattr(torch_thread, "_listeners", [])
    torch_thread.on_activity(lambda: seen.append("busy"), lambda: seen.append("idle"))
    assert torch_thread.run_on_torch_thread(lambda: seen.append("work") or 7) == 7
    with __import__("pytest").raises(ZeroDivisionError):
        torch_thread.run_on_torch_thread(lambda: 1 / 0)
    assert seen == ["busy", "work", "idle", "busy", "idle"]
