"""What keeps the console standing when it is pushed: live streams capped (the page polls beyond the
cap), trusted hosts and same-origin POSTs (DNS rebinding, cross-site pages), and no start on Cloud
Run without the IAP audience."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from pydantic import ValidationError

from tests.console_fixtures import console_parts, decide
from tests.enrich_fakes import make_tx
from txguard.console.app import create_app
from txguard.console.live_stats import StreamSlots
from txguard.console.wiring import ConsoleParts
from txguard.contract.models import Outcome
from txguard.contract.settings import ConsoleSettings


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[ConsoleParts]:
    p = console_parts(tmp_path, CONSOLE_LIVE_STREAMS="2")
    yield p
    p.close()


@pytest.fixture
def client(parts: ConsoleParts) -> FlaskClient:
    app = create_app(parts)
    app.testing = True
    return app.test_client()


def claim(client: FlaskClient, tx: str, **headers: str) -> tuple[int, dict]:
    resp = client.post(f"/api/queue/{tx}/claim", data="{}", content_type="application/json", headers=headers)
    return resp.status_code, resp.get_json()


# -- live streams ---------------------------------------------------------------------------------

def test_stream_slots_count_and_never_go_below_zero() -> None:
    slots = StreamSlots(2)
    assert slots.take() and slots.take() and not slots.take() and slots.open == 2
    slots.give_back()
    assert slots.take() and not slots.take()
    for _ in range(5):
        slots.give_back()
    assert slots.open == 0


def test_streams_beyond_the_cap_are_refused_and_the_page_can_poll(client: FlaskClient, parts: ConsoleParts) -> None:
    first, second = client.get("/api/live/stream"), client.get("/api/live/stream")
    assert first.status_code == second.status_code == 200 and parts.streams.open == 2
    third = client.get("/api/live/stream")
    assert third.status_code == 503
    assert third.get_json()["error"]["message"] == "2 live streams are open already: this page polls instead"
    assert client.get("/api/live").status_code == 200  # what the page polls instead
    next(iter(first.response))  # a stream that started...
    first.close()  # ...and whose client went away gives its slot back
    second.close()  # as does one closed before its first event
    assert parts.streams.open == 0
    again = client.get("/api/live/stream")
    assert again.status_code == 200
    again.close()


def test_a_cap_of_zero_means_the_page_always_polls(tmp_path: Path) -> None:
    parts = console_parts(tmp_path, CONSOLE_LIVE_STREAMS="0")
    client = create_app(parts).test_client()
    assert client.get("/api/live/stream").status_code == 503
    assert "live-initial" in client.get("/live").data.decode()
    parts.close()


# -- hosts and origins ----------------------------------------------------------------------------

def test_an_untrusted_host_is_refused_before_any_page(client: FlaskClient) -> None:
    resp = client.get("/queue", headers={"Host": "rebound.attacker.example:8080"})
    assert resp.status_code == 400
    assert "is not trusted" in resp.get_json()["error"]["message"]
    assert client.get("/queue", headers={"Host": "127.0.0.1:8090"}).status_code == 200
    assert client.get("/queue", headers={"Host": "localhost"}).status_code == 200


def test_trusted_hosts_come_from_the_setting(tmp_path: Path) -> None:
    parts = console_parts(tmp_path, CONSOLE_TRUSTED_HOSTS="txguard-console-123.europe-west1.run.app, .example.com")
    client = create_app(parts).test_client()
    assert client.get("/healthz", headers={"Host": "txguard-console-123.europe-west1.run.app"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "console.example.com"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "127.0.0.1"}).status_code == 400
    parts.close()


def test_cross_origin_posts_are_refused_and_change_nothing(client: FlaskClient, parts: ConsoleParts) -> None:
    tx = make_tx(1, wallet="w-origin")
    decide(parts, tx, Outcome.REVIEW)
    for headers in ({"Origin": "http://rebound.attacker.example"}, {"Origin": "null"},
                    {"Origin": "http://localhost:9999"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}):
        status, body = claim(client, tx.transaction_id, **headers)
        assert status == 403 and body["error"]["message"].startswith("cross-origin request refused"), headers
        assert parts.queue.get(tx.transaction_id).claimed_by is None
    # The console's own pages (same origin), and clients that are not browsers, go through.
    status, _ = claim(client, tx.transaction_id, Origin="http://localhost", **{"Sec-Fetch-Site": "same-origin"})
    assert status == 200 and parts.queue.get(tx.transaction_id).claimed_by is not None
    status, _ = claim(client, tx.transaction_id)
    assert status == 200


def test_a_put_is_refused_the_same_way_before_the_method_is(client: FlaskClient) -> None:
    resp = client.put("/api/queue/x/claim", data=json.dumps({}), content_type="application/json",
                      headers={"Origin": "http://rebound.attacker.example"})
    assert resp.status_code == 403


# -- Cloud Run without IAP --------------------------------------------------------------------------

def test_the_console_refuses_to_start_on_cloud_run_without_an_iap_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_SERVICE", "txguard-console")
    monkeypatch.delenv("IAP_AUDIENCE", raising=False)
    with pytest.raises(ValidationError, match="IAP_AUDIENCE is required on Cloud Run"):
        ConsoleSettings()
    monkeypatch.setenv("IAP_AUDIENCE", "/projects/123/locations/europe-west1/services/txguard-console")
    assert ConsoleSettings().iap_audience.endswith("/txguard-console")
    monkeypatch.delenv("K_SERVICE")
    monkeypatch.delenv("IAP_AUDIENCE")
    assert ConsoleSettings().iap_audience == ""  # locally: the cookie names the analyst
