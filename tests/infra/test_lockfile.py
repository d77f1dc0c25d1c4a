"""The runtime lock (requirements.lock): fresh against pyproject, hash-pinned, what the tests run on."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from pulumi_mocks import ROOT

from infra import lockfile
from infra.archive import build_archive

SAMPLE = """\
# input: numpy>=1.26
# input: requests<3,>=2.31
numpy==2.4.6 ; python_full_version < '3.12' \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
    # via -r pyproject.toml
numpy==2.5.5 ; python_full_version >= '3.12' \\
    --hash=sha256:cccc
requests==2.34.2 \\
    --hash=sha256:dddd
    # via
    #   -r pyproject.toml
"""


def _copy(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", lockfile.LOCK_NAME):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _edit_dependencies(root: Path, old: str, new: str) -> None:
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    assert old in text
    pyproject.write_text(text.replace(old, new, 1))


def test_the_repository_lock_matches_pyproject() -> None:
    lock = lockfile.parse((ROOT / lockfile.LOCK_NAME).read_text(encoding="utf-8"))
    assert lockfile.problems(lock) == [], "run `make lock`"
    assert lock.inputs == lockfile.runtime_dependencies()
    for pin in lock.pins:  # every pin hash-checked: pip installs the archive in hash-checking mode
        assert pin.hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin.hashes), pin.name
    # The closure, not just the top level: e.g. grpcio under google-cloud-pubsub, werkzeug under Flask.
    names = {p.name for p in lock.pins}
    assert {"grpcio", "werkzeug", "protobuf", "urllib3", "gunicorn"} <= names
    assert len(names) > 3 * len(lock.inputs)


def test_the_tests_run_on_the_locked_versions() -> None:
    """`make venv` installs the lock first: what the suite imports is what the archives install."""
    lock = lockfile.parse((ROOT / lockfile.LOCK_NAME).read_text(encoding="utf-8"))
    differ = {p.name: (p.version, metadata.version(p.name)) for p in lock.pins
              if (p.marker is None or Marker(p.marker).evaluate()) and metadata.version(p.name) != p.version}
    assert not differ, f"installed versions differ from {lockfile.LOCK_NAME} (run `make venv`): {differ}"


def test_parse_reads_markers_hashes_and_inputs() -> None:
    lock = lockfile.parse(SAMPLE)
    assert lock.inputs == ["numpy>=1.26", "requests<3,>=2.31"]
    assert [(p.name, p.version, p.hashes) for p in lock.pins] == [
        ("numpy", "2.4.6", ("sha256:aaaa", "sha256:bbbb")),
        ("numpy", "2.5.5", ("sha256:cccc",)),
        ("requests", "2.34.2", ("sha256:dddd",)),
    ]
    assert lock.pins[0].marker == 'python_full_version < "3.12"'
    with pytest.raises(lockfile.StaleLockError, match="not pinned with =="):
        lockfile.parse("numpy>=2 \\\n    --hash=sha256:aaaa\n")


def test_a_new_runtime_dependency_makes_the_lock_stale(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit_dependencies(root, '"requests>=2.31,<3",', '"requests>=2.31,<3",\n  "tenacity>=8.2",')
    found = lockfile.problems(lockfile.parse((root / lockfile.LOCK_NAME).read_text()), root)
    assert any("tenacity>=8.2" in p for p in found)
    assert "tenacity is not pinned" in found
    with pytest.raises(lockfile.StaleLockError, match="make lock"):
        lockfile.read(root)


def test_a_narrowed_range_that_excludes_the_pin_makes_the_lock_stale(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    locked = lockfile.parse((root / lockfile.LOCK_NAME).read_text()).versions("requests")[0]
    _edit_dependencies(root, '"requests>=2.31,<3",', f'"requests>{locked},<3",')
    found = lockfile.problems(lockfile.parse((root / lockfile.LOCK_NAME).read_text()), root)
    assert f"requests=={locked} does not satisfy requests<3,>{locked}" in found


def test_a_missing_hash_is_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lock = root / lockfile.LOCK_NAME
    lock.write_text(re.sub(r"(?m)^(werkzeug==[^ ]+) \\\n(    --hash=\S+( \\)?\n)+", r"\1\n", lock.read_text()))
    found = lockfile.problems(lockfile.parse(lock.read_text()), root)
    assert any(p.startswith("werkzeug==") and p.endswith("has no --hash") for p in found)


def test_stale_lock_stops_the_archive_build(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for folder in ("shared", "functions"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    _copy(root)
    before = build_archive("score", tmp_path / "out", root).object_name
    _edit_dependencies(root, '"requests>=2.31,<3",', '"requests>=2.31,<3",\n  "tenacity>=8.2",')
    with pytest.raises(lockfile.StaleLockError, match="tenacity"):
        build_archive("score", tmp_path / "out", root)
    # A regenerated lock is new content: a new archive name (the deploy installs the new pins).
    _edit_dependencies(root, '\n  "tenacity>=8.2",', "")
    lock = root / lockfile.LOCK_NAME
    lock.write_text(lock.read_text().replace("# via", "# via (regenerated)", 1))
    assert build_archive("score", tmp_path / "out", root).object_name != before


def test_make_lock_reproduces_the_committed_lock(tmp_path: Path) -> None:
    """Regenerating from the committed lock changes nothing (uv keeps its pins): one command, stable text."""
    if shutil.which("uv", path=str(Path(sys.executable).parent)) is None and not shutil.which("uv"):
        pytest.skip("uv is not installed (dev extra)")
    root = _copy(tmp_path)
    try:
        lockfile.generate(root)
    except SystemExit as exc:  # uv needs the package index for hashes it has not cached
        if re.search(r"(?i)network|connect|dns|timed out|offline", str(exc)):
            pytest.skip(f"package index unreachable: {str(exc)[:200]}")
        raise
    assert (root / lockfile.LOCK_NAME).read_text() == (ROOT / lockfile.LOCK_NAME).read_text()


def test_make_lock_is_the_documented_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"(?m)^lock:.*\n\t.*-m infra\.lockfile", makefile)
    assert "requirements.lock" in (ROOT / "README.md").read_text()
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert "uv" in {Requirement(spec).name for spec in dev}  # the dev extra installs the tool
    done = subprocess.run([sys.executable, "-m", "infra.lockfile", "check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith('{"lock": "requirements.lock", "ok": true')

