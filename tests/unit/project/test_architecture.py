"""The house rules of docs/architecture.md, checked on the import graph (lazy imports included).

- Runtime subpackages (shared/txguard/) import only the runtime subpackages listed for them, never
  tooling (scripts/txguard/, models/txguard/): a function archive ships runtime code only.
- Tooling stands on floors: offline work below the harness below the CLI, every floor above the
  runtime. A package imports its own floor and the floors below, never one above, and no two
  packages import each other (directly or round a longer loop).
- Inside a runtime package no module imports itself back through others: shared state is an
  object modules receive, not a module writing another's attributes.
- The Pulumi program (infra/) reads names and settings from the contract and nothing else of txguard
  but the features (the Firestore field list).
- pyproject's package list and package-dir equal the tree, so a wheel installs what an editable
  install imports.

The import graph is read from the code (every `import` and `from ... import`, in functions and
under TYPE_CHECKING too), module by module; `from txguard.x import y` is an edge to the module
`txguard.x.y` when there is one, else to the package `txguard.x`.
"""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
from collections.abc import Iterable
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
    "rules": {"contract", "features"},
    "scoring": {"contract", "features", "registry", "rules"},
    "enrichment": {"contract", "features"},
    "console": {"contract", "features", "enrichment", "registry", "rules"},
}


# Tooling floors, lowest first (docs/architecture.md, "Floors"). The runtime is the ground floor.
FLOORS: dict[str, tuple[str, ...]] = {
    "runtime": tuple(sorted(ALLOWED)),
    "offline": ("simulator", "publisher", "batch", "training", "evaluation", "capacity"),
    "harness": ("local", "ops", "reliability", "bench"),
    "cli": ("cli",),
}
FLOOR_OF = {package: level for level, packages in enumerate(FLOORS.values()) for package in packages}
MODULE_HOMES = ("shared", "scripts", "models")


# The module graph ----------------------------------------------------------------------------
def modules(root: Path) -> dict[str, Path]:
    """Every module of the txguard namespace: dotted name -> file (a package is its __init__.py)."""
    found = {}
    for home in MODULE_HOMES:
        for path in sorted((root / home / "txguard").rglob("*.py")):
            parts = path.relative_to(root / home).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def module_imports(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The txguard modules `name` imports (anywhere in the file), resolved to modules of `known`."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets |= {f"{base}.{alias.name}" for alias in node.names} | {base}
    resolved = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name and target != "txguard":
            resolved.add(target)
    return resolved


def module_graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {name: module_imports(name, path, known) for name, path in known.items()}


def package_of(module: str) -> str:
    return module.split(".")[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (or a node importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graphs here are a few hundred nodes deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, targets in graph.items():
        out.setdefault(package_of(module), set()).update(
            package_of(t) for t in targets if package_of(t) != package_of(module))
    return out


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """`module -> target` edges from a floor to a floor above it."""
    return sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                  if FLOOR_OF.get(package_of(module), 0) < FLOOR_OF.get(package_of(target), 0))


def tooling_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    packages = package_graph(graph)
    tooling = {p for p in packages if FLOOR_OF.get(p, 0) > 0}
    return cycles({p: packages[p] & tooling for p in tooling})


def module_cycles(graph: dict[str, set[str]], package: str) -> list[list[str]]:
    inside = {m for m in graph if package_of(m) == package}
    return cycles({m: graph[m] & inside for m in inside})


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


def test_every_tooling_package_stands_on_a_floor() -> None:
    tooling = _subpackages("scripts") + _subpackages("models")
    assert sorted(tooling) == sorted(p for name, ps in FLOORS.items() if name != "runtime" for p in ps)


def test_tooling_imports_only_its_floor_and_the_floors_below() -> None:
    assert not upward_imports(module_graph(ROOT)), "an import points up a floor (docs/architecture.md, Floors)"


def test_no_two_tooling_packages_import_each_other() -> None:
    assert not tooling_cycles(module_graph(ROOT)), "tooling packages in an import cycle"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_module_cycle_inside_a_runtime_package(package: str) -> None:
    graph = module_graph(ROOT)
    assert any(package_of(m) == package for m in graph)
    assert not module_cycles(graph, package), f"modules of txguard.{package} import each other back"


def _tree_copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for home in MODULE_HOMES:
        shutil.copytree(ROOT / home, root / home, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _plant(root: Path, module: str, line: str) -> None:
    """A lazy import at the end of a module (lazy ones count as much as the module's header)."""
    path = modules(root)[module]
    path.write_text(path.read_text() + f"\n\ndef _planted() -> None:\n    {line}\n")


def test_a_planted_upward_import_fails_the_floor_rule(tmp_path: Path) -> None:
    root = _tree_copy(tmp_path)
    assert not upward_imports(module_graph(root))
    _plant(root, "txguard.simulator.core", "from txguard.local.stack import LocalStack  # noqa")
    _plant(root, "txguard.local.feed", "from txguard.cli.main import main  # noqa")
    assert upward_imports(module_graph(root)) == ["txguard.local.feed -> txguard.cli.main",
                                                  "txguard.simulator.core -> txguard.local.stack"]


def test_a_planted_cycle_between_tooling_packages_is_found(tmp_path: Path) -> None:
    root = _tree_copy(tmp_path)
    _plant(root, "txguard.simulator.core", "import txguard.publisher.messages  # noqa")  # publisher imports simulator
    assert tooling_cycles(module_graph(root)) == [["publisher", "simulator"]]


def test_a_planted_module_cycle_in_scoring_is_found(tmp_path: Path) -> None:
    root = _tree_copy(tmp_path)
    _plant(root, "txguard.scoring.scorer", "from txguard.scoring.service import ScoringService  # noqa")
    found = module_cycles(module_graph(root), "scoring")
    assert len(found) == 1 and {"txguard.scoring.scorer", "txguard.scoring.service"} <= set(found[0])


def test_the_floor_plan_in_the_docs_is_the_tested_one() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("\n## Floors\n", 1)[1].split("\n## ", 1)[0]
    documented = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(r"\d+ .+", cells[0]):
            documented[int(cells[0].split()[0])] = set(re.findall(r"`(\w+)`", cells[1]))
    assert documented == {level: set(packages) for level, packages in enumerate(FLOORS.values())}


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


def floor_plan(root: Path) -> list[str]:
    """The floors of the checkout at `root`: per package its home, lines, modules and the packages of
    its own floor it imports, then whatever breaks the rules (upward imports, cycles)."""
    known = modules(root)
    graph = {name: module_imports(name, path, known) for name, path in known.items()}
    packages = package_graph(graph)
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    homes: dict[str, str] = {}
    for name, path in known.items():
        if name == "txguard":
            continue
        package = package_of(name)
        lines[package] = lines.get(package, 0) + len(path.read_text(encoding="utf-8").splitlines())
        counts[package] = counts.get(package, 0) + 1
        homes[package] = path.relative_to(root).parts[0]
    out = []
    for level, (floor, members) in reversed(list(enumerate(FLOORS.items()))):
        present = [p for p in members if p in lines]
        out.append(f"floor {level} {floor}: {sum(lines[p] for p in present)} lines, "
                   f"{sum(counts[p] for p in present)} modules")
        for package in present:
            same = sorted(p for p in packages.get(package, ()) if FLOOR_OF.get(p, 0) == level)
            out.append(f"  {package:<12} {homes[package] + '/':<9} {lines[package]:>6} lines {counts[package]:>3} modules"
                       f"  imports on its floor: {', '.join(same) or '-'}")
    out.append(f"upward imports: {upward_imports(graph) or 'none'}")
    out.append(f"cycles between tooling packages: {tooling_cycles(graph) or 'none'}")
    out.append("module cycles inside runtime packages: "
               f"{[c for p in sorted(ALLOWED) for c in module_cycles(graph, p)] or 'none'}")
    return out


if __name__ == "__main__":  # python tests/unit/project/test_architecture.py [CHECKOUT]: the floor plan
    import sys

    print("\n".join(floor_plan(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT)))
