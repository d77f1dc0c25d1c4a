"""`txguard console screenshots`: every console page, captured from a real local stack.

Starts the local stack with the console (emulators when gcloud is there; the scoring function
samples every row into drift windows), streams a short simulated burst through the pipeline, then in
headless Chromium: the review queue, one item claimed, the live
view, a transaction scored by hand (and the same form with bad input), and the models page.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from txguard.local.browser import launch
from txguard.local.stack import LocalStack, StackOptions

VIEWPORT = {"width": 1360, "height": 900}


def _shot(page: Any, out: Path, name: str, files: list[str]) -> None:
    path = out / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    files.append(str(path))


# The scoring function samples 10 % of its rows into drift windows of at least 500 rows by default:
# every row, 500 a window, so that a short stream leaves drift windows for the models page to show.
DRIFT_ENV = {"DRIFT_SAMPLE_RATE": "1.0", "DRIFT_WINDOW_ROWS": "500"}


def take_screenshots(out: Path, count: int = 1200, embedded: bool = False, workdir: Path | None = None,
                     log: Any = None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright
    from rich.console import Console

    from txguard.local import stream

    out.mkdir(parents=True, exist_ok=True)
    options = StackOptions(count=count, embedded=embedded, analyst_console=True, workdir=workdir, warmup=0,
                           scenario="burst", seed=11)
    files: list[str] = []
    with LocalStack(options, log or Console(stderr=True)) as stack:
        os.environ.update(DRIFT_ENV)  # restored when the stack closes
        stack.up()
        url = stack.analyst_console.url
        summary = stream.run_stream(stack)
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/live")
            page.wait_for_function("Number(document.getElementById('live').dataset.updates || 0) >= 2")
            _shot(page, out, "live", files)
            page.goto(f"{url}/queue")
            _shot(page, out, "queue", files)
            first = page.locator("table.items tbody tr a").first
            reviewed = None
            if first.count():
                reviewed = first.inner_text()
                first.click()
                page.click("#claim")
                page.wait_for_selector("#claim-state:has-text('Claimed by')")
                page.check("input[name=verdict][value=fraud]")
                page.fill("textarea[name=note]", "burst of new counterparties; card testing pattern")
                _shot(page, out, "review", files)
            page.goto(f"{url}/score")
            page.fill("input[name=wallet_id]", "w000013")
            page.fill("input[name=counterparty_id]", "m-new-001")
            page.fill("input[name=amount]", "-40")
            page.fill("input[name=country]", "ZZ")
            page.click("#score-submit")
            page.wait_for_selector("#score-error:not([hidden])")
            _shot(page, out, "score-invalid", files)
            page.fill("input[name=amount]", "1450")
            page.fill("input[name=country]", "FR")
            page.select_option("select[name=type]", "transfer")
            page.click("#score-submit")
            page.wait_for_selector("#score-result:not([hidden])")
            _shot(page, out, "score", files)
            page.goto(f"{url}/models")
            _shot(page, out, "models", files)
            browser.close()
        time.sleep(0.1)
    return {"files": files, "mode": stack.mode, "reviewed": reviewed, "decided": summary.get("decided"),
            "decisions": summary.get("decisions")}
