"""The code's shape, read from the source with :mod:`ast` (nothing is imported): the import graph of ``edgecnn/``
has no cycle, counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgecnn"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, known: set[str]) -> set[str]:
    """edgecnn modules ``path`` imports anywhere in the file (``from edgecnn import data`` names the module
    ``edgecnn.data``), plus the packages that importing them runs (``edgecnn.train`` for ``edgecnn.train.fit``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            while name:
                found.add(name)
                name = name.rpartition(".")[0]
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imported(path, set(mods)) - {name} for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_import_graph_reads_function_level_imports():
    graph = import_graph()
    assert "edgecnn.runtime" in graph["edgecnn.cli"]  # imported inside the commands only


def test_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


#: The longest a function may be, in lines from ``def`` to its end, its docstring aside (developers' guide).
MAX_FUNCTION_LINES = 80


def function_lengths(path: Path) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length without the docstring) of every function in ``path``."""
    out = []

    def walk(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = child.body[0] if child.body else None
                doc_lines = (doc.end_lineno - doc.lineno + 1 if isinstance(doc, ast.Expr) and
                             isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str) else 0)
                out.append((prefix + child.name, child.lineno, child.end_lineno - child.lineno + 1 - doc_lines))
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(ast.parse(path.read_text(encoding="utf-8")), "")
    return out


def test_function_lengths_are_measured_without_the_docstring(tmp_path):
    src = tmp_path / "m.py"
    src.write_text('def f():\n    """Doc\n    more."""\n    return 1\n\n\nclass C:\n    def g(self):\n        pass\n')
    assert function_lengths(src) == [("f", 1, 2), ("C.g", 8, 2)]


def test_no_function_is_longer_than_80_lines():
    too_long = [f"{path.relative_to(PACKAGE.parent)}:{line} {name} ({n} lines)"
                for path in modules().values() for name, line, n in function_lengths(path) if n > MAX_FUNCTION_LINES]
    assert too_long == []


def test_the_device_side_never_imports_the_workstation_side():
    """Every module outside edgecnn.train (the CLI and ``python -m edgecnn`` aside: the workstation commands import
    edgecnn.train when they run) reaches no edgecnn.train module, directly or through others."""
    graph = import_graph()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    device = [m for m in graph if not m.startswith("edgecnn.train") and m not in ("edgecnn.cli", "edgecnn.__main__")]
    leaks = {m: sorted(x for x in reach(m) if x.startswith("edgecnn.train")) for m in device}
    assert {m: v for m, v in leaks.items() if v} == {}
