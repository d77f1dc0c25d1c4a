"""The console reads well: human names with the raw one in a tooltip, numbers without scientific
notation, UTC everywhere, totals from the stream's start, /healthz failing when ingestion keeps
failing, the queue file next to the history, and what became of a verdict's label."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.console_fixtures import console_parts, decide
from tests.enrich_fakes import make_tx
from txguard.console.app import create_app
from txguard.console.ingest import SubscriptionReader
from txguard.console.live_stats import LiveStats
from txguard.console.present import human, number, utc
from txguard.console.wiring import ConsoleParts
from txguard.contract.settings import ConsoleSettings


@pytest.fixture
def parts(tmp_path: Path) -> ConsoleParts:
    p = console_parts(tmp_path, LABEL_SOURCE=f"file:{tmp_path / 'label.log'}")
    yield p
    p.close()


@pytest.fixture
def client(parts: ConsoleParts) -> FlaskClient:
    app = create_app(parts)
    app.testing = True
    return app.test_client()


def test_numbers_read_as_numbers() -> None:
    assert number(30250.0, "n_train") == "30,250"  # was 3.025e+04
    assert number(2592000.0, "seconds_since_last") == "2,592,000"  # a sentinel, in full
    assert number(0.955127, "pr_auc") == "0.9551"
    assert number(12) == "12" and number(1234567) == "1,234,567"
    assert number(2.17e-07, "onnx_max_abs_diff") == "2.2e-07"  # a parity difference: its magnitude
    assert number(None) == "–" and number(float("inf")) == "∞"
    assert "e+" not in number(123456.789)


def test_names_people_read() -> None:
    assert human("pr_auc") == "PR-AUC"
    assert human("n_train") == "training rows"
    assert human("baseline_recall_at_1pct_fpr") == "rules baseline: recall at 1 % false positives"
    assert human("ece_uncalibrated") == "expected calibration error (trees alone)"
    assert human("tx_count_24h") == "transactions count, 24 h"
    assert human("cp_fraud_rate_7d") == "counterparty fraud rate, 7 days"
    assert human("wallet_age_days") == "wallet age (days)"
    assert "_" not in human("distinct_counterparties_24h")


def test_times_are_utc_with_the_zone() -> None:
    assert utc("2026-12-06T19:18:50.123+00:00") == "2026-12-06 19:18:50 UTC"
    assert utc("2026-12-06T20:18:50+01:00") == "2026-12-06 19:18:50 UTC"
    assert utc(0) == "1970-01-01 00:00:00 UTC"
    assert utc(datetime(2026, 1, 1, 8, tzinfo=UTC)) == "2026-01-01 08:00:00 UTC"


def test_the_models_page_shows_human_names_with_the_raw_name_as_tooltip(client: FlaskClient) -> None:
    page = client.get("/models").get_data(as_text=True)
    assert '<th title="pr_auc">PR-AUC</th><td class="num mono">0.5</td>' in page
    assert "e+0" not in page  # no count or sentinel in scientific notation
    assert " UTC" in page


def test_the_item_page_names_features_and_writes_times_in_utc(client: FlaskClient, parts: ConsoleParts) -> None:
    decision = decide(parts, make_tx(1, wallet="w-utc", start=datetime.now(UTC)))
    page = client.get(f"/queue/{decision.transaction_id}").get_data(as_text=True)
    assert '<th title="seconds_since_last">seconds since the wallet&#39;s last transaction</th>' in page
    assert "2.592e+06" not in page and "2,592,000" in page
    assert page.count(" UTC") >= 2


def test_totals_count_from_the_streams_start() -> None:
    now = [1000.0]
    stats = LiveStats(window_s=60, clock=lambda: now[0])
    stats.decision("allow", 990.0, 5.0)  # warm-up traffic
    assert stats.snapshot()["totals"]["allow"] == 1 and stats.snapshot()["since"] is None
    stats.start_totals()
    snap = stats.snapshot()
    assert snap["totals"]["allow"] == 0 and sum(snap["per_second"]["allow"]) == 0 and snap["since"] == 1000.0
    stats.decision("allow", 999.5, 5.0)  # decided before the mark, received after: warm-up still
    now[0] = 1002.0
    stats.decision("block", 1001.2, 5.0)
    stats.invalid(1001.5)
    snap = stats.snapshot()
    assert snap["totals"] == {"allow": 0, "review": 0, "block": 1, "invalid": 1, "dead_lettered": 0}


def test_the_live_page_says_since_when_it_counts(client: FlaskClient, parts: ConsoleParts) -> None:
    assert "since it started" in client.get("/live").get_data(as_text=True)
    parts.stats.start_totals()
    page = client.get("/live").get_data(as_text=True)
    assert "Totals since the stream started" in page and 'preserveAspectRatio="none"' not in page


class FailingClient:
    """A Pub/Sub subscriber whose pulls keep failing (the emulator or the service is gone)."""

    def __init__(self) -> None:
        self.pulls = 0

    def subscription_path(self, project: str, name: str) -> str:
        return f"projects/{project}/subscriptions/{name}"

    def pull(self, **_kwargs: object) -> object:
        self.pulls += 1
        raise ConnectionError("failed to connect to all addresses")

    def close(self) -> None:
        pass


def test_healthz_fails_when_ingestion_keeps_failing(client: FlaskClient, parts: ConsoleParts,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert client.get("/healthz").status_code == 200
    reader = SubscriptionReader("p", {"decisions-console": lambda *_: None})
    reader._client = FailingClient()
    reader.failing_since["projects/p/subscriptions/decisions-console"] = time.monotonic() - 5
    reader.last_error["projects/p/subscriptions/decisions-console"] = "failed to connect to all addresses"
    parts.reader = reader
    assert client.get("/healthz").status_code == 200  # a few seconds of errors: still ok
    reader.failing_since["projects/p/subscriptions/decisions-console"] = time.monotonic() - 31
    resp = client.get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "failing" and body["failing_subscriptions"] == {
        "decisions-console": "failed to connect to all addresses"}
    parts.reader = None


def test_the_reader_marks_and_clears_failing_pulls() -> None:
    from google.api_core import exceptions as gexc

    class Flaky(FailingClient):
        def pull(self, **kwargs: object) -> object:
            self.pulls += 1
            if self.pulls <= 2:
                raise ConnectionError("down")
            reader._stop.set()
            raise gexc.DeadlineExceeded("empty long poll")  # an answer: the subscription is back

    reader = SubscriptionReader("p", {"s": lambda *_: None})
    reader._client = Flaky()
    reader._stop.wait = lambda _s: False  # no pause between the failed pulls
    reader._loop("projects/p/subscriptions/s", lambda *_: None)
    assert reader.errors == {"ConnectionError": 2} and reader.failing_since == {}


def test_the_queue_file_follows_the_history_file(tmp_path: Path) -> None:
    settings = ConsoleSettings(SQLITE_PATH=str(tmp_path / "work" / "history.sqlite3"))
    assert settings.queue_path == str(tmp_path / "work" / "console.sqlite3")
    assert ConsoleSettings(SQLITE_PATH="h.sqlite3", CONSOLE_QUEUE_PATH="/q.sqlite3").queue_path == "/q.sqlite3"


def test_the_console_says_what_became_of_a_label(client: FlaskClient, tmp_path: Path) -> None:
    log = tmp_path / "label.log"
    assert client.get("/api/labels/l-1").get_json()["status"] == "pending"
    lines = [{"severity": "INFO", "message": "unchanged l-1", "label_id": "l-1", "status": "unchanged"},
             {"severity": "ERROR", "message": "retry l-2", "label_id": "l-2", "status": "retry"},
             {"severity": "INFO", "message": "applied l-3", "label_id": "l-3", "status": "applied"}]
    log.write_text("gunicorn starting\n" + "".join(json.dumps(line) + "\n" for line in lines))
    first = client.get("/api/labels/l-1").get_json()
    assert first["status"] == "unchanged" and "already carried this verdict" in first["meaning"]
    assert client.get("/api/labels/l-2").get_json()["status"] == "pending"  # retrying: not final
    assert client.get("/api/labels/l-3").get_json()["status"] == "applied"


def test_without_a_label_source_the_page_says_it_cannot_tell(tmp_path: Path) -> None:
    parts = console_parts(tmp_path)
    try:
        app = create_app(parts)
        answer = app.test_client().get("/api/labels/l-1").get_json()
        assert answer["status"] == "unknown" and "LABEL_SOURCE" in answer["meaning"]
    finally:
        parts.close()
