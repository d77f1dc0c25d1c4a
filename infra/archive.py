"""Source archives of the Cloud Run functions: deterministic zips named by their content hash.

A function's archive holds, at its root, everything in `functions/<name>/` (its `main.py`), the
runtime subpackages of the `txguard` namespace that the function imports (traced from `main.py`
through `shared/txguard/`, never the tooling in `scripts/` or `models/`) with their modules and the
package data pyproject declares for them (the console's templates and static files), and, as its
`requirements.txt`, the runtime lock (`requirements.lock`, infra/lockfile.py: every package
pinned with its hashes; a lock that no longer matches pyproject stops the build). Entries are
sorted and carry a fixed timestamp and mode, so the same sources give the same bytes; the object
is named `<name>-<sha256[:16]>.zip`, so a code or pin change uploads a new object (and redeploys
the function), and a change to tooling, or to a runtime
subpackage the function does not import, is a no-op for `pulumi up`.

Pure Python (no Pulumi import): the tests build and boot these archives directly.
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
    """Runtime subpackage names (`scoring`, `contract`, ...) a module imports, lazy imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_bytes(), filename=str(source))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "txguard":
                modules = [f"txguard.{alias.name}" for alias in node.names]
        found |= {m.split(".")[1] for m in modules if m.startswith("txguard.")}
    return found


def runtime_subpackages(function: str, root: Path = ROOT) -> list[str]:
    """The closure of `txguard` subpackages reachable from `functions/<function>/main.py`."""
    runtime = root / "shared" / "txguard"
    todo = sorted(_txguard_imports(root / "functions" / function / "main.py"))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        package = runtime / name
        if not (package / "__init__.py").is_file():
            raise ToolingImportError(
                f"functions/{function} needs txguard.{name}, which is not a runtime subpackage under "
                f"shared/txguard/ (tooling never ships in a function archive)")
        seen.add(name)
        for path in _walk(package):
            if path.suffix == ".py":
                todo.extend(_txguard_imports(path) - seen)
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


def _shipped(path: Path, package_dir: Path, patterns: tuple[str, ...]) -> bool:
    rel = path.relative_to(package_dir)
    return path.suffix == ".py" or any(rel.match(pattern) for pattern in patterns)


def archive_contents(function: str, root: Path = ROOT) -> dict[str, bytes]:
    """Archive path -> bytes of everything a function's zip holds."""
    contents: dict[str, bytes] = {}
    function_dir = root / "functions" / function
    for path in _walk(function_dir) if function_dir.is_dir() else []:
        contents[path.relative_to(function_dir).as_posix()] = path.read_bytes()
    runtime = root / "shared" / "txguard"
    for package in runtime_subpackages(function, root):
        patterns = package_data(package, root)
        for path in _walk(runtime / package):
            if _shipped(path, runtime / package, patterns):
                contents[f"txguard/{path.relative_to(runtime).as_posix()}"] = path.read_bytes()
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
