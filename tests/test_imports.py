"""The package has no import cycles: every import counts, those inside functions and
under `if TYPE_CHECKING:` too (a type checker follows those, and a cycle there is the
same tangle of ideas), as `../shared/tools/structure_report.py` counts them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import edgekit

PACKAGE = Path(edgekit.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def _target(name: str) -> str | None:
    """The edgekit module `name` refers to: itself, or its nearest enclosing module."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _edges(module: str, path: Path) -> set[str]:
    is_package = path.name == "__init__.py"
    edges: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a.b import c` runs a.b (its __init__ too), and a.b.c when that is a module.
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        for name in names:
            if name.split(".")[0] != "edgekit":
                continue
            target = _target(name)
            if target and target != module:
                edges.add(target)
    return edges


GRAPH = {m: _edges(m, p) for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_the_walk_sees_imports_inside_functions() -> None:
    # model.py reads formats at run time; the walk must see that edge, or it proves nothing.
    assert "edgekit.formats" in GRAPH["edgekit.model"]
    assert "edgekit.errors" in GRAPH["edgekit.formats"]
    assert GRAPH["edgekit.signature"] == set()


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_leaf_modules_import_only_errors() -> None:
    for leaf in ("edgekit.signature", "edgekit.vocab", "edgekit.errors"):
        assert GRAPH[leaf] <= {"edgekit.errors"}, (leaf, GRAPH[leaf])


def test_the_walk_sees_type_checking_imports() -> None:
    # runtimes/base.py names Requests only for type checking; that edge counts.
    assert "edgekit.runtimes.concurrent" in GRAPH["edgekit.runtimes.base"]
