"""The Rules page and its API through Flask's test client: check errors with their place, backtest on a
saved sample, save to staging (who and why), production moved by approvers only; the queue shows rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.console_fixtures import backtest_sample, console_parts, decide
from tests.enrich_fakes import make_tx
from txguard.console.app import create_app
from txguard.console.identity import ANALYST_COOKIE
from txguard.registry.rulesets import RuleSetRegistry

GOOD = {"name": "new_shop", "condition": "type == 'payment' && amount > 100 && is_new_counterparty == 1",
        "outcome": "review", "reason": "first big payment to a new counterparty"}


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    parts = console_parts(tmp_path, BACKTEST_SAMPLE=str(backtest_sample(tmp_path)), CONSOLE_APPROVERS="Boss@Example.com")
    app = create_app(parts)
    app.testing = True
    client = app.test_client()
    client.set_cookie(ANALYST_COOKIE, "ana")
    client.parts = parts  # type: ignore[attr-defined]
    yield client
    parts.close()


def post(client: FlaskClient, url: str, body: object) -> tuple[int, dict]:
    resp = client.post(url, data=json.dumps(body), content_type="application/json")
    return resp.status_code, resp.get_json()


def test_the_page_renders_with_a_draft(client: FlaskClient) -> None:
    html = client.get("/rules").get_data(as_text=True)
    assert 'href="/rules" aria-current="page"' in html and 'id="rule-list"' in html
    assert "is_new_counterparty" in html  # the names a condition may use
    assert "only a production approver" in html.lower() or "Only a production approver" in html


def test_check_reports_each_problem_with_its_place(client: FlaskClient) -> None:
    status, body = post(client, "/api/rules/check", {"rules": [GOOD, {**GOOD, "name": "bad", "condition": "amout > 5"}]})
    assert status == 200 and body["ok"] is False
    assert body["problems"] == [{"rule": "bad", "field": "condition", "offset": 0, "line": 1, "column": 1,
                                 "message": "unknown name 'amout' (did you mean amount, amount_log?)"}]
    status, body = post(client, "/api/rules/check", {"rules": [GOOD]})
    assert body == {"ok": True, "problems": [], "reads": ["amount", "is_new_counterparty", "type"]}
    status, body = post(client, "/api/rules/check", {"rules": [{**GOOD, "outcome": "maybe"}]})
    assert body["ok"] is False and "rules.0.outcome" in body["problems"][0]["field"]


def test_backtest_on_the_sample(client: FlaskClient) -> None:
    status, report = post(client, "/api/rules/backtest", {"rules": [GOOD]})
    assert status == 200, report
    rule = report["rules"][0]
    assert rule["rule"] == "new_shop" and rule["hits"] > 0 and rule["precision"] > 0.3
    assert report["by_scenario"]["fake_shop"]["with_rules"] >= report["by_scenario"]["fake_shop"]["model"]
    assert report["sample"]["transactions"] == 3000 and report["days"] == 6
    status, later = post(client, "/api/rules/backtest", {"rules": [GOOD], "since": "2026-03-04T00:00:00Z"})
    assert later["transactions"] < report["transactions"] and later["first_day"] == "2026-03-04"
    status, body = post(client, "/api/rules/backtest", {"rules": [{**GOOD, "condition": "score > 2"}]})
    assert status == 422 and "problem" in body["error"]["message"]


def test_save_to_staging_then_production_by_an_approver_only(client: FlaskClient) -> None:
    status, body = post(client, "/api/rules/save", {"rules": [GOOD], "reason": " "})
    assert status == 422 and body["error"]["errors"][0]["loc"] == ["reason"]
    status, saved = post(client, "/api/rules/save", {"rules": [GOOD], "reason": "fake shops since Friday"})
    assert status == 200 and saved["version"] == "r1" and saved["saved_by"] == "ana"
    store = RuleSetRegistry(client.parts.registry.store)  # type: ignore[attr-defined]
    assert store.aliases() == {"staging": "r1"} and store.metadata("r1").reason == "fake shops since Friday"
    status, body = post(client, "/api/rules/production", {"action": "promote", "confirm": "production"})
    assert status == 403 and "ana may not promote" in body["error"]["message"]
    client.set_cookie(ANALYST_COOKIE, "boss@example.com")
    status, body = post(client, "/api/rules/production", {"action": "promote", "confirm": "prod"})
    assert status == 422 and body["error"]["errors"][0]["loc"] == ["confirm"]
    status, body = post(client, "/api/rules/production", {"action": "promote", "confirm": "production"})
    assert status == 200 and body["version"] == "r1" and store.aliases()["production"] == "r1"
    # Each alias names who moved it last, as a model alias does.
    assert [store.read_alias(a)[0].updated_by for a in ("staging", "production")] == ["ana", "boss@example.com"]
    status, body = post(client, "/api/rules/production", {"action": "rollback", "confirm": "production"})
    assert status == 422 and "no previous version" in body["error"]["message"]
    assert "Promote staging to production" in client.get("/rules").get_data(as_text=True)


def test_the_queue_shows_the_rules_that_fired(client: FlaskClient) -> None:
    tx = make_tx(1, wallet="w-rules", start=datetime.now(UTC) - timedelta(days=1))
    decide(client.parts, tx, rules=[{"rule": "new_shop", "outcome": "review", "reason": "first big payment"}])  # type: ignore[attr-defined]
    html = client.get("/queue").get_data(as_text=True)
    assert 'class="badge rule review"' in html and ">new_shop</span>" in html
    item = client.get(f"/queue/{tx.transaction_id}").get_data(as_text=True)
    assert "first big payment" in item
