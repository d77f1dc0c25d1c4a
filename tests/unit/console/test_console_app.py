"""The console's pages and API through Flask's test client, on real SQLite stores, a real registry
holding the tiny model and the in-process scorer: every form refuses bad input with the field named
and changes nothing."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.console_fixtures import console_parts, decide
from tests.enrich_fakes import make_tx
from tests.scoring_fixtures import publish_tiny
from txguard.console.app import create_app
from txguard.console.identity import ANALYST_COOKIE
from txguard.console.wiring import ConsoleParts
from txguard.contract.models import CounterpartyFeatures, HistoryFeatures, Outcome
from txguard.registry.metadata import QualityGate


@pytest.fixture
def parts(tmp_path: Path) -> ConsoleParts:
    p = console_parts(tmp_path)
    yield p
    p.close()


@pytest.fixture
def client(parts: ConsoleParts) -> FlaskClient:
    app = create_app(parts)
    app.testing = True
    return app.test_client()


def app_client(parts: ConsoleParts) -> FlaskClient:
    app = create_app(parts)
    app.testing = True
    return app.test_client()


def as_analyst(client: FlaskClient, name: str) -> FlaskClient:
    client.set_cookie(ANALYST_COOKIE, name)
    return client


def post(client: FlaskClient, url: str, body: object) -> tuple[int, dict]:
    resp = client.post(url, data=json.dumps(body), content_type="application/json")
    return resp.status_code, resp.get_json()


def recent_tx(i: int, wallet: str = "w-app"):
    return make_tx(i, wallet=wallet, start=datetime.now(UTC) - timedelta(days=1))


def test_every_page_renders(client: FlaskClient, parts: ConsoleParts) -> None:
    decide(parts, recent_tx(1))
    assert client.get("/").headers["Location"].endswith("/queue")
    for path in ("/queue", "/queue?outcome=block", "/live", "/score", "/models",
                 f"/queue/{recent_tx(1).transaction_id}"):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.data[:300])
        assert b"<main>" in resp.data and b"console.js" in resp.data
    assert client.get("/assets/console.js").status_code == 200
    assert client.get("/healthz").get_json()["ingest"] == "off"


def test_the_queue_shows_review_and_block_items_with_what_they_were_decided_on(client: FlaskClient, parts: ConsoleParts) -> None:
    decide(parts, recent_tx(1), Outcome.REVIEW)
    decide(parts, recent_tx(2), Outcome.BLOCK, score=0.95)
    decide(parts, recent_tx(3), Outcome.ALLOW, score=0.01)  # counted live, never queued
    data = client.get("/api/queue").get_json()
    assert [i["outcome"] for i in data["items"]] == ["block", "review"]
    assert data["counts"] == {"review": 1, "block": 1}
    item = data["items"][1]
    assert item["enriched"]["counterparty_id"] == recent_tx(1).counterparty_id
    assert set(item["enriched"]["features"]) >= {"tx_count_24h", "amount_ratio_30d"}
    assert [i["outcome"] for i in client.get("/api/queue?outcome=block").get_json()["items"]] == ["block"]
    page = client.get("/queue?outcome=review").data.decode()
    assert recent_tx(1).transaction_id in page and recent_tx(2).transaction_id not in page
    assert client.get("/api/queue?outcome=nope").status_code == 400
    assert parts.stats.snapshot()["totals"]["allow"] == 1


def test_review_flow_over_http(client: FlaskClient, parts: ConsoleParts) -> None:
    tx = recent_tx(1)
    decide(parts, tx)
    as_analyst(client, "alice")
    status, item = post(client, f"/api/queue/{tx.transaction_id}/claim", {})
    assert status == 200 and item["claimed_by"] == "alice"
    bob = create_app(parts).test_client()
    as_analyst(bob, "bob")
    status, err = post(bob, f"/api/queue/{tx.transaction_id}/claim", {})
    assert status == 409 and "alice" in err["error"]["message"]
    status, done = post(client, f"/api/queue/{tx.transaction_id}/review", {"verdict": "legitimate", "note": "known payee"})
    assert status == 200 and done["label"]["is_fraud"] is False and done["label"]["source"] == "analyst:alice"
    assert client.get("/api/queue").get_json()["items"] == []
    assert len(parts.publisher.events) == 1


@pytest.mark.parametrize("body", [{"verdict": "perhaps"}, {}, {"verdict": "fraud", "note": 5}])
def test_bad_verdicts_are_422_with_the_field(client: FlaskClient, parts: ConsoleParts, body: dict) -> None:
    tx = recent_tx(1)
    decide(parts, tx)
    as_analyst(client, "alice")
    post(client, f"/api/queue/{tx.transaction_id}/claim", {})
    before = parts.queue.get(tx.transaction_id)
    status, err = post(client, f"/api/queue/{tx.transaction_id}/review", body)
    assert status == 422
    assert err["error"]["errors"][0]["loc"][0] in ("verdict", "note")
    assert parts.queue.get(tx.transaction_id) == before and parts.publisher.events == []


def test_posts_must_be_json(client: FlaskClient, parts: ConsoleParts) -> None:
    tx = recent_tx(1)
    decide(parts, tx)
    resp = client.post(f"/api/queue/{tx.transaction_id}/claim", data="verdict=fraud",
                       content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 400 and "JSON" in resp.get_json()["error"]["message"]
    assert parts.queue.get(tx.transaction_id).claimed_by is None


def score_body(**over: object) -> dict:
    body = {"transaction_id": "manual-1", "wallet_id": "w-app", "counterparty_id": "cp-new", "amount": 950.0,
            "currency": "EUR", "type": "transfer", "channel": "web", "country": "FR",
            "timestamp": datetime.now(UTC).isoformat()}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def test_manual_scoring_uses_the_stored_history_without_changing_it(client: FlaskClient, parts: ConsoleParts) -> None:
    for i in range(3):
        decide(parts, recent_tx(i), Outcome.ALLOW, score=0.01)
    before = parts.history.wallet_state("w-app")
    probe = make_tx(99, wallet="w-app", counterparty_id="cp-new")
    counterparty_before = parts.counterparties.snapshot(probe)
    status, data = post(client, "/api/score", score_body())
    assert status == 200
    assert data["features"]["history_len"] == 3 and data["features"]["is_new_counterparty"] == 1
    assert list(data["features"]) == list(HistoryFeatures.model_fields)  # the contract's order
    assert data["decision"]["outcome"] in ("allow", "review", "block") and 0 <= data["decision"]["score"] <= 1
    assert data["decision"]["model_version"] == "v1"
    assert list(data["counterparty"]) == list(CounterpartyFeatures.model_fields)
    assert parts.history.wallet_state("w-app") == before  # nothing applied
    assert parts.counterparties.snapshot(probe) == counterparty_before
    assert parts.history.enriched("manual-1") is None  # nor recorded


@pytest.mark.parametrize(("over", "field"), [
    ({"amount": -5}, "amount"), ({"amount": "lots"}, "amount"), ({"currency": "XXQ"}, "currency"),
    ({"country": "ZZ"}, "country"), ({"wallet_id": ""}, "wallet_id"), ({"type": "gift"}, "type"),
    ({"timestamp": "yesterday"}, "timestamp"), ({"counterparty_id": None}, "counterparty_id"),
])
def test_bad_transactions_name_the_field(client: FlaskClient, parts: ConsoleParts, over: dict, field: str) -> None:
    status, err = post(client, "/api/score", score_body(**over))
    assert status == 422
    assert field in [e["loc"][0] for e in err["error"]["errors"]]
    assert parts.history.wallet_state("w-app").ts == []


def test_models_page_and_alias_moves_need_confirmation(tmp_path: Path) -> None:
    parts = console_parts(tmp_path, CONSOLE_APPROVERS="carol@example.com, dan")
    client = as_analyst(app_client(parts), "carol@example.com")
    publish_tiny(tmp_path / "registry", promote=False)  # v2, not promoted
    models = client.get("/api/models").get_json()
    assert [v["version"] for v in models["versions"]] == ["v2", "v1"] and models["aliases"] == {"production": "v1"}
    assert models["versions"][1]["thresholds"] == {"review": 0.3, "block": 0.7}
    assert models["versions"][0]["gate"]["passed"] is True
    status, err = post(client, "/api/models/alias", {"action": "promote", "alias": "production", "version": "v2",
                                                     "confirm": "yes"})
    assert status == 422 and err["error"]["errors"][0]["loc"] == ["confirm"]
    assert parts.registry.aliases() == {"production": "v1"}
    for bad in ({"action": "promote", "alias": "production", "confirm": "production"},
                {"action": "launch", "alias": "production", "confirm": "production"},
                {"action": "promote", "alias": "Prod!", "version": "v2", "confirm": "Prod!"}):
        status, _ = post(client, "/api/models/alias", bad)
        assert status == 422, bad
    status, _ = post(client, "/api/models/alias", {"action": "promote", "alias": "production", "version": "v9",
                                                   "confirm": "production"})
    assert status == 404 and parts.registry.aliases() == {"production": "v1"}
    status, done = post(client, "/api/models/alias", {"action": "promote", "alias": "production", "version": "v2",
                                                      "confirm": "production"})
    assert status == 200 and {k: done[k] for k in ("alias", "action", "version", "previous", "by")} == {
        "alias": "production", "action": "promote", "version": "v2", "previous": "v1", "by": "carol@example.com"}
    assert done["gate"]["passed"] is True
    assert parts.registry.read_alias("production")[0].updated_by == "carol@example.com"  # the person, in the registry
    status, done = post(client, "/api/models/alias", {"action": "rollback", "alias": "production", "confirm": "production"})
    assert status == 200 and done["version"] == "v1" and parts.registry.aliases() == {"production": "v1"}
    status, err = post(client, "/api/models/alias", {"action": "rollback", "alias": "production", "confirm": "production"})
    assert status == 422 and "no previous version" in err["error"]["message"]
    parts.close()


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_only_approvers_move_production_and_every_move_is_logged_with_the_person(tmp_path: Path) -> None:
    parts = console_parts(tmp_path, CONSOLE_APPROVERS="Carol@Example.com")
    lines = Lines()
    parts.log = logging.getLogger("txguard.test-console-approvers")
    parts.log.addHandler(lines)
    publish_tiny(tmp_path / "registry", promote=False)  # v2
    client = as_analyst(app_client(parts), "alice@example.com")
    promote = {"action": "promote", "alias": "production", "version": "v2", "confirm": "production"}
    status, err = post(client, "/api/models/alias", promote)
    assert status == 403
    assert err["error"]["message"].startswith("alice@example.com may not promote v2 to production: only a "
                                              "production approver may")
    status, err = post(client, "/api/models/alias", {"action": "rollback", "alias": "production",
                                                     "confirm": "production"})
    assert status == 403 and "may not roll production back" in err["error"]["message"]
    assert parts.registry.aliases() == {"production": "v1"}
    refused = [r for r in lines.records if getattr(r, "event", None) == "alias_move_refused"]
    assert [r.analyst for r in refused] == ["alice@example.com"] * 2
    assert "approvers only" in client.get("/models").data.decode()
    # Any analyst may move staging (nothing is served from it).
    status, done = post(client, "/api/models/alias", {**promote, "alias": "staging", "confirm": "staging"})
    assert status == 200 and done["by"] == "alice@example.com"
    # The approver (case does not matter in an e-mail) may, and the move is one line with all of it.
    as_analyst(client, "carol@example.com")
    status, done = post(client, "/api/models/alias", promote)
    assert status == 200 and parts.registry.aliases()["production"] == "v2"
    (moved,) = [r for r in lines.records if getattr(r, "event", None) == "alias_move" and r.alias == "production"]
    assert (moved.analyst, moved.previous, moved.version, moved.action) == ("carol@example.com", "v1", "v2", "promote")
    assert moved.gate["passed"] is True and "quality gate passed" in moved.getMessage()
    parts.close()


def test_no_approvers_configured_means_nobody_moves_production(client: FlaskClient, parts: ConsoleParts) -> None:
    status, err = post(client, "/api/models/alias", {"action": "rollback", "alias": "production",
                                                     "confirm": "production"})
    assert status == 403 and "no production approvers are configured" in err["error"]["message"]


@pytest.mark.parametrize(("gate", "says"), [
    (QualityGate(passed=False, reasons=["quality gate: PR-AUC 0.41 is below the floor 0.5 (--min-pr-auc)"]),
     "its quality gate failed: quality gate: PR-AUC 0.41 is below the floor"),
    (None, "its quality gate no quality-gate result recorded"),
])
def test_a_version_whose_gate_failed_or_is_unknown_is_never_promoted(tmp_path: Path, gate: QualityGate | None,
                                                                      says: str) -> None:
    parts = console_parts(tmp_path, CONSOLE_APPROVERS="carol")
    publish_tiny(tmp_path / "registry", promote=False, quality_gate=gate)  # v2
    client = as_analyst(app_client(parts), "carol")
    shown = client.get("/api/models").get_json()["versions"][0]
    assert shown["version"] == "v2" and shown["gate"]["passed"] is (None if gate is None else False)
    assert "quality gate: " in client.get("/models").data.decode()
    for alias in ("production", "staging"):
        status, err = post(client, "/api/models/alias", {"action": "promote", "alias": alias, "version": "v2",
                                                         "confirm": alias})
        assert status == 409 and says in err["error"]["message"], err
    assert parts.registry.aliases() == {"production": "v1"}
    parts.close()


def test_the_console_says_what_a_score_means(client: FlaskClient, parts: ConsoleParts, tmp_path: Path) -> None:
    from txguard.registry.metadata import Calibration

    # v1 (the tiny model) predates calibration; v2 is calibrated, with its held-out figures.
    calibration = Calibration(method="platt", slope=0.8, intercept=-1.2, rows=20535, frauds=188,
                              period="2026-01-07T00:00:00+00:00 to 2026-01-12T00:00:00+00:00", label_maturity_days=11)
    publish_tiny(tmp_path / "registry", promote=False, calibration=calibration,
                 metrics={"pr_auc": 0.95, "ece": 0.0018, "score_to_fraud_rate": 0.83})
    versions = {v["version"]: v for v in client.get("/api/models").get_json()["versions"]}
    assert versions["v1"]["calibration"] is None and "not a probability" in versions["v1"]["score_meaning"]
    assert versions["v2"]["calibration"]["rows"] == 20535
    meaning = versions["v2"]["score_meaning"]
    assert "probability that the transaction is fraud" in meaning and "20,535 held-out training rows" in meaning
    assert "0.83x the fraud rate" in meaning and "0.002" in meaning
    page = client.get("/models").data.decode()
    assert "20,535 held-out training rows" in page and "not a probability" in page
    decide(parts, recent_tx(1), Outcome.REVIEW, score=0.42)  # decided by v1
    item = client.get(f"/queue/{recent_tx(1).transaction_id}").data.decode()
    assert "0.4200" in item and "not a probability" in item
    assert "probability that such a transaction is fraud" in client.get("/score").data.decode()


def test_pictures_are_served_from_the_registry(client: FlaskClient, parts: ConsoleParts) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 32
    parts.registry.store.create("versions/v1/pictures/pr_curve.png", png)
    assert client.get("/api/models").get_json()["versions"][0]["pictures"] == ["pr_curve.png"]
    resp = client.get("/models/v1/pictures/pr_curve.png")
    assert resp.status_code == 200 and resp.data == png and resp.mimetype == "image/png"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    for bad in ("/models/v1/pictures/..%2Fmetadata.json", "/models/v1/pictures/nope.png", "/models/x/pictures/a.png"):
        assert client.get(bad).status_code == 404


def test_pictures_are_png_only(client: FlaskClient, parts: ConsoleParts) -> None:
    """An SVG can carry script: it is neither listed nor served, and a file named .png that is not one
    is refused too."""
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    parts.registry.store.create("versions/v1/pictures/curves.svg", svg)
    parts.registry.store.create("versions/v1/pictures/fake.png", svg)
    assert client.get("/api/models").get_json()["versions"][0]["pictures"] == ["fake.png"]
    assert client.get("/models/v1/pictures/curves.svg").status_code == 404
    resp = client.get("/models/v1/pictures/fake.png")
    assert resp.status_code == 404 and b"<script>" not in resp.data


def test_live_api_and_stream(client: FlaskClient, parts: ConsoleParts) -> None:
    now_ms = datetime.now(UTC).timestamp() * 1000
    decide(parts, recent_tx(1), Outcome.REVIEW, published_at_ms=now_ms - 120)
    snap = client.get("/api/live").get_json()
    assert snap["totals"]["review"] == 1 and sum(snap["latency"]["counts"]) == 1
    resp = client.get("/api/live/stream")
    assert resp.mimetype == "text/event-stream"
    chunk = next(iter(resp.response))
    first = chunk.decode() if isinstance(chunk, bytes) else chunk
    assert first.startswith("data: ") and json.loads(first[6:])["totals"]["review"] == 1
    resp.close()


def test_unknown_pages_and_items(client: FlaskClient) -> None:
    assert client.get("/nope").status_code == 404
    assert client.get("/queue/unknown-tx").status_code == 404
    assert client.get("/api/queue/unknown-tx").get_json()["error"]["status"] == 404
