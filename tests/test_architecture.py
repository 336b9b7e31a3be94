"""docs/architecture.md stays true to the code: its layers are read from the page, the imports
from the code (``ast``), and every import must go down the layers or stay within one. The
page's picture is drawn from both; after a change, ``TRACKPLUG_REWRITE_ARCHITECTURE=1 pytest
tests/test_architecture.py`` redraws it (then read the diff).

Outside the core, backends and the contract suite import only the stated public surface.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CORE = ROOT / "src" / "trackplug"
PAGE = ROOT / "docs" / "architecture.md"
#: The core's modules: its files and its packages (cli, testing, integrations) by name.
MODULES = {path.relative_to(CORE).with_suffix("").parts[0] for path in CORE.rglob("*.py")}
PICTURE = re.compile(
    r"(<!-- layers: drawn by tests/test_architecture.py -->\n```text\n)(.*?)(```)", re.S
)
#: What a plugin, the contract suite or any other distribution may import from trackplug.
PUBLIC = {"trackplug", "trackplug.plugin", "trackplug.spec", "trackplug.redirect"}
#: Public packages: every module of theirs may be imported.
PUBLIC_PACKAGES = ("trackplug.integrations.", "trackplug.testing.")


def module_of(path: Path) -> str:
    """``_tracker`` for src/trackplug/_tracker.py; the cli package is one module, ``cli``."""
    return path.relative_to(CORE).with_suffix("").parts[0]


def core_imports(path: Path) -> set[str]:
    """The core modules ``path`` imports (at run time or for type checking alike)."""
    package = ["trackplug", *path.relative_to(CORE).parent.parts]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            dotted = [*base, *(node.module or "").split(".")] if node.module else base
            dotted = [part for part in dotted if part]
            if dotted[:1] != ["trackplug"]:
                continue
            if len(dotted) == 1:  # from . import _validation, or from .. import Tracker
                found.update(
                    alias.name if alias.name in MODULES else "__init__" for alias in node.names
                )
            else:
                found.add(dotted[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "trackplug" and len(parts) > 1:
                    found.add(parts[1])
    return found


def code_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        module = module_of(path)
        graph.setdefault(module, set()).update(core_imports(path) - {module})
    return graph


def page_layers() -> list[tuple[str, list[str]]]:
    """``[(layer, [modules])]`` from the page's table, top layer first."""
    rows = re.findall(r"^\| \*\*(.+?)\*\* \| (.+?) \|", PAGE.read_text(), re.M)
    return [(name, re.findall(r"`([\w.]+)`", modules)) for name, modules in rows]


def draw(layers: list[tuple[str, list[str]]], graph: dict[str, set[str]]) -> str:
    """The layers, top down, each module with the core modules it imports."""
    width = max(len(module) for _, modules in layers for module in modules)
    lines: list[str] = []
    for index, (layer, modules) in enumerate(layers):
        if index:
            lines.append("    │")
        lines.append(f"{layer}")
        for module in modules:
            uses = " ".join(sorted(graph.get(module, ())))
            lines.append(f"  {module:<{width}}  → {uses}" if uses else f"  {module}")
    return "\n".join(lines) + "\n"


def test_every_module_is_in_exactly_one_layer() -> None:
    listed = [module for _, modules in page_layers() for module in modules]
    assert sorted(listed) == sorted(set(listed)), "a module is in two layers"
    assert set(listed) == set(code_graph()), "the page's layers and the code's modules differ"


def test_every_import_goes_down_the_layers_or_stays_within_one() -> None:
    level = {module: i for i, (_, modules) in enumerate(page_layers()) for module in modules}
    upward = [
        f"{module} ({level[module]}) imports {used} ({level[used]})"
        for module, uses in code_graph().items()
        for used in uses
        if level[used] < level[module]
    ]
    assert upward == []


def test_the_picture_is_drawn_from_the_code() -> None:
    drawn = draw(page_layers(), code_graph())
    text = PAGE.read_text()
    if os.environ.get("TRACKPLUG_REWRITE_ARCHITECTURE"):
        PAGE.write_text(PICTURE.sub(lambda m: m[1] + drawn + m[3], text))
        pytest.skip("docs/architecture.md redrawn from the code: check its diff")
    found = PICTURE.search(text)
    assert found is not None, "docs/architecture.md has no picture block"
    assert found[2] == drawn


@pytest.mark.parametrize(
    "folder",
    ["backends/sql/src", "backends/mlflow/src", "contract_tests/src", "tests/shelf_plugin.py"],
)
def test_plugins_import_only_the_public_surface(folder: str) -> None:
    paths = [ROOT / folder] if folder.endswith(".py") else sorted((ROOT / folder).rglob("*.py"))
    private = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                public = name in PUBLIC or name.startswith(PUBLIC_PACKAGES)
                if name.split(".")[0] == "trackplug" and not public:
                    private.append(f"{path.relative_to(ROOT)}: {name}")
    assert private == []


def test_the_cli_names_no_backend() -> None:
    """Apart from docstrings (help text and its examples), the command asks the registry."""
    named = []
    for path in sorted((CORE / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) else getattr(node, "id", None)
            backend = isinstance(text, str) and re.search(r"sqlite|mlflow", text, re.I)
            if backend and id(node) not in docstrings:
                named.append(f"{path.name}:{getattr(node, 'lineno', '?')}: {text!r:.60}")
    assert named == []
