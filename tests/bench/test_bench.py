"""The bench compares like with like: its reference implementations compute what the modules do."""
from __future__ import annotations

import pytest
import torch

from bench.reference_attention import FLOOR, READER
from bench.run import _prediction, table
from attention_lens.attention import ATTENTION_MODULES, create_attention


def randomised(name: str, channels: int = 64, **kwargs):
    torch.manual_seed(0)
    m = create_attention(name, channels, **kwargs).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.5)
        for b in m.buffers():  # BN running stats, so that BN is not the identity
            if b.is_floating_point():
                b.uniform_(0.5, 1.5)
    return m


@pytest.mark.parametrize("name", list(ATTENTION_MODULES))
def test_reader_modules_compute_what_ours_compute(name):
    m = randomised(name)
    reader = READER[name](m).eval()
    x = torch.randn(2, 64, 12, 9)
    with torch.no_grad():
        torch.testing.assert_close(reader(x), m(x), atol=1e-5, rtol=1e-5)
    # Built on our module's layers: the reader adds no parameters of its own.
    assert {id(p) for p in reader.parameters()} <= {id(p) for p in m.parameters()}


def test_reader_polarized_sa_follows_the_parallel_layout_too():
    m = randomised("PolarizedSA", layout="parallel")
    x = torch.randn(1, 64, 7, 11)
    with torch.no_grad():
        torch.testing.assert_close(READER["PolarizedSA"](m)(x), m(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(FLOOR))
def test_floor_functions_compute_what_ours_compute(name):
    m = randomised(name)
    x = torch.randn(2, 64, 12, 9)
    with torch.no_grad():
        torch.testing.assert_close(FLOOR[name](m, x), m(x), atol=1e-5, rtol=1e-5)


def test_gflops_predict_latency_only_within_the_noise_of_identical_models():
    assert _prediction({"latency ratio": 1.02, "GFLOPs ratio (torch)": 1.006}) == "yes"
    verdict = _prediction({"latency ratio": 1.10, "GFLOPs ratio (torch)": 1.006})
    assert verdict.startswith("no") and "+10%" in verdict and "+0.60%" in verdict


def test_markdown_table_lists_every_row():
    text = table([{"a": 1.23456, "b": "x"}, {"a": 2.0, "b": "y"}], {"a": ".2f"})
    assert text.splitlines()[0] == "| a | b |" and "| 1.23 | x |" in text and "| 2.00 | y |" in text
