"""The packages' modules import each other without a cycle, counting imports inside functions
too (a lazy import hides a cycle from Python, not from a reader)."""

from __future__ import annotations

import ast
import graphlib
import tomllib
from pathlib import Path

import pytest

import della

from helpers import ROOT

PACKAGES = della.PACKAGES
TOOLS = "tools"  # maintainer tools beside the packages: not installed, imported by no package


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in (*PACKAGES, TOOLS) for p in (ROOT / package).rglob("*.py")}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports anywhere in its body: `import a.b`, `from a.b import c`
    (c a module of a.b if there is one, else a name in a.b) and relative forms."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {name for name in found if name in modules and name != here}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert (
        "della.models.vae" in graph and "della.models.latent" in graph["della.models.vae"]
    )  # the reader sees real edges
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def test_no_package_imports_the_tools():
    graph = import_graph()
    assert any(name.startswith(f"{TOOLS}.") for name in graph)  # the tools are read
    importers = {
        (name, imported)
        for name, imports in graph.items()
        if not name.startswith(TOOLS)
        for imported in imports
        if imported.split(".")[0] == TOOLS
    }
    assert not importers, f"the pipeline imports maintainer tools: {sorted(importers)}"


def test_a_cycle_is_found(tmp_path, monkeypatch):
    """The checker itself: two modules that import each other inside functions form a cycle."""
    package = tmp_path / "della"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from della.b import g\n")
    (package / "b.py").write_text("def g():\n    from della import a\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "PACKAGES", ("della",))
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(import_graph()).static_order())


def test_pyproject_names_the_same_packages():
    """One list of the project's packages (della.PACKAGES); pyproject.toml cannot import it."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["include"] == [f"{p}*" for p in PACKAGES]
    assert pyproject["tool"]["ruff"]["lint"]["isort"]["known-first-party"] == list(PACKAGES)
