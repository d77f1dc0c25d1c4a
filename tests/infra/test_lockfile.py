"""The runtime lock (requirements.lock): fresh against pyproject, hash-pinned, what the tests run on."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from pulumi_mocks import ROOT

from infra import lockfile
from infra.archive import build_archive

SAMPLE = """\
# resolved as of: 2026-12-05T00:00:00Z
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
    for name in ("pyproject.toml", "README.md", lockfile.UV_LOCK_NAME, lockfile.LOCK_NAME, lockfile.DEV_LOCK_NAME):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _edit_dependencies(root: Path, old: str, new: str) -> None:
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    assert old in text
    pyproject.write_text(text.replace(old, new, 1))


def _locks(root: Path = ROOT) -> tuple[lockfile.Lock, lockfile.Lock]:
    return (lockfile.parse((root / lockfile.LOCK_NAME).read_text(encoding="utf-8")),
            lockfile.parse((root / lockfile.DEV_LOCK_NAME).read_text(encoding="utf-8")))


def test_the_repository_locks_match_pyproject_and_each_other() -> None:
    assert lockfile.all_problems() == [], "run `make lock`"
    runtime, dev = _locks()
    assert runtime.inputs == lockfile.runtime_dependencies()
    assert dev.inputs == lockfile.all_inputs() and dev.cutoff == lockfile.cutoff()
    for pin in runtime.pins + dev.pins:  # every pin hash-checked: pip installs in hash-checking mode
        assert pin.hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin.hashes), pin.name
    # The closure, not just the top level: e.g. grpcio under google-cloud-pubsub, werkzeug under Flask.
    names = {p.name for p in runtime.pins}
    assert {"grpcio", "werkzeug", "protobuf", "urllib3", "gunicorn"} <= names
    assert len(names) > 3 * len(runtime.inputs)
    # Every extra is in the one resolution, with the tools that run the others (uv, the build backend).
    dev_names = {p.name for p in dev.pins}
    assert {"scikit-learn", "pulumi-gcp", "apache-beam", "pytest", "uv", "setuptools"} <= dev_names
    assert names < dev_names


def test_the_runtime_lock_is_exactly_the_runtime_subset_of_the_resolution(tmp_path: Path) -> None:
    """Same versions and hashes as the dev lock, and what `uv export` of uv.lock's runtime gives (offline)."""
    runtime, dev = _locks()
    assert lockfile.consistency(runtime, dev) == []
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is in the dev lock: `make venv` installs it"
    done = subprocess.run([uv, "export", "--frozen", "--offline", "--no-emit-project", "--no-header", "--quiet",
                           "--format", "requirements-txt"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    lines = (ROOT / lockfile.LOCK_NAME).read_text(encoding="utf-8").splitlines(keepends=True)
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    assert "".join(lines[header:]) == done.stdout
    # And the archives ship exactly that file.
    archive = build_archive("score", tmp_path, ROOT)
    with zipfile.ZipFile(archive.path) as zf:
        assert zf.read("requirements.txt").decode() == (ROOT / lockfile.LOCK_NAME).read_text(encoding="utf-8")


def test_a_version_that_differs_between_the_locks_is_named(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    dev = root / lockfile.DEV_LOCK_NAME
    locked = lockfile.parse(dev.read_text()).versions("werkzeug")[0]
    dev.write_text(dev.read_text().replace(f"werkzeug=={locked} ", "werkzeug==0.0.1 ", 1))
    runtime, changed = _locks(root)
    found = lockfile.consistency(runtime, changed)
    assert len(found) == 1 and found[0].startswith(f"werkzeug: {lockfile.LOCK_NAME} pins ['{locked}']")
    assert any(p.startswith("werkzeug:") for p in lockfile.resolution_problems(changed, root))


def test_the_tests_run_on_the_locked_versions() -> None:
    """`make venv` installs the dev lock and nothing else: what the suite imports is what is locked."""
    runtime, dev = _locks()
    assert lockfile.installed_differences(runtime) == {}, f"run `make venv` ({lockfile.LOCK_NAME})"
    assert lockfile.installed_differences(dev) == {}, f"run `make venv` ({lockfile.DEV_LOCK_NAME})"


def test_make_venv_installs_only_what_is_locked() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = re.findall(r"(?m)^\t.*pip install (.*)$", makefile)
    assert installs == ["-q --require-hashes --no-deps -r requirements-dev.lock",
                        "-q --no-deps --no-build-isolation -e ."], installs
    assert re.search(r"(?m)^\t\$\(BIN\)/python -m pip check$", makefile)
    assert re.search(r"(?m)^\t\$\(BIN\)/python -m infra\.lockfile check", makefile)


def test_parse_reads_markers_hashes_and_inputs() -> None:
    lock = lockfile.parse(SAMPLE)
    assert lock.inputs == ["numpy>=1.26", "requests<3,>=2.31"]
    assert lock.cutoff == "2026-12-05T00:00:00Z"
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
    assert "requirements.lock: tenacity is not pinned" in found
    with pytest.raises(lockfile.StaleLockError, match="make lock"):
        lockfile.read(root)


def test_a_narrowed_range_that_excludes_the_pin_makes_the_lock_stale(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    locked = lockfile.parse((root / lockfile.LOCK_NAME).read_text()).versions("requests")[0]
    _edit_dependencies(root, '"requests>=2.31,<3",', f'"requests>{locked},<3",')
    found = lockfile.problems(lockfile.parse((root / lockfile.LOCK_NAME).read_text()), root)
    assert f"requirements.lock: requests=={locked} does not satisfy requests<3,>{locked}" in found


def test_a_missing_hash_is_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lock = root / lockfile.LOCK_NAME
    lock.write_text(re.sub(r"(?m)^(werkzeug==[^ ]+) \\\n(    --hash=\S+( \\)?\n)+", r"\1\n", lock.read_text()))
    found = lockfile.problems(lockfile.parse(lock.read_text()), root)
    assert any(p.startswith("requirements.lock: werkzeug==") and p.endswith("has no --hash") for p in found)


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


def _generate_or_skip(root: Path) -> None:
    if shutil.which("uv", path=str(Path(sys.executable).parent)) is None and not shutil.which("uv"):
        pytest.fail("uv is not installed: it is in the dev lock (`make venv`)")
    try:
        lockfile.generate(root)
    except SystemExit as exc:  # uv needs the package index for what it has not cached
        if re.search(r"(?i)network|connect|dns|timed out|offline|resolve host", str(exc)):
            pytest.skip(f"package index unreachable: {str(exc)[:200]}")
        raise


def test_make_lock_reproduces_the_committed_locks(tmp_path: Path) -> None:
    """Twice in a row, and from scratch (no uv.lock) as of the recorded cut-off: the same three files.

    From scratch is what a later `make lock` meets when a newer release of anything is out: the
    cut-off date keeps it out, so the text does not change."""
    root = _copy(tmp_path)
    names = (lockfile.UV_LOCK_NAME, lockfile.LOCK_NAME, lockfile.DEV_LOCK_NAME)
    _generate_or_skip(root)
    assert {n: (root / n).read_text() == (ROOT / n).read_text() for n in names} == dict.fromkeys(names, True)
    (root / lockfile.UV_LOCK_NAME).unlink()
    _generate_or_skip(root)
    assert {n: (root / n).read_text() == (ROOT / n).read_text() for n in names} == dict.fromkeys(names, True)


def test_upgrade_moves_the_cutoff_to_the_day(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    stamp = lockfile.move_cutoff(root, dt.datetime(2027, 1, 15, 13, 5, tzinfo=dt.UTC))
    assert stamp == "2027-01-15T00:00:00Z" == lockfile.cutoff(root)
    # The locks now disagree with pyproject until `make lock` has run.
    runtime, dev = _locks(root)
    assert any("resolved as of 2026" in p for p in lockfile.dev_problems(dev, root))
    assert any("uv.lock was resolved as of" in p for p in lockfile.resolution_problems(dev, root))


def test_make_lock_is_the_documented_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"(?m)^lock:.*\n\t.*-m infra\.lockfile \$\(if \$\(UPGRADE\),--upgrade\)", makefile)
    for doc in ("README.md", "docs/deploy.md"):
        text = (ROOT / doc).read_text()
        assert "make lock UPGRADE=1" in text and "requirements-dev.lock" in text, doc
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert "uv" in {Requirement(spec).name for spec in dev}  # the dev extra installs the tool
    done = subprocess.run([sys.executable, "-m", "infra.lockfile", "check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == '{"lock": "requirements.lock", "ok": true, "problems": []}'


def test_a_new_subpackage_installs_the_project_again(tmp_path: Path) -> None:
    """The editable install maps each txguard subpackage to its folder: a pull that adds one must redo it."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("requirements-dev.lock", "pyproject.toml"):
        (tmp_path / name).write_text("")
    for folder in ("shared/txguard/scoring", "scripts/txguard/cli", "models/txguard/training"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / ".venv").mkdir()
    later = time.time() + 5
    for stamp in (".venv/.locked", ".venv/.installed"):
        (tmp_path / stamp).write_text("")
        os.utime(tmp_path / stamp, (later, later))

    def dry_run() -> str:
        return subprocess.run(["make", "-n", "venv"], cwd=tmp_path, capture_output=True, text=True,
                              check=True).stdout

    assert "pip install" not in dry_run()
    (tmp_path / "shared/txguard/rules").mkdir()
    os.utime(tmp_path / "shared/txguard", (later + 5, later + 5))  # as the checkout that adds it would
    assert "--no-build-isolation -e ." in dry_run()
