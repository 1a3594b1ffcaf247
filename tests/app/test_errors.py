"""A handler as a gradio event: what gradio sees of it, and what the page is told when it fails."""
from __future__ import annotations

import asyncio
import inspect

import gradio as gr
import pytest
from gradio.helpers import special_args

from attention_lens.app.errors import UserError, event


def handler(store: dict, image: str | None, size: int = 320, request: gr.Request = None, progress=gr.Progress()):
    """Documented as the API shows it."""
    if image == "bad":
        raise UserError("That image cannot be read.")
    return store["name"], image, size, request


async def waiting(store: dict, x: int = 1):
    if x < 0:
        raise UserError("x must be positive.")
    return store["name"], x


def test_gradio_sees_the_unbound_parameters_with_their_special_arguments():
    call = event(handler, {"name": "zoo"})
    assert list(inspect.signature(call).parameters) == ["image", "size", "request", "progress"]
    assert call.__name__ == "handler" and call.__doc__ == handler.__doc__
    inputs, progress_index, _, _ = special_args(call, ["a.jpg", 640], request=None)
    assert progress_index == 3 and len(inputs) == 4  # gradio inserted the request and the progress
    assert call("a.jpg", 640)[:3] == ("zoo", "a.jpg", 640)


def test_a_user_error_reaches_the_page_as_its_message_only():
    with pytest.raises(gr.Error) as raised:
        event(handler, {"name": "zoo"})("bad")
    assert raised.value.message == "That image cannot be read." and not raised.value.print_exception
    with pytest.raises(ZeroDivisionError):  # anything else is not dressed up here
        event(lambda store, x: x / 0, {})(1)


def test_an_async_handler_stays_a_coroutine_function():
    call = event(waiting, {"name": "zoo"})
    assert inspect.iscoroutinefunction(call) and list(inspect.signature(call).parameters) == ["x"]
    assert asyncio.run(call(2)) == ("zoo", 2)
    with pytest.raises(gr.Error, match="x must be positive"):
        asyncio.run(call(-1))
