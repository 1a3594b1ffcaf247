"""What the browser is told when a request fails: the domain's errors as their own message,
anything unforeseen as one line with a reference to the server log (no traceback, no library text)."""
from __future__ import annotations

from contextlib import contextmanager

from attention_lens.analysis.compare import CompareError
from attention_lens.analysis.images import ImageError
from attention_lens.modeling.checkpoints import CheckpointError
from attention_lens.modeling.cost import CostError
from attention_lens.runtime.letterbox import ImageSizeError

USER_ERRORS = (ImageError, CheckpointError, CompareError, ImageSizeError, CostError)


class UserError(Exception):
    """Raised by handlers with a message meant for the browser (the UI shows it as gr.Error)."""


def unexpected(e: Exception) -> UserError:
    """A bug or an unforeseen input: log the traceback here, give the browser one clear line."""
    import logging
    import secrets

    ref = secrets.token_hex(3)  # ties the user's message to the log entry without showing library text
    logging.getLogger("attention_lens").exception("handler failed [%s]", ref)
    return UserError(f"Something went wrong on our side (reference {ref} in the server log). The app is still "
                     "running; try another image or model.")


@contextmanager
def user_facing(*domain_errors: type[Exception]):
    """Inside: the domain's errors (``USER_ERRORS`` and ``domain_errors``) become UserError with
    their own message; anything unforeseen becomes one clear line, its traceback only in the log."""
    try:
        yield
    except (*USER_ERRORS, *domain_errors) as e:
        raise UserError(str(e)) from None
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001  (the browser gets a message, the log the traceback)
        raise unexpected(e) from None


def event(handler, *bound):
    """``handler`` as a gradio event function, its first arguments bound (the store, the examples):
    gradio sees the rest of its parameters (names, defaults, and the ``gr.Request``,
    ``gr.SelectData`` and ``gr.Progress`` it injects by annotation or default), its name and its
    docstring (what /view_api shows); a UserError it raises reaches the page as gr.Error, its
    message only."""
    import functools
    import inspect
    import typing

    import gradio as gr

    signature = inspect.signature(handler)
    rest = list(signature.parameters.values())[len(bound):]
    hints = typing.get_type_hints(handler)

    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def call(*args, **kwargs):
            try:
                return await handler(*bound, *args, **kwargs)
            except UserError as e:
                raise gr.Error(str(e), print_exception=False) from None
    else:
        @functools.wraps(handler)
        def call(*args, **kwargs):
            try:
                return handler(*bound, *args, **kwargs)
            except UserError as e:
                raise gr.Error(str(e), print_exception=False) from None

    del call.__wrapped__  # gradio reads the signature below, not the handler's
    call.__signature__ = signature.replace(parameters=rest)
    call.__annotations__ = {p.name: hints[p.name] for p in rest if p.name in hints}
    return call
