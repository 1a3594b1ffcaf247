"""The one hook keeper: owner's thread only, outputs replaceable, every hook gone afterwards."""
from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from attention_lens.runtime.capture import ThreadHooks


def test_hooks_act_on_the_owners_thread_only_and_can_replace_an_output():
    layer = nn.Identity()
    seen, inputs = [], []
    with ThreadHooks() as hooks:
        hooks.on_output(layer, lambda out: seen.append(out.clone()) or out * 2)
        hooks.on_input(layer, lambda x: inputs.append(x.clone()))
        assert torch.equal(layer(torch.ones(2)), torch.full((2,), 2.0))  # replaced
        other = []
        t = threading.Thread(target=lambda: other.append(layer(torch.ones(2))))
        t.start()
        t.join()
        assert torch.equal(other[0], torch.ones(2))  # another thread: untouched, not recorded
    assert len(seen) == len(inputs) == 1
    assert torch.equal(layer(torch.ones(2)), torch.ones(2)) and len(seen) == 1  # removed after the block


def test_hooks_are_removed_when_the_block_fails():
    layer = nn.Identity()
    with pytest.raises(RuntimeError):
        with ThreadHooks() as hooks:
            hooks.on_output(layer, lambda out: out)
            hooks.on_input(layer, lambda x: None)
            raise RuntimeError("forward failed")
    assert not layer._forward_hooks and not layer._forward_pre_hooks
