"""What the code imports, pyproject declares: no package is reached only through another's dependencies.

The runtime (shared/, functions/) may import only `[project.dependencies]`, which the function
archives install; tooling, infra and tests may import those and any extra's. A package that arrives
only as someone else's dependency (Flask under functions-framework, say) can leave with that
package's next release, and the lock would not notice.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
RUNTIME_FOLDERS = ("shared", "functions")
OTHER_FOLDERS = ("scripts", "models", "infra", "tests")
FIRST_PARTY = {"txguard", "infra", "tests"}


def _imported_modules(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """Absolute imports (dotted, as written) -> files that make them."""
    out: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    # `from google.cloud import firestore` imports google.cloud.firestore
                    names = [f"{node.module}.{alias.name}" for alias in node.names]
                else:
                    continue
                for name in names:
                    out.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return out


def _local_names() -> set[str]:
    """Modules the tests import from their own folders (conftest, fixtures, sibling test modules)."""
    tests = ROOT / "tests"
    return {p.stem for p in tests.rglob("*.py")} | {p.name for p in tests.rglob("*") if p.is_dir()}


@cache
def _owners() -> dict[str, str]:
    """Dotted module -> the installed distribution whose files provide it."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0] == ".." or any(p.endswith((".dist-info", ".data")) for p in parts):
                continue
            leaf = parts[-1]
            if leaf.endswith(".py"):
                stem = leaf[:-3]
            elif leaf.endswith((".so", ".pyd")):
                stem = leaf.split(".", 1)[0]
            else:
                continue
            module = ".".join([*parts[:-1], stem] if stem != "__init__" else parts[:-1])
            if module:
                out.setdefault(module, name)
    return out


def owner(module: str, owners: dict[str, str]) -> str | None:
    """The distribution of the longest installed prefix of `module` (`google.cloud.firestore.x` ->
    google-cloud-firestore), or None for the standard library and first-party code."""
    top = module.split(".", 1)[0]
    if top in sys.stdlib_module_names or top in FIRST_PARTY or top in _local_names():
        return None
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = owners.get(".".join(parts[:end]))
        if found:
            return found
    return f"<not installed: {module}>"


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {canonicalize_name(Requirement(s).name) for s in project["dependencies"]}
    extras = {canonicalize_name(Requirement(s).name) for specs in project["optional-dependencies"].values()
              for s in specs}
    return runtime, runtime | extras


def undeclared(imports: dict[str, set[str]], allowed: set[str], owners: dict[str, str]) -> dict[str, list[str]]:
    """distribution -> files importing it, for every imported distribution not in `allowed`."""
    out: dict[str, set[str]] = {}
    for module, files in imports.items():
        dist = owner(module, owners)
        if dist is not None and dist not in allowed:
            out.setdefault(dist, set()).update(files)
    return {dist: sorted(files) for dist, files in sorted(out.items())}


def test_the_runtime_imports_only_runtime_dependencies() -> None:
    runtime, _ = _declared()
    found = undeclared(_imported_modules(RUNTIME_FOLDERS), runtime, _owners())
    assert found == {}, f"declare these in [project.dependencies]: {found}"


def test_tooling_and_tests_import_only_declared_dependencies() -> None:
    _, everything = _declared()
    found = undeclared(_imported_modules(OTHER_FOLDERS), everything, _owners())
    assert found == {}, f"declare these in an extra of pyproject.toml: {found}"


def test_the_check_sees_a_transitive_import_and_namespace_packages() -> None:
    owners = _owners()
    assert owner("google.cloud.firestore_v1.base_query", owners) == "google-cloud-firestore"
    assert owner("google.api_core.exceptions", owners) == "google-api-core"
    assert owner("werkzeug.exceptions.HTTPException", owners) == "werkzeug"
    assert owner("json.decoder", owners) is None and owner("txguard.contract", owners) is None
    # Flask arrives with functions-framework; importing it undeclared is named.
    planted = {"flask.Flask": {"shared/txguard/console/x.py"}, "yaml.safe_load": {"tests/y.py"}}
    assert undeclared(planted, {"functions-framework"}, owners) == {
        "flask": ["shared/txguard/console/x.py"], "pyyaml": ["tests/y.py"]}
