"""The house rules of docs/architecture.md, checked on the import graph (lazy imports included).

- Runtime subpackages (shared/txguard/) import only the runtime subpackages listed for them, never
  tooling (scripts/txguard/, models/txguard/): a function archive ships runtime code only.
- The Pulumi program (infra/) reads names and settings from the contract and nothing else of txguard
  but the features (the Firestore field list).
- pyproject's package list and package-dir equal the tree, so a wheel installs what an editable
  install imports.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RUNTIME = ROOT / "shared" / "txguard"
HOMES = {"shared": "runtime", "scripts": "tooling", "models": "training"}

# What each runtime subpackage may import (besides itself). docs/architecture.md has the why.
ALLOWED = {
    "contract": set(),
    "features": {"contract"},
    "registry": {"contract"},
    "scoring": {"contract", "features", "registry"},
    "enrichment": {"contract", "features"},
    "console": {"contract", "features", "enrichment", "registry"},
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            if node.module == "txguard":
                found |= {f"txguard.{a.name}" for a in node.names}
    return {m.split(".")[1] for m in found if m.startswith("txguard.")}


def _subpackages(home: str) -> list[str]:
    return sorted(p.parent.name for p in (ROOT / home / "txguard").glob("*/__init__.py"))


def test_runtime_subpackages_are_the_declared_ones() -> None:
    assert _subpackages("shared") == sorted(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_runtime_imports_only_what_it_may(package: str) -> None:
    bad = {}
    for path in sorted((RUNTIME / package).rglob("*.py")):
        extra = _imports(path) - ALLOWED[package] - {package}
        if extra:
            bad[str(path.relative_to(ROOT))] = sorted(extra)
    assert not bad, f"runtime txguard.{package} imports outside its allowance: {bad}"


def test_no_subpackage_name_is_used_twice_across_homes() -> None:
    seen: dict[str, str] = {}
    for home in HOMES:
        for name in _subpackages(home):
            assert name not in seen, f"txguard.{name} exists in {seen.get(name)}/ and {home}/"
            seen[name] = home


def test_functions_import_only_runtime() -> None:
    for main in sorted((ROOT / "functions").glob("*/main.py")):
        assert _imports(main) <= set(ALLOWED), (main, _imports(main) - set(ALLOWED))


def test_infra_imports_only_the_contract_and_features() -> None:
    for path in sorted((ROOT / "infra").glob("*.py")):
        assert _imports(path) <= {"contract", "features"}, (path.name, _imports(path))


def test_pyproject_packages_match_the_tree() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    tree, dirs = [], {}
    for home in HOMES:
        for init in sorted((ROOT / home).glob("txguard/**/__init__.py")):
            package = ".".join(init.parent.relative_to(ROOT / home).parts)
            tree.append(package)
            if package.count(".") == 1:
                dirs[package] = init.parent.relative_to(ROOT).as_posix()
    assert sorted(setuptools["packages"]) == sorted(tree)
    assert setuptools["package-dir"] == dirs
    assert not list(ROOT.glob("*/txguard/__init__.py")), "txguard is a namespace package: no __init__.py"


def test_unit_tests_mirror_the_packages() -> None:
    folders = {p.name for p in (ROOT / "tests" / "unit").iterdir() if p.is_dir() and p.name != "__pycache__"}
    packages = {name for home in HOMES for name in _subpackages(home)}
    assert folders - {"project"} <= packages, sorted(folders - {"project"} - packages)


def _third_party(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_runtime_never_imports_the_batch_extra() -> None:
    """apache-beam and pyarrow come with the `batch` extra only: a function must never need them."""
    batch_only = {"apache_beam", "pyarrow"}
    runtime = sorted(RUNTIME.rglob("*.py")) + sorted((ROOT / "functions").glob("*/main.py"))
    bad = {str(p.relative_to(ROOT)): sorted(_third_party(p) & batch_only) for p in runtime
           if _third_party(p) & batch_only}
    assert not bad, f"runtime modules import batch-only libraries: {bad}"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in extras["dependencies"] if d.startswith(("apache-beam", "pyarrow"))]
    assert any(d.startswith("apache-beam[gcp]") for d in extras["optional-dependencies"]["batch"])
