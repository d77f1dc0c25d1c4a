"""Headless Chromium for the console's browser tests and screenshots: Debian's `chromium` driven
through Playwright's Python API (Playwright's own browser download is not used)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ("--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")


def chromium_path() -> Path | None:
    """CHROMIUM_PATH if set, else Debian's /usr/bin/chromium, else `chromium` on the PATH."""
    for candidate in (os.environ.get("CHROMIUM_PATH"), str(CHROMIUM), shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "chromium is not installed (make browser, or apt-get install chromium)"
    return None


def launch(playwright: Any) -> Any:
    path = chromium_path()
    if path is None:
        raise RuntimeError(browser_missing() or "chromium not found")
    return playwright.chromium.launch(executable_path=str(path), args=list(CHROMIUM_ARGS))
