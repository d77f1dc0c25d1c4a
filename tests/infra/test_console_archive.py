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
    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, root / name)
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
    for name in ("templates/base.html", "templates/queue.html", "templates/rules.html", "static/console.js",
                 "static/console.css", "app.py", "approvers.py"):
        assert f"txguard/console/{name}" in entries
    assert {e.split("/")[1] for e in entries if e.startswith("txguard/")} == {
        "console", "contract", "enrichment", "features", "registry", "rules"}  # the Rules page checks and backtests
    assert not [e for e in entries if e.startswith(("txguard/scoring/", "txguard/local/", "txguard/cli/"))]


def test_the_console_archive_boots_alone_and_serves_its_pages(tmp_path: Path) -> None:
    import urllib.request

    from test_archive_boot import archive_env, assert_imports_from_archive, http, serve, unpack

    from tests.conftest import PROJECT
    from tests.scoring_fixtures import publish_tiny
    from txguard.contract import names

    unpacked = unpack("console", tmp_path)
    publish_tiny(tmp_path / "registry")
    env = archive_env(unpacked, {
        "GOOGLE_CLOUD_PROJECT": PROJECT, "FUNCTION_SIGNATURE_TYPE": "http", "WORKERS": "1", "THREADS": "4",
        "HISTORY_STORE": "sqlite", "SQLITE_PATH": str(tmp_path / "h.sqlite3"),
        "CONSOLE_QUEUE_PATH": str(tmp_path / "q.sqlite3"), "TXGUARD_REGISTRY": str(tmp_path / "registry"),
        "CONSOLE_INGEST": "false", "SCORING_URL": "http://127.0.0.1:9", "SCORING_AUTH": "none",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
    })
    assert_imports_from_archive(unpacked, env)
    with serve(unpacked, names.CONSOLE_ENTRY_POINT, env) as base:
        pages = {path: http(f"{base}{path}") for path in ("/healthz", "/queue", "/live", "/score", "/models", "/rules",
                                                           "/assets/console.js", "/assets/console.css")}
        with urllib.request.urlopen(f"{base}/api/live/stream", timeout=30) as stream:
            first = stream.readline().decode()
    for path, (status, body) in pages.items():
        assert status == 200, (path, body[:500])
    assert b"v1" in pages["/models"][1]
    assert first.startswith("data: ") and "per_second" in first
