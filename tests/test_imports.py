"""No import cycles in ganctl/: no module imports one that imports it back, directly or through others.

Imports inside functions count too: a function-level import hides a cycle from Python's import
machinery, not from the reader, and it is how most cycles start. So do imports under
``if TYPE_CHECKING:``: they do not run, but two modules that name each other's types are one
concern split in two, or need what they share moved below both.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ganctl"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its __init__)."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree``, at any depth, type-only ones (``if TYPE_CHECKING:``) included."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the package that module ``name`` (the file ``path``) imports."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:  # relative: from the module's package, up level - 1 more
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            # `from pkg import x` imports the module pkg.x when there is one, else a name of pkg
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source for alias in node.names]
        for target in targets:
            while target and target not in known:  # `import ganctl.a.b` where only ganctl.a is ours, etc.
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imported_modules(name, path, known) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:  # the graph has ~60 nodes: recursion depth is no concern
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return f"{', '.join(component)} ({'; '.join(edges)})"


def test_the_checker_finds_cycles_and_only_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": set(), "g": {"h"}, "h": {"g"}}
    assert cycles(graph) == [["a", "b", "c"], ["g", "h"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_reads_every_kind_of_import(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "from __future__ import annotations\n"
        "import os\n"
        "import ganctl.data.fetch\n"
        "from ganctl import store, __version__\n"
        "from ganctl.data.paired import load_paired\n"
        "from . import images\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ganctl import engine\n"
        "def f():\n"
        "    from ganctl.models import dcgan\n"
        "    import ganctl.tasks as t\n"
    )
    known = {"ganctl", "ganctl.store", "ganctl.images", "ganctl.engine", "ganctl.tasks", "ganctl.data",
             "ganctl.data.fetch", "ganctl.data.paired", "ganctl.models", "ganctl.models.dcgan", "ganctl.m"}
    assert imported_modules("ganctl.m", src, known) == {
        "ganctl", "ganctl.store", "ganctl.images", "ganctl.tasks", "ganctl.data.fetch", "ganctl.data.paired",
        "ganctl.models.dcgan", "ganctl.engine",
    }


def test_no_module_in_ganctl_imports_one_that_imports_it_back():
    graph = import_graph()
    assert len(graph) > 40 and "ganctl.data.loading" in graph["ganctl.train.setup"]  # the walk found the package
    found = cycles(graph)
    assert not found, "import cycles in ganctl/: " + " | ".join(_describe(c, graph) for c in found)


def stage(module: str) -> str:
    """The folder (stage) a module belongs to: ``ganctl.store.layout`` -> ``ganctl.store``; a
    top-level module is its own (``ganctl.config``)."""
    return ".".join(module.split(".")[:2])


def test_no_stage_imports_one_that_imports_it_back():
    """The folders are layers: core below everything, then config and the families, data and the
    models, the store, training, using a generator, evaluation, export, report, and the CLI on top.
    Two folders that import each other, even through different modules, are one layer split in
    two; move what they share below both. The package's own ``__init__`` (its version) is below all."""
    graph: dict[str, set[str]] = {}
    for module, imported in import_graph().items():
        here = stage(module)
        graph.setdefault(here, set()).update(stage(m) for m in imported if m != "ganctl" and stage(m) != here)
    assert {"ganctl.core", "ganctl.store", "ganctl.data", "ganctl.train", "ganctl.cli"} <= set(graph)
    found = cycles(graph)
    assert not found, "stages importing each other: " + " | ".join(_describe(c, graph) for c in found)
