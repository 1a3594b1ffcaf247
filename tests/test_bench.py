"""The bench compares like with like: its plain implementations compute what the modules do."""
from __future__ import annotations

import pytest
import torch

from components.attention import ATTENTION_MODULES, create_attention
from components.bench import PLAIN, table


@pytest.mark.parametrize("name", list(ATTENTION_MODULES))
def test_plain_versions_match_the_modules(name):
    torch.manual_seed(0)
    m = create_attention(name, 64).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.5)
    x = torch.randn(2, 64, 12, 9)
    with torch.no_grad():
        torch.testing.assert_close(PLAIN[name](m, x), m(x), atol=1e-5, rtol=1e-5)


def test_markdown_table_lists_every_row():
    text = table([{"a": 1.23456, "b": "x"}, {"a": 2.0, "b": "y"}], {"a": ".2f"})
    assert text.splitlines()[0] == "| a | b |" and "| 1.23 | x |" in text and "| 2.00 | y |" in text
