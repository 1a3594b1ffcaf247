"""The package's layers import one way: a module never imports from a layer below it."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "components"
#: Top to bottom; each may import from the ones before it.
ORDER = ["env", "torch_thread", "jobs", "attention", "modeling", "experiments", "analysis", "app", "cli"]


def layer_of(parts: tuple[str, ...]) -> str | None:
    return parts[0] if parts and parts[0] in ORDER else None


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return found


def test_no_module_imports_from_a_later_layer():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        mine = layer_of(path.relative_to(PACKAGE).with_suffix("").parts)
        if mine is None:
            continue
        for module in imports(path):
            parts = tuple(module.split("."))
            if parts[0] == "bench":
                wrong.append((path.name, module))  # the product never depends on the bench
            other = layer_of(parts[1:]) if parts[0] == "components" else None
            if other and ORDER.index(other) > ORDER.index(mine):
                wrong.append((str(path.relative_to(PACKAGE)), module))
    assert not wrong, wrong


def test_every_module_belongs_to_a_layer():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.stem not in ORDER + ["__init__", "__main__"]]
    assert not loose, f"modules outside the layers: {loose}"
