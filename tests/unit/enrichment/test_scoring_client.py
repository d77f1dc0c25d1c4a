"""Scoring client: status -> retryable/permanent mapping against a loopback HTTP server."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.enrich_fakes import make_tx
from txguard.contract.errors import ScoringUnavailableError
from txguard.contract.models import Decision, Outcome
from txguard.contract.trace import TraceContext, bind, parse_cloud_trace_context, parse_traceparent
from txguard.enrichment.scoring_client import (
    IdTokenSource,
    ScoringClient,
    ScoringRejectedError,
    _jwt_expiry,
    use_id_token,
)
from txguard.features.timeline import enrich
from txguard.local.emulators import free_port


class _Server:
    def __init__(self) -> None:
        self.status = 200
        self.body: bytes | None = None
        self.delay = 0.0
        self.requests: list[tuple[dict[str, str], bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append((dict(self.headers), data))
                time.sleep(server.delay)
                if server.body is not None:
                    out = server.body
                elif server.status == 200:
                    tx = json.loads(data)
                    out = Decision(transaction_id=tx["transaction_id"], wallet_id=tx["wallet_id"], score=0.1,
                                   outcome=Outcome.ALLOW, model_version="v1").model_dump_json().encode()
                else:
                    out = b'{"error": "nope"}'
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def srv(server: _Server) -> _Server:
    server.status, server.body, server.delay = 200, None, 0.0
    server.requests.clear()
    return server


TX = enrich(make_tx(1))


def test_posts_the_enriched_transaction_and_reuses_the_connection(srv: _Server) -> None:
    client = ScoringClient(srv.url, auth="none")
    for _ in range(3):
        assert client.score(TX).transaction_id == TX.transaction_id
    headers, body = srv.requests[0]
    assert json.loads(body)["features"]["history_len"] == 0
    assert "Authorization" not in headers
    assert len(client.session.get_adapter(srv.url).poolmanager.pools) == 1
    client.close()


def test_forwards_the_trace_in_both_headers(srv: _Server) -> None:
    client = ScoringClient(srv.url, auth="none")
    trace = TraceContext.new()
    with bind(trace):  # what the pipeline does for each delivery
        client.score(TX)
    client.score(TX)  # no trace: no trace headers (scoring then logs none)
    (with_trace, _), (without, _) = srv.requests
    lower = {k.lower(): v for k, v in with_trace.items()}
    assert parse_traceparent(lower["traceparent"]) == trace
    assert parse_cloud_trace_context(lower["x-cloud-trace-context"]) == trace
    assert not {"traceparent", "x-cloud-trace-context"} & {k.lower() for k in without}
    client.close()


@pytest.mark.parametrize("status", [500, 502, 503, 429, 401, 403, 404, 408])
def test_retryable_statuses(srv: _Server, status: int) -> None:
    srv.status = status
    with pytest.raises(ScoringUnavailableError):
        ScoringClient(srv.url, auth="none").score(TX)


@pytest.mark.parametrize("status", [400, 413, 415, 422])
def test_permanent_statuses(srv: _Server, status: int) -> None:
    srv.status = status
    with pytest.raises(ScoringRejectedError) as info:
        ScoringClient(srv.url, auth="none").score(TX)
    assert info.value.status == status


def test_timeout_is_retryable(srv: _Server) -> None:
    srv.delay = 0.5
    with pytest.raises(ScoringUnavailableError):
        ScoringClient(srv.url, timeout_s=0.1, auth="none").score(TX)


def test_connection_refused_is_retryable() -> None:
    with pytest.raises(ScoringUnavailableError):
        ScoringClient(f"http://127.0.0.1:{free_port()}", timeout_s=1, auth="none").score(TX)


def test_invalid_decision_body_is_retryable(srv: _Server) -> None:
    srv.body = b'{"score": "high"}'
    with pytest.raises(ScoringUnavailableError):
        ScoringClient(srv.url, auth="none").score(TX)


def test_batch_shaped_response_is_accepted(srv: _Server) -> None:
    d = Decision(transaction_id=TX.transaction_id, wallet_id=TX.wallet_id, score=0.9, outcome=Outcome.BLOCK,
                 model_version="v2")
    srv.body = json.dumps({"decisions": [d.model_dump(mode="json")], "model_version": "v2"}).encode()
    assert ScoringClient(srv.url, auth="none").score(TX) == d


def _jwt(exp: float) -> str:
    part = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode().rstrip("=")
    return f"e30.{part}.sig"


def test_id_token_is_sent_and_cached_until_near_expiry(srv: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import google.oauth2.id_token as id_token

    fetched: list[str] = []

    def fake_fetch(request: object, audience: str) -> str:
        fetched.append(audience)
        return _jwt(time.time() + 3600)

    monkeypatch.setattr(id_token, "fetch_id_token", fake_fetch)
    client = ScoringClient(srv.url, auth="id_token")
    client.score(TX)
    client.score(TX)
    assert fetched == [srv.url]
    assert srv.requests[-1][0]["Authorization"].startswith("Bearer e30.")
    client.tokens._expiry = time.time() + 10  # within the refresh margin
    client.score(TX)
    assert len(fetched) == 2


def test_jwt_expiry_parsing() -> None:
    assert _jwt_expiry(_jwt(1234567890)) == 1234567890
    assert _jwt_expiry("garbage") > time.time()


def test_auto_auth_only_in_cloud_without_emulators() -> None:
    assert use_id_token("auto", {"K_SERVICE": "txguard-enrich"})
    assert not use_id_token("auto", {})
    assert not use_id_token("auto", {"K_SERVICE": "x", "PUBSUB_EMULATOR_HOST": "127.0.0.1:1"})
    assert use_id_token("id_token", {}) and not use_id_token("none", {"K_SERVICE": "x"})
    assert IdTokenSource("https://a").audience == "https://a"
