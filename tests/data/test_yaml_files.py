"""Plain YAML from uploads: aliases refused before they expand, sizes bounded."""
from __future__ import annotations

import resource

import pytest

from attention_lens.data.datasets import DatasetError, read_split
from attention_lens.experiments.runs import load_run
from attention_lens.data.yaml_files import YamlError, load_plain_yaml


def alias_bomb(levels: int = 7) -> str:
    """~450 bytes that PyYAML's safe_load expands to 10**levels leaves (issue 31's data.yaml)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append(f"names: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_before_it_expands():
    text = alias_bomb()
    assert len(text) < 600
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(YamlError, match="aliases"):
        load_plain_yaml(text.encode())
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20_000  # KB: nothing was expanded
    # The same document without aliases reads as PyYAML reads it.
    assert load_plain_yaml(b"names: {0: RBC, 1: WBC}\ntest: images/test\n") == {
        "names": {0: "RBC", 1: "WBC"}, "test": "images/test"}


def test_size_encoding_and_syntax_are_refused_with_plain_messages():
    with pytest.raises(YamlError, match="larger than 64 KB"):
        load_plain_yaml(b"a: " + b"x" * (65 * 2**10))
    with pytest.raises(YamlError, match="not UTF-8"):
        load_plain_yaml(b"a: \xff\xfe")
    with pytest.raises(YamlError, match="not valid YAML"):
        load_plain_yaml(b"a: [1, 2")


def test_a_data_set_and_a_run_with_an_alias_bomb_are_refused_by_name(tmp_path):
    (tmp_path / "data.yaml").write_text("test: images/test\n" + alias_bomb())
    with pytest.raises(DatasetError, match="data.yaml uses YAML aliases"):
        read_split(tmp_path / "data.yaml", "test", confine=True)
    run = tmp_path / "run"
    run.mkdir()
    (run / "args.yaml").write_text(alias_bomb())
    loaded = load_run(run)
    assert loaded.args == {} and any("args.yaml uses YAML aliases" in p for p in loaded.problems)
