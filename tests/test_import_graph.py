"""The import graph of ``bot`` and ``channels``: ``bot`` (the channel-neutral core) never imports
``channels``, and no two modules import each other at module level, directly or round a loop
(imports inside functions and under ``TYPE_CHECKING`` do not count for cycles: they run later).
An AST walk of the sources, so the rule holds for modules no test happens to import."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("bot", "channels")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = list(rel.parts)
            if "migrations" in parts:  # Alembic's scripts, loaded by Alembic
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(
    tree: ast.AST, module: str, is_package: bool, known: dict[str, Path], *, top: bool
) -> Iterator[tuple[str, int]]:
    """(imported module, line) of every import in ``tree``; ``top``: module level only."""

    def resolve(node: ast.ImportFrom) -> list[str]:
        base = node.module or ""
        if node.level:
            anchor = module.split(".")
            anchor = anchor if is_package else anchor[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        out = []
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            out.append(sub if sub in known else base)
        return out

    def walk(nodes: list[ast.stmt]) -> Iterator[tuple[str, int]]:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name, node.lineno
            elif isinstance(node, ast.ImportFrom):
                for name in resolve(node):
                    yield name, node.lineno
            elif isinstance(node, ast.If) and _is_type_checking(node):
                if not top:
                    yield from walk(node.body)
                yield from walk(node.orelse)
            elif top and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            else:
                for field in ("body", "orelse", "finalbody"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        yield from walk([n for n in inner if isinstance(n, ast.stmt)])
                for handler in getattr(node, "handlers", None) or []:
                    yield from walk(handler.body)

    assert isinstance(tree, ast.Module)
    yield from walk(tree.body)


def _graph(*, top: bool) -> dict[str, dict[str, int]]:
    known = _modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges: dict[str, int] = {}
        for name, line in _imports(tree, module, path.name == "__init__.py", known, top=top):
            target = name
            while target and target not in known:  # ``import bot.x.y`` of a name in bot.x
                target = target.rpartition(".")[0]
            if target and target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _is_ancestor(a: str, b: str) -> bool:
    return b.startswith(a + ".")


def test_no_module_level_import_cycles() -> None:
    graph = _graph(top=True)
    # a package importing its own submodules (to re-export them) is no cycle: Python imports
    # the package first, then the submodule, whichever is named
    for module, edges in graph.items():
        for target in list(edges):
            if _is_ancestor(target, module):
                del edges[target]
    cycles = _cycles(graph)
    described = [
        " -> ".join(f"{m} (line {graph[m][n]})" for m, n in zip(c, [*c[1:], c[0]], strict=True))
        for c in cycles
    ]
    assert not cycles, "import cycles at module level:\n" + "\n".join(described)


def test_bot_never_imports_channels() -> None:
    graph = _graph(top=False)
    leaks = [
        f"{m} imports {t} (line {line})"
        for m, edges in graph.items()
        if m.split(".")[0] == "bot"
        for t, line in edges.items()
        if t.split(".")[0] == "channels"
    ]
    assert not leaks, "bot/ is channel-neutral:\n" + "\n".join(leaks)


def test_the_walk_sees_imports() -> None:
    """The checks above would pass on an empty graph: the walk must find the real edges."""
    graph = _graph(top=True)
    assert "bot.engine.core" in graph["channels.cli"] or "bot.cli" in graph["channels.cli"]
    assert "bot.engine.writer" in graph["bot.engine.core"]
    assert "bot.runtime" in graph["channels.app"]
