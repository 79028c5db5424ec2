"""What the import-linter contracts in pyproject.toml cannot say: what a command loads at run
time (its imports are lazy on purpose), which names one module may take from another, and
that no module imports itself back through others."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
OWN = ("veotui", "tests")


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_own_module(name: str, root: Path) -> bool:
    where = root.joinpath(*name.split("."))
    return name.split(".")[0] in OWN and (where.with_suffix(".py").is_file() or where.is_dir())


def absolute(node: ast.ImportFrom, path: Path, root: Path) -> str:
    """The module a ``from`` import names, a relative one resolved against ``path``."""
    if not node.level:
        return node.module or ""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_from(root: Path) -> Iterator[tuple[Path, str, str]]:
    """Every ``from X import name`` under ``root``: (file, module, name)."""
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    yield path.relative_to(ROOT), node.module, alias.name


def private_names_taken(path: Path, root: Path = ROOT) -> Iterator[str]:
    """The private names of veotui's (or the tests') other modules that ``path`` takes:
    ``from m import _x`` (absolute or relative), ``from m._p import x``, or ``m._x`` where
    ``m`` is a module it imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    itself = module_name(path, root)
    where = path.relative_to(root)
    modules: dict[str, str] = {}  # local name -> the module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                modules[local] = alias.name if alias.asname else local
                if alias.name.split(".")[0] in OWN and any(private(p) for p in alias.name.split(".")):
                    yield f"{where}:{node.lineno}: import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            module = absolute(node, path, root)
            if module.split(".")[0] not in OWN or module == itself:
                continue
            for alias in node.names:
                if private(alias.name) or any(private(p) for p in module.split(".")):
                    yield f"{where}:{node.lineno}: from {module} import {alias.name}"
                if is_own_module(f"{module}.{alias.name}", root):
                    modules[alias.asname or alias.name] = f"{module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            head, _, rest = ast.unparse(node.value).partition(".")
            if head in modules:
                module = ".".join(filter(None, [modules[head], rest]))
                if is_own_module(module, root) and module != itself:
                    yield f"{where}:{node.lineno}: {module}.{node.attr}"


def test_a_client_verb_loads_only_what_it_uses():
    # ``veotui jobs`` in a script: the command line, the verbs and the HTTP client, and none
    # of the engine, the store, the server, the TUI or Pillow (httpx itself brings Rich).
    code = (
        "import sys\n"
        "import veotui.cli, veotui.cli.verbs, veotui.backend.remote\n"
        "heavy = ('PIL', 'textual', 'fastapi', 'uvicorn', 'google', 'av', 'sqlite3', 'veotui.store',"
        " 'veotui.engine', 'veotui.server', 'veotui.tui', 'veotui.logs')\n"
        "print(','.join(sorted({m.split('.')[0] if not m.startswith('veotui') else m for m in sys.modules"
        " if any(m == h or m.startswith(h + '.') for h in heavy)})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_no_module_imports_a_private_name_of_another():
    """A name shared between modules is public; tests use public names too."""
    offenders = [
        offender
        for root in (ROOT / "veotui", ROOT / "tests")
        for path in sorted(root.rglob("*.py"))
        for offender in private_names_taken(path)
    ]
    assert offenders == []


def test_the_private_name_check_sees_every_way_of_taking_a_name(tmp_path):
    core = tmp_path / "veotui" / "core"
    core.mkdir(parents=True)
    for name in ("__init__", "job", "request", "prices", "text"):
        (core / f"{name}.py").write_text("")
    (core / "_hidden.py").write_text("")
    probe = core / "probe.py"
    probe.write_text(
        "from veotui.core.job import _secret, Job\n"
        "from .request import _check\n"
        "from veotui.core import prices\n"
        "import veotui.core.text as text\n"
        "import veotui.core._hidden\n"
        "import veotui\n"
        "from veotui.core.probe import _mine\n"
        "_own = 1\n"
        "prices._table, text._strip, veotui.core.job._deep, prices.public, _own, Job._private_attribute\n"
    )
    assert sorted(line.split(": ", 1)[1] for line in private_names_taken(probe, tmp_path)) == [
        "from veotui.core.job import _secret",
        "from veotui.core.request import _check",
        "import veotui.core._hidden",
        "veotui.core.job._deep",
        "veotui.core.prices._table",
        "veotui.core.text._strip",
    ]


def test_no_module_imports_itself_back_through_others():
    """No import cycle between modules, lazy and type-checking imports included. (The
    acyclic-siblings contract in pyproject.toml forbids cycles between packages.)"""
    graph = grimp.build_graph("veotui", cache_dir=None)
    cycles = [sorted(component) for component in strongly_connected(graph) if len(component) > 1]
    assert cycles == []


def test_the_cycle_check_finds_a_cycle():
    graph = grimp.ImportGraph()
    for importer, imported in [("a.x", "a.y"), ("a.y", "a.z"), ("a.z", "a.x"), ("a.z", "a.w")]:
        graph.add_import(importer=importer, imported=imported)
    assert sorted(sorted(c) for c in strongly_connected(graph) if len(c) > 1) == [["a.x", "a.y", "a.z"]]


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's strongly connected components of the import graph, without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.find_modules_directly_imported_by(successor)))))
                    break
                if successor in on_stack:
                    low[module] = min(low[module], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == module:
                            break
                    components.append(component)
    return components


def test_no_module_reaches_into_textuals_private_names():
    """Only Textual's public API: an upgrade is a version bump, not a rewrite."""
    offenders = [
        f"{path}: from {module} import {name}"
        for path, module, name in imports_from(ROOT / "veotui")
        if module.split(".")[0] == "textual"
        and (name.startswith("_") or any(part.startswith("_") for part in module.split(".")))
    ]
    for path in sorted((ROOT / "veotui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                offenders += [
                    f"{path.name}: import {a.name}"
                    for a in node.names
                    if a.name.startswith("textual") and any(p.startswith("_") for p in a.name.split("."))
                ]
    assert offenders == []
