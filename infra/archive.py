"""Source archives of the Cloud Run functions: deterministic zips named by their content hash.

A function's archive holds, at its root, everything in `functions/<name>/` (its `main.py`), the
modules of the `txguard` namespace that the function's import closure reaches (traced module by
module from `main.py` through `shared/txguard/`, lazy imports included, with the `__init__.py` of
every package on the way, which Python runs first; never the tooling in `scripts/` or `models/`),
the package data pyproject declares for a package it ships (the console's templates and static
files), and, as its `requirements.txt`, the runtime lock (`requirements.lock`, infra/lockfile.py:
every package pinned with its hashes; a lock that no longer matches pyproject stops the build).
Entries are sorted and carry a fixed timestamp and mode, so the same sources give the same bytes;
the object is named `<name>-<sha256[:16]>.zip`, so a code or pin change uploads a new object (and
redeploys the function), and a change to tooling, or to a runtime module the function does not
import (the offline column twins of the features, a console page for the scoring function), is a
no-op for `pulumi up`.

Pure Python (no Pulumi import): the tests build and boot these archives directly;
`python -m infra.archive [FUNCTION ...]` lists what each archive holds.
"""

from __future__ import annotations

import ast
import hashlib
import io
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra import lockfile

ROOT = Path(__file__).resolve().parents[1]
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
_SKIP_DIRS = {"__pycache__", "tests", ".pytest_cache", ".ruff_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class Archive:
    function: str  # folder under functions/, e.g. "score"
    path: Path
    sha256: str
    files: tuple[str, ...]

    @property
    def object_name(self) -> str:
        return f"{self.function}-{self.sha256[:16]}.zip"


class ToolingImportError(RuntimeError):
    """A function (or the runtime it ships) imports a `txguard` subpackage that is not runtime."""


def _txguard_imports(source: Path) -> set[str]:
    """Dotted `txguard.*` names a module imports, lazy imports included: for `from txguard.x import y`
    both `txguard.x.y` (when y is a module) and `txguard.x` (when it is a name defined there)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_bytes(), filename=str(source))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("txguard.")}


def _module_file(runtime: Path, dotted: str) -> Path | None:
    """`shared/txguard/a/b.py` or `shared/txguard/a/b/__init__.py` for `txguard.a.b`, if either exists."""
    parts = dotted.split(".")[1:]
    package = runtime.joinpath(*parts) / "__init__.py"
    if package.is_file():
        return package
    module = runtime.joinpath(*parts).with_suffix(".py")
    return module if module.is_file() else None


def runtime_modules(function: str, root: Path = ROOT) -> list[Path]:
    """The runtime files `functions/<function>/main.py` reaches: every module it imports, the modules
    those import, and so on, with the `__init__.py` of each package on the way; sorted."""
    runtime = root / "shared" / "txguard"
    todo = sorted(_txguard_imports(root / "functions" / function / "main.py"))
    seen: set[Path] = set()
    while todo:
        dotted = todo.pop()
        subpackage = dotted.split(".")[1]
        if not (runtime / subpackage / "__init__.py").is_file():
            raise ToolingImportError(
                f"functions/{function} needs txguard.{subpackage}, which is not a runtime subpackage under "
                f"shared/txguard/ (tooling never ships in a function archive)")
        while _module_file(runtime, dotted) is None:  # a name defined in a module, not a module itself
            dotted = dotted.rpartition(".")[0]
        path = _module_file(runtime, dotted)
        assert path is not None
        parents = [_module_file(runtime, ".".join(dotted.split(".")[:i])) for i in range(2, dotted.count(".") + 1)]
        for found in (path, *parents):
            if found is not None and found not in seen:
                seen.add(found)
                todo.extend(sorted(_txguard_imports(found)))
    return sorted(seen)


def _walk(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.suffix in _SKIP_SUFFIXES:
            continue
        found.append(path)
    return found


def package_data(package: str, root: Path = ROOT) -> tuple[str, ...]:
    """Glob patterns of `[tool.setuptools.package-data]` for `txguard.<package>` (what a wheel ships)."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject.get("tool", {}).get("setuptools", {}).get("package-data", {})
    return tuple(declared.get(f"txguard.{package}", ()))


def archive_contents(function: str, root: Path = ROOT) -> dict[str, bytes]:
    """Archive path -> bytes of everything a function's zip holds."""
    contents: dict[str, bytes] = {}
    function_dir = root / "functions" / function
    for path in _walk(function_dir) if function_dir.is_dir() else []:
        contents[path.relative_to(function_dir).as_posix()] = path.read_bytes()
    runtime = root / "shared" / "txguard"
    for path in runtime_modules(function, root):
        contents[f"txguard/{path.relative_to(runtime).as_posix()}"] = path.read_bytes()
        if path.name == "__init__.py":  # a shipped package brings the data files pyproject declares for it
            package_dir = path.parent
            patterns = package_data(".".join(package_dir.relative_to(runtime).parts), root)
            for data in _walk(package_dir) if patterns else []:
                if data.suffix != ".py" and any(data.relative_to(package_dir).match(p) for p in patterns):
                    contents[f"txguard/{data.relative_to(runtime).as_posix()}"] = data.read_bytes()
    contents["requirements.txt"] = lockfile.read(root).encode()
    return contents


def zip_bytes(contents: dict[str, bytes]) -> bytes:
    """A zip whose bytes depend only on the entries' names and contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(contents):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is honoured
            info.external_attr = (0o100644 & 0xFFFF) << 16
            zf.writestr(info, contents[name], compresslevel=9)
    return buffer.getvalue()


def build_archive(function: str, out_dir: Path, root: Path = ROOT) -> Archive:
    """Write `<out_dir>/<function>-<hash>.zip` (idempotent) and describe it."""
    contents = archive_contents(function, root)
    data = zip_bytes(contents)
    digest = hashlib.sha256(data).hexdigest()
    archive = Archive(function, out_dir / f"{function}-{digest[:16]}.zip", digest, tuple(sorted(contents)))
    out_dir.mkdir(parents=True, exist_ok=True)
    if not archive.path.exists() or archive.path.read_bytes() != data:
        archive.path.write_bytes(data)
    return archive


def main(argv: list[str] | None = None) -> int:
    """`python -m infra.archive [FUNCTION ...]`: each archive's object name and files (no upload)."""
    import sys
    import tempfile

    names = (argv if argv is not None else sys.argv[1:]) or sorted(
        p.parent.name for p in (ROOT / "functions").glob("*/main.py"))
    with tempfile.TemporaryDirectory() as out:
        for function in names:
            archive = build_archive(function, Path(out))
            print(f"{archive.object_name}: {len(archive.files)} files")
            for name in archive.files:
                print(f"  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
