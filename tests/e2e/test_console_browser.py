"""The analyst console in a real headless Chromium, against the real local stack (emulators).

One stack for the module: Pub/Sub, Firestore and Cloud Storage emulators, both functions under
functions-framework, the console next to them. `txguard publish` sends a simulated burst through the
pipeline while the live view is open; then an analyst reviews a queued decision and its label event
is pulled from `labels-analyst`; an analyst who is not a production approver is refused a promotion
to production with the reason, an approver is not; a transaction is scored in the form; a rule is
written, checked, backtested, saved to staging and promoted on the Rules page; and every form is
given bad input that must be refused with the field named and nothing changed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from txguard.contract import names
from txguard.contract.models import LABEL_ADAPTER, HistoryFeatures
from txguard.local.browser import browser_missing, launch
from txguard.local.stack import LocalStack, StackOptions, emulator_mode_available

pytestmark = [pytest.mark.emulators, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
PROJECT = "txguard-console-e2e"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    missing = browser_missing()
    require(missing is None, missing or "")
    require(emulator_mode_available(), "gcloud (with Java) or fake-gcs-server missing: emulator mode unavailable")
    from rich.console import Console

    from tests.console_fixtures import backtest_sample

    workdir = tmp_path_factory.mktemp("console-stack")
    options = StackOptions(count=0, analyst_console=True, warmup=0, project=PROJECT, workdir=workdir)
    with pytest.MonkeyPatch.context() as env:
        # The Rules page's backtest sample and its approver (local up passes them from its environment).
        env.setenv("BACKTEST_SAMPLE", str(backtest_sample(tmp_path_factory.mktemp("backtest"))))
        env.setenv("CONSOLE_APPROVERS", "alice")
        with LocalStack(options, Console(stderr=True)) as running:
            running.up()
            yield running


@pytest.fixture(scope="module")
def browser(stack: LocalStack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch(pw)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, stack: LocalStack) -> Iterator[Any]:
    context = browser.new_context(base_url=stack.analyst_console.url)
    context.add_cookies([{"name": "txguard_analyst", "value": "alice", "url": stack.analyst_console.url}])
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


def publish(stack: LocalStack, count: int, rate: float, seed: int) -> subprocess.Popen:
    env = {**os.environ, **stack.env, "PUBSUB_EMULATOR_HOST": stack.env["PUBSUB_EMULATOR_HOST"]}
    argv = [sys.executable, "-m", "txguard.cli.main", "publish", "--count", str(count), "--rate", str(rate),
            "--scenario", "burst", "--seed", str(seed), "--project", PROJECT]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def number(page: Any, selector: str) -> int:
    return int(page.inner_text(selector).strip().replace(",", "") or 0)  # counts carry separators


def test_the_live_view_moves_while_txguard_publish_runs(stack: LocalStack, page: Any) -> None:
    queue = page.context.new_page()
    queue.goto("/queue")  # open before the stream: it must say when new items arrive
    page.goto("/live")
    page.wait_for_function("Number(document.getElementById('live').dataset.updates || 0) >= 1")
    seen = [number(page, "#total-decided")]
    proc = publish(stack, count=400, rate=20, seed=5)  # 20 s of publishing: many page updates in it
    try:
        while proc.poll() is None:
            page.wait_for_timeout(700)
            seen.append(number(page, "#total-decided"))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    during = sorted(set(seen))
    assert len(during) >= 3, f"the page did not update while publishing: {seen}"
    assert seen == sorted(seen)  # counts only grow
    # The pipeline drains after the publisher is done: the page keeps following without a reload.
    drain_started = time.monotonic()
    deadline = drain_started + 120
    while time.monotonic() < deadline and number(page, "#total-decided") + number(page, "#total-invalid") < 400:
        page.wait_for_timeout(1000)
    assert number(page, "#total-decided") + number(page, "#total-invalid") == 400
    print(f"drained {time.monotonic() - drain_started:.1f} s after the publisher ended; updates seen while "
          f"publishing: {during}")
    assert number(page, "#total-invalid") > 0  # ~1 % malformed on purpose
    assert page.locator("#rate-chart rect").count() > 0 and page.locator("#latency-chart rect").count() > 0
    assert page.inner_text("#p50") not in ("", "–")  # a latency percentile is shown
    queue.wait_for_selector("#queue-news:not([hidden])", timeout=15_000)  # review/block decisions arrived
    latency = stack.analyst_console.parts.stats.snapshot()["latency"]
    print(f"live view: p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms, histogram {latency['counts']}")


def test_the_live_view_has_a_utc_time_axis_and_a_utc_clock(browser: Any, stack: LocalStack) -> None:
    # A browser in a zone far from UTC: the page must still write UTC, not the browser's local time.
    context = browser.new_context(base_url=stack.analyst_console.url, timezone_id="America/Los_Angeles",
                                  locale="en-US", viewport={"width": 1100, "height": 900})
    context.add_cookies([{"name": "txguard_analyst", "value": "alice", "url": stack.analyst_console.url}])
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto("/live")
        assert page.evaluate("new Date(0).getTimezoneOffset()") == 480  # the browser really is at UTC-8
        page.wait_for_function("Number(document.getElementById('live').dataset.updates || 0) >= 2")
        # The clock: the server's time in UTC, with the zone written out.
        status = page.inner_text("#live-status")
        match = re.fullmatch(r"live · (\d\d):(\d\d):(\d\d) UTC", status.strip())
        assert match, status
        now = datetime.now(UTC)
        shown = now.replace(hour=int(match[1]), minute=int(match[2]), second=int(match[3]), microsecond=0)
        gap = abs((now - shown).total_seconds())
        assert min(gap, 86_400 - gap) < 10, f"clock shows {status}, UTC now is {now:%H:%M:%S}"
        assert page.inner_text("#totals-since").endswith(" UTC")

        # The time axis: a tick every 30 s of the window, labelled with that second's UTC time, left to right.
        ticks = page.eval_on_selector_all(
            "#rate-chart .x-tick",
            "els => els.map(e => ({text: e.textContent, epoch: Number(e.dataset.epoch), x: Number(e.getAttribute('x'))}))")
        window_s = int(page.get_attribute("#live", "data-window"))
        assert len(ticks) == window_s // 30, ticks
        for tick in ticks:
            assert tick["epoch"] % 30 == 0
            assert tick["text"] == datetime.fromtimestamp(tick["epoch"], UTC).strftime("%H:%M:%S"), tick
        assert [t["x"] for t in ticks] == sorted(t["x"] for t in ticks)
        assert [t["epoch"] for t in ticks] == sorted(t["epoch"] for t in ticks)
        assert abs(ticks[-1]["epoch"] - now.timestamp()) < 30 + 10  # the axis ends at the present
        assert "UTC" in page.text_content("#rate-chart .x-title")
        y_ticks = page.eval_on_selector_all("#rate-chart .y-tick", "els => els.map(e => e.textContent)")
        assert y_ticks[0] == "0/s" and all(t.endswith("/s") for t in y_ticks), y_ticks

        # Undistorted: both charts scale their text alike in x and y (no preserveAspectRatio="none").
        for chart in ("#rate-chart", "#latency-chart"):
            assert page.get_attribute(chart, "preserveAspectRatio") is None
            scale = page.eval_on_selector(chart, "svg => { const m = svg.getScreenCTM(); return [m.a, m.d]; }")
            assert scale[0] > 0 and abs(scale[0] - scale[1]) < 1e-6, (chart, scale)
    finally:
        context.close()


def _watch_labels() -> str:
    from google.cloud import pubsub_v1

    client = pubsub_v1.SubscriberClient()
    path = client.subscription_path(PROJECT, f"labels-e2e-{uuid.uuid4().hex[:6]}")
    # The console's verdicts travel on their own topic (the analyst route: docs/counterparty.md, "Who may label").
    client.create_subscription(request={"name": path,
                                        "topic": f"projects/{PROJECT}/topics/{names.ANALYST_LABELS_TOPIC}"})
    client.close()
    return path


def _pull(path: str, timeout_s: float = 30.0) -> list[Any]:
    from google.cloud import pubsub_v1

    client = pubsub_v1.SubscriberClient()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            resp = client.pull(request={"subscription": path, "max_messages": 10}, timeout=5)
            if resp.received_messages:
                client.acknowledge(request={"subscription": path,
                                            "ack_ids": [m.ack_id for m in resp.received_messages]})
                return [m.message for m in resp.received_messages]
    finally:
        client.close()
    return []


def _first_free_item(page: Any) -> str:
    page.goto("/queue")
    page.wait_for_selector("table.items tbody tr")
    row = page.locator("table.items tbody tr", has=page.locator("span.free")).first
    return row.get_attribute("data-transaction")


def test_review_an_item_and_see_its_label_on_labels(stack: LocalStack, page: Any, browser: Any) -> None:
    if stack.analyst_console.parts.queue.open_counts() == {}:
        proc = publish(stack, count=300, rate=40, seed=9)
        assert proc.wait(timeout=120) == 0
    watch = _watch_labels()
    deadline = time.monotonic() + 120
    while not stack.analyst_console.parts.queue.open_counts() and time.monotonic() < deadline:
        time.sleep(1)
    transaction_id = _first_free_item(page)
    page.click(f"a:text-is('{transaction_id}')")
    page.wait_for_selector("#item")
    page.click("#claim")
    page.wait_for_selector("#claim-state:has-text('Claimed by alice')")

    # A second analyst cannot take it.
    bob = browser.new_context(base_url=stack.analyst_console.url)
    bob.add_cookies([{"name": "txguard_analyst", "value": "bob", "url": stack.analyst_console.url}])
    bob_page = bob.new_page()
    bob_page.goto(f"/queue/{transaction_id}")
    bob_page.click("#claim")
    bob_page.wait_for_selector("#review-error:not([hidden])")
    assert "claimed by alice" in bob_page.inner_text("#review-error")
    bob.close()

    # No verdict chosen: refused, named, nothing changed.
    page.click("#submit-verdict")
    page.wait_for_selector("#review-error:not([hidden])")
    assert "verdict" in page.inner_text("#review-error")
    assert page.inner_text(".field-error[data-for=verdict]") != ""
    item = stack.analyst_console.parts.queue.get(transaction_id)
    assert item.open and item.label_id is None and item.claimed_by == "alice"

    page.check("input[name=verdict][value=fraud]")
    page.fill("textarea[name=note]", "six new payees in an hour")
    page.click("#submit-verdict")
    page.wait_for_selector("#review-result:not([hidden])")
    assert "published on labels" in page.inner_text("#review-result")

    messages = _pull(watch)
    assert len(messages) == 1
    event = LABEL_ADAPTER.validate_json(messages[0].data)
    assert (event.transaction_id, event.is_fraud, event.source) == (transaction_id, True, "analyst:alice")
    assert event.note == "six new payees in an hour" and event.kind.value == "analyst"
    page.goto("/queue")
    assert transaction_id not in page.content()


def test_score_a_transaction_in_the_form(stack: LocalStack, page: Any) -> None:
    from txguard.enrichment.history.firestore import FirestoreHistoryStore

    history = FirestoreHistoryStore(project=PROJECT)
    wallet = "w000013"
    before = history.wallet_state(wallet)
    page.goto("/score")
    page.fill("input[name=wallet_id]", wallet)
    page.fill("input[name=counterparty_id]", "m-new-001")
    page.fill("input[name=amount]", "-40")
    page.fill("input[name=country]", "ZZ")
    page.click("#score-submit")
    page.wait_for_selector("#score-error:not([hidden])")
    assert page.inner_text(".field-error[data-for=amount]") and page.inner_text(".field-error[data-for=country]")
    assert page.locator("input[name=amount].invalid").count() == 1
    assert page.is_hidden("#score-result")

    page.fill("input[name=amount]", "1450")
    page.fill("input[name=country]", "FR")
    page.select_option("select[name=type]", "transfer")
    page.click("#score-submit")
    page.wait_for_selector("#score-result:not([hidden])")
    assert page.inner_text("#result-outcome") in ("allow", "review", "block")
    assert 0.0 <= float(page.inner_text("#result-score")) <= 1.0
    assert page.locator("#result-features tr").count() == len(HistoryFeatures.model_fields)  # every history feature
    assert page.is_hidden("#score-error")
    assert history.wallet_state(wallet) == before  # scoring by hand wrote nothing
    history.close()


def test_model_alias_moves_need_the_alias_typed(stack: LocalStack, page: Any) -> None:
    registry = stack.analyst_console.parts.registry
    current = registry.load("production")
    candidate = registry.publish(current.artifact, current.metadata.model_copy(update={"version": ""}))
    before = registry.aliases()
    page.goto("/models")
    form = page.locator(f"form[data-action=promote][data-alias=staging][data-version={candidate.version}]")
    form.locator("input[name=confirm]").fill("nope")
    form.locator("button").click()
    page.wait_for_selector("#models-error:not([hidden])")
    assert "type the alias name (staging) to confirm" in page.inner_text("#models-error")
    assert form.locator(".field-error[data-for=confirm]").inner_text() != ""
    assert registry.aliases() == before  # refused: nothing moved

    form.locator("input[name=confirm]").fill("staging")
    form.locator("button").click()
    page.wait_for_selector("#models-result:not([hidden])")
    assert registry.aliases()["staging"] == candidate.version
    page.wait_for_selector(f"#version-{candidate.version} .badge.alias:text-is('staging')")  # reloaded
    rollback = page.locator("form[data-action=rollback][data-alias=staging]")
    rollback.locator("input[name=confirm]").fill("staging")
    rollback.locator("button").click()
    page.wait_for_selector("#models-result:not([hidden])")
    assert registry.aliases() == before


def test_only_an_approver_moves_production_and_the_others_see_why(stack: LocalStack, page: Any,
                                                                     browser: Any) -> None:
    from txguard.console.approvers import Approvers
    from txguard.registry.metadata import QualityGate

    parts = stack.analyst_console.parts
    registry = parts.registry
    before_approvers = parts.approvers
    parts.approvers = Approvers.of(["carol@example.com"])  # CONSOLE_APPROVERS, as the stack config sets it
    try:
        current = registry.load("production")
        # A candidate that passed its quality gate (the console refuses any other), so only who asks matters.
        gate = QualityGate(passed=True, compared_with=current.metadata.version)
        candidate = registry.publish(current.artifact, current.metadata.model_copy(
            update={"version": "", "quality_gate": gate}))
        before = registry.aliases()
        page.goto("/models")
        form = page.locator(f"form[data-action=promote][data-alias=production][data-version={candidate.version}]")
        assert "approvers only" in form.inner_text()  # said before anyone tries
        form.locator("input[name=confirm]").fill("production")
        form.locator("button").click()
        page.wait_for_selector("#models-error:not([hidden])")
        refused = page.inner_text("#models-error")
        assert f"alice may not promote {candidate.version} to production: only a production approver may" in refused
        assert registry.aliases() == before  # refused: nothing moved

        carol = browser.new_context(base_url=stack.analyst_console.url)
        carol.add_cookies([{"name": "txguard_analyst", "value": "carol@example.com",
                            "url": stack.analyst_console.url}])
        approver = carol.new_page()
        approver.set_default_timeout(30_000)
        approver.goto("/models")
        mine = approver.locator(f"form[data-action=promote][data-alias=production][data-version={candidate.version}]")
        assert "approvers only" not in mine.inner_text()
        mine.locator("input[name=confirm]").fill("production")
        mine.locator("button").click()
        approver.wait_for_selector("#models-result:not([hidden])")
        assert registry.aliases()["production"] == candidate.version
        approver.wait_for_selector(f"#version-{candidate.version} .badge.alias:text-is('production')")  # reloaded
        rollback = approver.locator("form[data-action=rollback][data-alias=production]")
        rollback.locator("input[name=confirm]").fill("production")
        rollback.locator("button").click()
        deadline = time.monotonic() + 30
        while registry.aliases()["production"] != before["production"] and time.monotonic() < deadline:
            time.sleep(0.2)
        carol.close()
        assert registry.aliases()["production"] == before["production"]
    finally:
        parts.approvers = before_approvers


def test_write_check_backtest_save_and_promote_a_rule(stack: LocalStack, page: Any) -> None:
    from txguard.registry.rulesets import RuleSetRegistry

    store = RuleSetRegistry(stack.analyst_console.parts.registry.store)
    before = store.aliases()  # local up saved the demo's rule set as production
    page.goto("/rules")
    cards = page.locator("#rule-list .rule-card")
    assert cards.count() == len(store.load(before["production"]).spec.rules)  # the draft starts from it
    page.click("#rule-add")
    new = cards.nth(cards.count() - 1)
    new.locator("[name=name]").fill("new_shop_e2e")
    new.locator("[name=condition]").fill("type == 'payment' && amout > 100")
    new.locator("[name=outcome]").select_option("review")
    new.locator("[name=reason]").fill("first big payment to a new shop")
    page.click("#rules-check")
    page.wait_for_selector("#rule-list .rule-card.invalid")
    problem = new.locator(".rule-problems").inner_text()
    assert "\n" + " " * 21 + "^ line 1, column 22: unknown name 'amout'" in problem, problem  # caret under it

    new.locator("[name=condition]").fill("type == 'payment' && amount > 100 && is_new_counterparty == 1")
    page.click("#rules-check")
    page.wait_for_selector("#rules-result:not([hidden])")
    assert "pass the check" in page.inner_text("#rules-result") and page.locator(".rule-card.invalid").count() == 0

    page.click("#rules-backtest")
    page.wait_for_selector("#backtest-result:not([hidden])")
    row = page.locator("#backtest-table tr[data-rule=new_shop_e2e] td")
    assert row.nth(1).inner_text() == "review" and int(row.nth(2).inner_text()) > 0  # it hits the sample's rows
    assert "frauds the model missed" in page.inner_text("#backtest-summary")
    assert store.aliases() == before  # a backtest saves nothing

    page.click("#rules-save button[type=submit]")  # no reason: refused, nothing saved
    page.wait_for_selector("#rules-error:not([hidden])")
    assert page.inner_text("#rules-save .field-error[data-for=reason]") != "" and store.aliases() == before
    page.fill("#rules-save input[name=reason]", "fake shops since Friday")
    page.click("#rules-save button[type=submit]")
    page.wait_for_selector("#rules-result:has-text('on staging')")
    staged = store.aliases()["staging"]
    meta = store.metadata(staged)
    assert meta.saved_by == "alice" and meta.reason == "fake shops since Friday" and "new_shop_e2e" in meta.rules
    assert store.aliases()["production"] == before["production"]  # saving never touches production

    page.wait_for_selector(f"#alias-staging .value:text-is('{staged}')")  # the page reloaded
    page.fill("#rules-promote input[name=confirm]", "production")
    page.click("#rules-promote button")
    page.wait_for_selector("#rules-result:has-text('production now applies')")
    assert store.aliases()["production"] == staged
    page.wait_for_selector(f"#alias-production .value:text-is('{staged}')")
    page.fill("#rules-rollback input[name=confirm]", "production")
    page.click("#rules-rollback button")
    page.wait_for_selector("#rules-result:has-text('rollback')")
    assert store.aliases()["production"] == before["production"]  # back: the other tests see the demo's set
