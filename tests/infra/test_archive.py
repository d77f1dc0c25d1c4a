"""Function source archives: exactly the intended files, deterministic, named by content."""

from __future__ import annotations

import os
import shutil
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from pulumi_mocks import ROOT

from infra.archive import FIXED_DATE, build_archive

FUNCTIONS = ("score", "enrich")


def expected_files(function: str, root: Path) -> set[str]:
    """Computed independently of infra/archive.py: function folder + shared sources/data + pins."""
    files = {"requirements.txt"}
    fn_dir = root / "functions" / function
    for dirpath, dirnames, filenames in os.walk(fn_dir):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "tests") and not d.startswith(".")]
        for name in filenames:
            if not name.endswith((".pyc", ".pyo")) and not name.startswith("."):
                files.add((Path(dirpath) / name).relative_to(fn_dir).as_posix())
    for dirpath, dirnames, filenames in os.walk(root / "shared"):
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            in_schemas = rel_dir.parts[1:2] == ("schemas",) and len(rel_dir.parts) == 2
            if name.endswith(".py") or (in_schemas and name.endswith(".json")):
                files.add((rel_dir / name).as_posix())
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
    assert "shared/__init__.py" in entries and "shared/names.py" in entries
    # Every runtime dependency of pyproject, pinned to the version the tests ran with.
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(line.split("==") for line in requirements.split())
    assert set(pins) == {Requirement(d).name for d in deps}
    assert all(pins[name] == metadata.version(name) for name in pins)


def test_archives_are_deterministic(tmp_path: Path) -> None:
    for function in FUNCTIONS:
        first = build_archive(function, tmp_path / "a")
        second = build_archive(function, tmp_path / "b")
        assert first.object_name == second.object_name
        assert first.path.read_bytes() == second.path.read_bytes()
        assert first.object_name.startswith(f"{function}-") and len(first.sha256) == 64


def _copy_sources(root: Path) -> Path:
    for folder in ("shared", "functions"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_name_changes_iff_content_changes(tmp_path: Path) -> None:
    root = _copy_sources(tmp_path / "repo")
    out = tmp_path / "out"
    original = build_archive("score", out, root)
    original_enrich = build_archive("enrich", out, root)

    names_py = root / "shared" / "names.py"
    text = names_py.read_text()
    os.utime(names_py, (1_000_000_000, 1_000_000_000))  # mtime only: same content, same archive
    (root / "shared" / "__pycache__").mkdir(exist_ok=True)
    (root / "shared" / "__pycache__" / "names.cpython-311.pyc").write_bytes(b"junk")  # ignored
    assert build_archive("score", out, root).object_name == original.object_name

    names_py.write_text(text + "\n# a change\n")
    assert build_archive("score", out, root).object_name != original.object_name
    assert build_archive("enrich", out, root).object_name != original_enrich.object_name  # shared/ is in both
    names_py.write_text(text)  # back to the original content: back to the original name
    assert build_archive("score", out, root).object_name == original.object_name

    fn_dir = root / "functions" / "score"
    fn_dir.mkdir(parents=True, exist_ok=True)
    (fn_dir / "main.py").write_text((fn_dir / "main.py").read_text() + "\n" if (fn_dir / "main.py").exists()
                                    else "def score(request):\n    return 'ok'\n")
    assert build_archive("score", out, root).object_name != original.object_name
