"""The console ships in its own archive: adding or editing it leaves the score and enrich archives
(their content-hash names) as they are, and its archive carries its templates and static files."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from pulumi_mocks import ROOT

from infra.archive import build_archive


def _copy(root: Path) -> Path:
    for folder in ("shared", "scripts", "models", "functions"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _names(root: Path, out: Path, functions: tuple[str, ...] = ("score", "enrich")) -> dict[str, str]:
    return {f: build_archive(f, out, root).object_name for f in functions}


def test_the_console_does_not_touch_the_function_archives(tmp_path: Path) -> None:
    root = _copy(tmp_path / "repo")
    out = tmp_path / "out"
    with_console = _names(root, out)
    console = build_archive("console", out, root).object_name

    (root / "shared" / "txguard" / "console" / "static" / "console.js").write_text("// edited\n")
    app = root / "shared" / "txguard" / "console" / "app.py"
    app.write_text(app.read_text() + "\n# a change\n")
    assert _names(root, out) == with_console
    assert build_archive("console", out, root).object_name != console

    shutil.rmtree(root / "shared" / "txguard" / "console")  # as before the console existed
    shutil.rmtree(root / "functions" / "console")
    assert _names(root, out) == with_console


def test_the_console_archive_holds_its_pages_and_no_tooling(tmp_path: Path) -> None:
    archive = build_archive("console", tmp_path)
    with zipfile.ZipFile(archive.path) as zf:
        entries = set(zf.namelist())
    assert "main.py" in entries
    for name in ("templates/base.html", "templates/queue.html", "static/console.js", "static/console.css", "app.py"):
        assert f"txguard/console/{name}" in entries
    assert {e.split("/")[1] for e in entries if e.startswith("txguard/")} == {
        "console", "contract", "enrichment", "features", "registry"}
    assert not [e for e in entries if e.startswith(("txguard/scoring/", "txguard/local/", "txguard/cli/"))]
