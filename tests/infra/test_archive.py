"""Function source archives: exactly the intended files, deterministic, named by content."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest
from pulumi_mocks import ROOT

from infra.archive import FIXED_DATE, ToolingImportError, build_archive

FUNCTIONS = ("score", "enrich", "label")


# What each function imports, written down independently of infra/archive.py's tracing.
RUNTIME_NEEDS = {
    "score": ("contract", "features", "registry", "scoring"),
    "enrich": ("contract", "enrichment", "features"),
    "label": ("contract", "enrichment", "features"),
}


def expected_files(function: str, root: Path) -> set[str]:
    """Computed independently of infra/archive.py: function folder + its runtime subpackages + pins."""
    files = {"requirements.txt"}
    fn_dir = root / "functions" / function
    for dirpath, dirnames, filenames in os.walk(fn_dir):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "tests") and not d.startswith(".")]
        for name in filenames:
            if not name.endswith((".pyc", ".pyo")) and not name.startswith("."):
                files.add((Path(dirpath) / name).relative_to(fn_dir).as_posix())
    runtime = root / "shared" / "txguard"
    for package in RUNTIME_NEEDS[function]:
        for dirpath, dirnames, filenames in os.walk(runtime / package):
            dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.startswith(".")]
            for name in filenames:
                if name.endswith(".py"):
                    files.add("txguard/" + (Path(dirpath) / name).relative_to(runtime).as_posix())
    return files


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
    ("shared/txguard/registry/core.py", {"score"}),
    ("shared/txguard/enrichment/pipeline.py", {"enrich", "label"}),  # one subpackage: both ship it
    ("shared/txguard/features/wallet.py", {"score", "enrich", "label"}),
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
