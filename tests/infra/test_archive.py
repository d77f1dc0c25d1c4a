"""Function source archives: exactly the intended files, deterministic, named by content.

What a function ships is its import closure, module by module: computed here a second way (the
import statements found by a regular expression on the source text, not infra/archive.py's syntax
tree), so the two must agree; and the offline-only modules (the column twins of the features, the
offline timeline) never ship, so editing them redeploys nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from pulumi_mocks import ROOT

from infra.archive import FIXED_DATE, ToolingImportError, build_archive

FUNCTIONS = ("score", "enrich", "label")


# Offline-only runtime modules: training, batch jobs and parity tests use them, no function does.
OFFLINE_ONLY = (
    "shared/txguard/features/wallet_columns.py",
    "shared/txguard/features/counterparty_columns.py",
    "shared/txguard/features/timeline_columns.py",
    "shared/txguard/features/timeline.py",
)
_FROM = re.compile(r"^\s*from\s+(txguard(?:\.\w+)+)\s+import\s+(?:\(([^)]*)\)|([^\n]*))", re.M)
_IMPORT = re.compile(r"^\s*import\s+(txguard(?:\.\w+)+)", re.M)


def _file_of(runtime: Path, dotted: str) -> Path | None:
    rel = Path(*dotted.split(".")[1:])
    for candidate in (runtime / rel / "__init__.py", runtime / rel.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_files(runtime: Path, source: Path) -> set[Path]:
    """Files a module's import lines name (an imported name that is a module counts as that module),
    with the __init__.py of every package above them."""
    text = source.read_text()
    names = set(_IMPORT.findall(text))
    for module, parenthesised, one_line in _FROM.findall(text):
        names.add(module)
        for item in re.sub(r"#[^\n]*", "", parenthesised or one_line).split(","):
            if item.split():
                names.add(f"{module}.{item.split()[0]}")  # `name as alias`: the name
    files = set()
    for name in names:
        parts = name.split(".")
        for i in range(2, len(parts) + 1):
            found = _file_of(runtime, ".".join(parts[:i]))
            if found is not None:
                files.add(found)
    return files


def expected_files(function: str, root: Path) -> set[str]:
    """Computed independently of infra/archive.py: function folder + its import closure + pins."""
    files = {"requirements.txt"}
    fn_dir = root / "functions" / function
    for dirpath, dirnames, filenames in os.walk(fn_dir):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "tests") and not d.startswith(".")]
        for name in filenames:
            if not name.endswith((".pyc", ".pyo")) and not name.startswith("."):
                files.add((Path(dirpath) / name).relative_to(fn_dir).as_posix())
    runtime = root / "shared" / "txguard"
    todo, seen = list(_imported_files(runtime, fn_dir / "main.py")), set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imported_files(runtime, path) - seen)
    return files | {"txguard/" + path.relative_to(runtime).as_posix() for path in seen}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_archive_holds_exactly_the_intended_files(function: str, tmp_path: Path) -> None:
    archive = build_archive(function, tmp_path)
    with zipfile.ZipFile(archive.path) as zf:
        entries = zf.namelist()
        infos = zf.infolist()
        requirements = zf.read("requirements.txt").decode()
    assert entries == sorted(entries)
    assert set(entries) == expected_files(function, ROOT) == set(archive.files)
    assert not [e for e in entries if "__pycache__" in e or e.endswith(".pyc")]
    assert all(info.date_time == FIXED_DATE for info in infos)
    if (ROOT / "functions" / function / "main.py").exists():
        assert "main.py" in entries  # at the archive root, where Cloud Run functions looks for it
    assert "txguard/contract/names.py" in entries
    assert not [e for e in entries if e.startswith(("txguard/cli/", "txguard/simulator/", "txguard/training/"))]
    assert not set(entries) & {path.replace("shared/", "", 1) for path in OFFLINE_ONLY}
    # The runtime lock, byte for byte (tests/infra/test_lockfile.py checks the lock itself).
    assert requirements == (ROOT / "requirements.lock").read_text(encoding="utf-8")


def test_archives_are_deterministic(tmp_path: Path) -> None:
    for function in FUNCTIONS:
        first = build_archive(function, tmp_path / "a")
        second = build_archive(function, tmp_path / "b")
        assert first.object_name == second.object_name
        assert first.path.read_bytes() == second.path.read_bytes()
        assert first.object_name.startswith(f"{function}-") and len(first.sha256) == 64


def _copy_sources(root: Path) -> Path:
    for folder in ("shared", "scripts", "models", "functions"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, root / name)
    return root


def _names(root: Path, out: Path) -> dict[str, str]:
    return {function: build_archive(function, out, root).object_name for function in FUNCTIONS}


def _edit(path: Path) -> str:
    text = path.read_text()
    path.write_text(text + "\n# a change\n")
    return text


def test_name_changes_iff_content_changes(tmp_path: Path) -> None:
    root = _copy_sources(tmp_path / "repo")
    out = tmp_path / "out"
    original = _names(root, out)

    names_py = root / "shared" / "txguard" / "contract" / "names.py"
    os.utime(names_py, (1_000_000_000, 1_000_000_000))  # mtime only: same content, same archive
    pycache = names_py.parent / "__pycache__"
    pycache.mkdir(exist_ok=True)
    (pycache / "names.cpython-311.pyc").write_bytes(b"junk")  # ignored
    assert _names(root, out) == original

    text = _edit(names_py)  # the contract ships in both functions
    changed = _names(root, out)
    assert changed["score"] != original["score"] and changed["enrich"] != original["enrich"]
    names_py.write_text(text)  # back to the original content: back to the original names
    assert _names(root, out) == original

    fn_main = root / "functions" / "score" / "main.py"
    text = _edit(fn_main)
    changed = _names(root, out)
    assert changed["score"] != original["score"] and changed["enrich"] == original["enrich"]
    fn_main.write_text(text)

    fn_main = root / "functions" / "label" / "main.py"
    text = _edit(fn_main)
    changed = _names(root, out)
    assert changed["label"] != original["label"]
    assert (changed["score"], changed["enrich"]) == (original["score"], original["enrich"])
    fn_main.write_text(text)


@pytest.mark.parametrize("tooling", [
    "scripts/txguard/simulator/core.py",
    "scripts/txguard/publisher/sources.py",
    "scripts/txguard/cli/main.py",
    "scripts/txguard/local/stack.py",
    "models/txguard/training/train.py",
])
def test_editing_tooling_redeploys_nothing(tmp_path: Path, tooling: str) -> None:
    root = _copy_sources(tmp_path / "repo")
    out = tmp_path / "out"
    original = _names(root, out)
    _edit(root / tooling)
    assert _names(root, out) == original


@pytest.mark.parametrize(("runtime", "changes"), [
    ("shared/txguard/scoring/runtime.py", {"score"}),
    ("shared/txguard/scoring/state.py", {"score"}),
    ("shared/txguard/registry/core.py", {"score"}),
    ("shared/txguard/enrichment/pipeline.py", {"enrich"}),  # the label function does not import it
    ("shared/txguard/enrichment/label_applier.py", {"label"}),
    ("shared/txguard/enrichment/delivery.py", {"enrich", "label"}),  # both handlers run on it
    ("shared/txguard/features/counterparty_windows.py", {"enrich"}),
    ("shared/txguard/features/wallet.py", {"score", "enrich", "label"}),
    ("shared/txguard/console/app.py", set()),  # the console's own archive only (test_console_archive.py)
    *[(path, set()) for path in OFFLINE_ONLY],  # the offline column twins and timeline: no function
])
def test_editing_runtime_redeploys_the_functions_that_ship_it(
    tmp_path: Path, runtime: str, changes: set[str]
) -> None:
    root = _copy_sources(tmp_path / "repo")
    out = tmp_path / "out"
    original = _names(root, out)
    _edit(root / runtime)
    changed = _names(root, out)
    assert {f for f in FUNCTIONS if changed[f] != original[f]} == changes


def test_runtime_that_imports_tooling_is_refused(tmp_path: Path) -> None:
    root = _copy_sources(tmp_path / "repo")
    scorer = root / "shared" / "txguard" / "scoring" / "scorer.py"
    scorer.write_text(scorer.read_text() + "\n\ndef _late():\n    from txguard.simulator import core\n")
    with pytest.raises(ToolingImportError, match="txguard.simulator"):
        build_archive("score", tmp_path / "out", root)
