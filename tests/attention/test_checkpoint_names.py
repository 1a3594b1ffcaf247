"""The module name checkpoints record for the attention classes (attention/__init__.CHECKPOINT_MODULE)."""
from __future__ import annotations

import importlib
import inspect
import io
import pickle
import pkgutil

import pytest
import torch
from packaging.requirements import InvalidRequirement, Requirement
from torch import nn

import _attention_lens
import attention_lens.attention as package
from attention_lens.attention import CHECKPOINT_CLASSES, CHECKPOINT_MODULE, create_attention
from tests.pickles import pickled_globals


def defined_in(cls: type, file: str) -> bool:
    """Whether the class body is in ``file`` (read from its functions' code: ``__module__`` is renamed)."""
    return any(getattr(f, "__code__", None) is not None and f.__code__.co_filename == file for f in vars(cls).values())


def test_every_module_class_of_the_package_is_pickled_under_the_checkpoint_module():
    defined = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, nn.Module) and defined_in(obj, module.__file__):
                defined[name] = obj
    assert defined and defined == CHECKPOINT_CLASSES
    for name, cls in defined.items():
        assert cls.__module__ == CHECKPOINT_MODULE
        assert getattr(_attention_lens, name) is cls


def test_the_checkpoint_module_is_no_installable_package_name():
    # pip and uv parse a requirement by PEP 508 (packaging is pip's own parser): a name led by an
    # underscore is refused before any index is asked, so no index can ever serve it.
    with pytest.raises(InvalidRequirement):
        Requirement(CHECKPOINT_MODULE)
    Requirement("attention_lens")  # the control: a plain name parses, and an index could serve it


@pytest.mark.parametrize("name", ["SE", "CBAM", "ECA", "CoordAtt", "EMA", "PolarizedSA"])
def test_a_pickled_model_names_only_torch_and_the_checkpoint_module(name):
    model = nn.Sequential(nn.Conv2d(3, 16, 3), create_attention(name, 16))
    buffer = io.BytesIO()
    torch.save({"model": model}, buffer)
    import zipfile

    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    ours = {g for g in pickled_globals(data) if not g.startswith(("torch.", "collections.", "builtins.", "__builtin__."))}
    assert ours and all(g.startswith(CHECKPOINT_MODULE + ".") for g in ours), ours
    assert f"{CHECKPOINT_MODULE}.{type(model[1]).__name__}" in ours
    assert pickle.loads(pickle.dumps(model[1])).__class__ is type(model[1])
