"""The package's layers import one way: a module never imports from a layer below it."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "attention_lens"
#: Top to bottom; each may import from the ones before it.
ORDER = ["env", "device", "cache", "torch_thread", "jobs", "data", "attention", "modeling", "experiments", "runtime", "analysis",
         "evaluation", "views", "app", "cli"]


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
            other = layer_of(parts[1:]) if parts[0] == "attention_lens" else None
            if other and ORDER.index(other) > ORDER.index(mine):
                wrong.append((str(path.relative_to(PACKAGE)), module))
    assert not wrong, wrong


def test_every_module_belongs_to_a_layer():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.stem not in ORDER + ["__init__", "__main__"]]
    assert not loose, f"modules outside the layers: {loose}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """attention_lens module -> the attention_lens modules it imports, at the top or inside a function."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for module in imports(path):
            # ``from attention_lens.x import y``: y may be a module of package x
            for candidate in (module, *(f"{module}.{n}" for n in _imported_names(path, module))):
                if candidate in modules and candidate != name and candidate != "attention_lens":
                    found.add(candidate)
        graph[name] = found
    return graph


def _imported_names(path: Path, module: str) -> list[str]:
    return [a.name for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module == module for a in node.names]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_detection_finds_a_constructed_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules_even_through_function_local_imports():
    assert cycles(import_graph()) == []


def test_every_package_says_what_it_holds():
    """Each folder of the package is a regular package whose docstring names its modules."""
    import ast as _ast

    for folder in [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"]:
        init = folder / "__init__.py"
        assert init.is_file(), f"{folder.name}/ has no __init__.py"
        doc = _ast.get_docstring(_ast.parse(init.read_text())) or ""
        modules = [p.stem for p in folder.glob("*.py") if p.stem != "__init__"]
        unnamed = [m for m in modules if m not in doc]
        assert not unnamed, f"{folder.name}/__init__.py does not mention {unnamed}"
