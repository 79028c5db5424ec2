"""What the import-linter contracts in pyproject.toml cannot say: what a command loads at run
time (its imports are lazy on purpose), and which names one module may take from another."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports_from(root: Path):
    """Every ``from X import name`` under ``root``: (file, module, name)."""
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    yield path.relative_to(ROOT), node.module, alias.name


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
        f"{path}: from {module} import {name}"
        for root in (ROOT / "veotui", ROOT / "tests")
        for path, module, name in imports_from(root)
        if module.split(".")[0] in ("veotui", "tests") and name.startswith("_") and not name.startswith("__")
    ]
    assert offenders == []


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
