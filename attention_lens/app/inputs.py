"""What a request names, checked before anything is allocated: uploaded files (only this
session's uploads), the image size, model names, and the memory the chosen models would take."""
from __future__ import annotations

from pathlib import Path

from attention_lens.app.errors import UserError
from attention_lens.modeling.catalog import ModelStore
from attention_lens.modeling.checkpoints import CheckpointError
from attention_lens.modeling.cost import CostError, check_request
from attention_lens.runtime.letterbox import ImageSizeError, check_image_size
from attention_lens.torch_thread import run_on_torch_thread

#: The one answer for a file path a request names that is neither an upload nor a shipped file,
#: whether or not that path exists.
NOT_AN_UPLOAD = "That file was not uploaded here; upload it again."


def uploaded_path(value, shipped=()) -> str | None:
    """The local path in a raw gradio file payload, if it is an upload or a file the app ships.

    The events take raw payloads (``preprocess=False``, so that bad images reach our decoder's
    clear messages), and a raw payload's path is whatever the request says. Only a file inside
    gradio's upload folder, or one of ``shipped`` (the example images), is accepted; symlinks
    are resolved first. Anything else gets NOT_AN_UPLOAD, the same words whether it exists or not.
    """
    import os

    from gradio.utils import get_upload_folder

    if value is None or value == "":
        return None
    path = value.get("path") if isinstance(value, dict) else getattr(value, "name", value)
    if not isinstance(path, str) or not path or "\0" in path:
        raise UserError(NOT_AN_UPLOAD)
    real = Path(os.path.realpath(path))
    root = Path(os.path.realpath(get_upload_folder()))
    if (real.is_relative_to(root) and real != root) or str(real) in {os.path.realpath(s) for s in shipped}:
        return str(real)
    raise UserError(NOT_AN_UPLOAD)


def image_size(value) -> int:
    """The request's image size as an int within the views' limits, or UserError: checked first,
    before any model is loaded or anything of that size allocated."""
    try:
        return check_image_size(value)
    except ImageSizeError as e:
        raise UserError(str(e)) from None


def within_budget(models: dict, imgsz: int) -> None:
    """UserError when a model's forward at ``imgsz`` would take more activation memory than a
    request may (each model's cost was measured on the meta device when it was loaded)."""
    try:
        check_request(models, imgsz)
    except CostError as e:
        raise UserError(str(e)) from None


def check_names(store: ModelStore, selected: list | None) -> list[str]:
    """The picked names, each a shipped model's, or UserError naming the first that is not."""
    for name in selected or []:
        if name not in store.entries:
            raise UserError(f"Unknown model {str(name)[:60]!r}; pick one of the listed models.")
    return [str(n) for n in selected or []]


#: Checkpoints one request may upload (each is read in its own limited process).
MAX_UPLOADS = 8


def resolve_models(store: ModelStore, selected: list[str] | None, uploads: list | None, progress=None) -> dict:
    """name -> model for the picked catalogue entries (in the catalogue's order: baseline first,
    then by placement) and the uploaded checkpoints.

    Runs on the caller's thread: an upload is read in a limited child process while this thread
    waits, so other users' forwards on the torch thread go on meanwhile."""
    models = {}
    check_names(store, selected)
    if len(uploads or []) > MAX_UPLOADS:
        raise UserError(f"At most {MAX_UPLOADS} checkpoints at a time.")
    rank = {n: i for i, n in enumerate(store.names)}
    picked = sorted(set(selected or []), key=rank.__getitem__)  # catalogue order, whatever the click order
    cold = [n for n in picked if n not in store.loaded]  # first use: read, built and warmed up now
    for name in picked:
        if progress is not None and name in cold:
            progress((cold.index(name), len(cold)), desc=f"Loading {len(cold)} model(s) on first use: {name}")
        models[name] = run_on_torch_thread(store.get, name)
    for path in uploads or []:
        try:
            key, model = store.upload(path)
        except CheckpointError as e:
            raise UserError(f"Upload refused: {e}") from None
        models[key] = model
    return models
