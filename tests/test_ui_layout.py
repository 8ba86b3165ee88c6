"""The UI layer's written rule, checked: shared plumbing in ui/, one module per topic in ui/topics/, pages import a
topic module as ``ui_<name>``, the library never imports Streamlit, and no import cycle under ui/ (counting imports
inside functions too: a lazy import is still a dependency)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> list[tuple[str, str | None, str | None]]:
    """(module, imported name, alias) for every import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, None, a.asname) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import (the rule asks for absolute ui.… imports)"
            out += [(node.module, a.name, a.asname) for a in node.names]
    return out


def _ui_graph() -> dict[str, set[str]]:
    files = sorted((ROOT / "ui").rglob("*.py"))
    mods = {_module(p) for p in files}
    graph = {}
    for p in files:
        deps = set()
        for mod, name, _ in _imports(p):
            for cand in (f"{mod}.{name}" if name else None, mod):
                if cand in mods:
                    deps.add(cand)
                    break
        graph[_module(p)] = deps - {_module(p), "ui", "ui.topics"}
    return graph


def test_no_import_cycle_under_ui():
    graph, state, stack = _ui_graph(), {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            assert state.get(d) != "open", "import cycle: " + " → ".join(stack[stack.index(d):] + [d])
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_shared_plumbing_never_imports_a_topic():
    for m, deps in _ui_graph().items():
        if not m.startswith("ui.topics"):
            assert not {d for d in deps if d.startswith("ui.topics")}, f"{m} (shared) imports a topic module"


def test_topic_modules_are_imported_as_ui_name():
    for p in [*(ROOT / "app_pages").glob("*.py"), *(ROOT / "ui").rglob("*.py"), ROOT / "app.py"]:
        for mod, name, alias in _imports(p):
            if mod == "ui.topics" and name:
                assert alias == f"ui_{name}", f"{p.name}: `from ui.topics import {name}` must be `as ui_{name}`"


def test_library_never_imports_streamlit():
    for p in (ROOT / "compress_core").rglob("*.py"):
        assert not [m for m, *_ in _imports_any(p) if m.split(".")[0] == "streamlit"], p


def _imports_any(path: Path):
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name,) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module,))
    return out
