"""Cache identity of a model: content, wiring and structure, never the name (issue 31, finding 6)."""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from attention_lens.modeling.load import load_model
from attention_lens.modeling.identity import model_identity

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ultralytics" / "u8-plain-best.pt"


def test_the_same_file_loaded_twice_has_one_identity_before_and_after_a_forward():
    a, b = load_model(FIXTURE), load_model(FIXTURE)
    key = model_identity(a)
    with torch.no_grad():
        a(torch.zeros(1, 3, 160, 224))  # Detect caches anchors for the last shape: not part of the identity
    assert model_identity(a) == key == model_identity(b)


def test_a_rewired_model_with_the_same_weights_has_another_identity():
    model = load_model(FIXTURE)
    rewired = copy.deepcopy(model)
    concat = next(m for m in rewired.model if type(m).__name__ == "Concat")
    concat.f = [concat.f[1], concat.f[0]]  # the same inputs, concatenated the other way round
    assert {k: v.shape for k, v in rewired.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    with torch.no_grad():
        x = torch.rand(1, 3, 128, 128)
        assert not torch.equal(model(x)[0], rewired(x)[0])  # it computes something else
    assert model_identity(rewired) != model_identity(model)


def test_other_weights_have_another_identity_and_a_salt_separates_uses():
    model = load_model(FIXTURE)
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    assert model_identity(other) != model_identity(model)
    assert model_identity(model, "onnx|") != model_identity(model)


def test_a_loaded_models_identity_is_hashed_once_and_salted_apart(monkeypatch):
    from attention_lens.modeling import identity

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1))
    want = model_identity(model)
    calls = []
    monkeypatch.setattr(identity, "model_identity", lambda m, salt="": calls.append(m) or want)
    assert identity.loaded_identity(model) == want == identity.loaded_identity(model)
    salted = identity.loaded_identity(model, "onnx|")
    assert salted != want and salted == identity.loaded_identity(model, "onnx|")
    assert len(calls) == 1  # every later ask, salted or not, reuses the one hash
