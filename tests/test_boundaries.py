"""The core never imports Textual, and the TUI reaches the engine only through the backend
interface."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "veotui"
CORE_MODULES = [
    "veotui.model",
    "veotui.store",
    "veotui.scheduler",
    "veotui.events",
    "veotui.files",
    "veotui.settings",
    "veotui.lock",
    "veotui.progress",
    "veotui.generators",
    "veotui.generators.sim",
    "veotui.backend",
    "veotui.backend.local",
    "veotui.cli",
]
TUI_MAY_NOT_IMPORT = ("veotui.store", "veotui.scheduler", "veotui.generators", "veotui.lock", "veotui.events")


def test_importing_the_core_never_imports_textual():
    optional = [
        m
        for m in ("veotui.server", "veotui.backend.remote", "veotui.generators.veo")
        if (PACKAGE / Path(*m.split(".")[1:])).with_suffix(".py").exists()
        or (PACKAGE / Path(*m.split(".")[1:]) / "__init__.py").exists()
    ]
    code = (
        "import sys\n"
        f"for name in {CORE_MODULES + optional!r}: __import__(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_no_core_source_file_mentions_textual():
    for path in PACKAGE.rglob("*.py"):
        if "tui" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "textual" or n.startswith("textual.") for n in names), path


def test_the_tui_uses_only_the_backend_interface():
    for path in (PACKAGE / "tui").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(TUI_MAY_NOT_IMPORT), f"{path} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(TUI_MAY_NOT_IMPORT), f"{path} imports {alias.name}"


def test_a_client_verb_loads_only_what_it_uses():
    # ``veotui jobs`` in a script: the command line, the verbs and the HTTP client, and none
    # of the engine, the server, the TUI or Pillow (httpx itself brings Rich).
    code = (
        "import sys\n"
        "import veotui.cli, veotui.client_cli, veotui.backend.remote\n"
        "heavy = ('PIL', 'textual', 'fastapi', 'uvicorn', 'google', 'av', 'veotui.store',"
        " 'veotui.scheduler', 'veotui.server', 'veotui.logs')\n"
        "print(','.join(sorted({m.split('.')[0] if not m.startswith('veotui') else m for m in sys.modules"
        " if any(m == h or m.startswith(h + '.') for h in heavy)})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_no_module_reaches_into_textuals_private_names():
    """Only Textual's public API: an upgrade is a version bump, not a rewrite."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("textual"):
                private = [p for p in node.module.split(".") if p.startswith("_")]
                private += [a.name for a in node.names if a.name.startswith("_")]
                if private:
                    offenders.append(f"{path.name}: from {node.module} import {private}")
            elif isinstance(node, ast.Import):
                offenders += [
                    f"{path.name}: import {a.name}"
                    for a in node.names
                    if a.name.startswith("textual") and any(p.startswith("_") for p in a.name.split("."))
                ]
    assert offenders == []
