"""Where the models run (attention_lens.device): the setting's spellings, what ``auto`` picks, and
clear refusals, on a machine without a GPU and one that pretends to have two."""
from __future__ import annotations

import pytest
import torch

from attention_lens.device import DEVICE_ENV, DeviceError, resolve_device, ultralytics_device


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_auto_is_the_first_gpu_where_torch_sees_one_else_the_cpu(two_gpus, monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert resolve_device() == torch.device("cuda", 0) == resolve_device("auto")
    assert resolve_device("cuda:1") == torch.device("cuda", 1) == resolve_device("1")
    assert resolve_device(" CUDA ") == torch.device("cuda", 0)
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert resolve_device() == torch.device("cpu")  # the environment's, when no setting is given
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # a given setting wins
    assert ultralytics_device(torch.device("cuda", 1)) == "1" and ultralytics_device(torch.device("cpu")) == "cpu"


def test_auto_on_a_machine_without_a_gpu_is_the_cpu_and_asking_for_one_is_refused(no_gpu, monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert resolve_device() == torch.device("cpu")
    with pytest.raises(DeviceError, match="sees no CUDA device"):
        resolve_device("cuda")


@pytest.mark.parametrize("text, why", [("cuda:2", "sees 2 CUDA device"), ("mps", "expected auto, cpu"),
                                       ("cuda:0; rm -rf /", "expected auto, cpu"), ("gpu", "expected auto, cpu")])
def test_other_settings_are_refused_with_what_is_accepted(two_gpus, text, why):
    with pytest.raises(DeviceError, match=why):
        resolve_device(text)
