"""The transport core without a web server: body limits, error rendering, JSON parsing."""

from __future__ import annotations

import io
import json

import pytest

from txguard.contract.errors import BadRequestError, MethodNotAllowedError, ValidationFailedError
from txguard.contract.models import ENRICHED_ADAPTER
from txguard.contract.settings import ScoringSettings
from txguard.scoring import routes
from txguard.scoring.http import WerkzeugBody, WsgiHeaders, parse, render_error
from txguard.scoring.service import ScoringService
from txguard.scoring.state import ServingState


class StubRequest:
    """What WerkzeugBody uses of a werkzeug request: content_length, stream, get_data."""

    def __init__(self, data: bytes, content_length: int | None) -> None:
        self.stream = io.BytesIO(data)
        self.content_length = content_length

    def get_data(self) -> bytes:
        return self.stream.read()


class Body:
    def __init__(self, data: bytes, content_length: int | None = None) -> None:
        self.inner = WerkzeugBody(StubRequest(data, content_length))
        self.content_length = content_length
        self.discarded = False

    def read(self, limit: int) -> bytes:
        return self.inner.read(limit)

    def discard(self) -> None:
        self.inner.discard()
        self.discarded = True


def service(max_body: int = 1024) -> ScoringService:
    return ScoringService(ScoringSettings(MAX_BODY_BYTES=max_body, MODEL_URI="nowhere@production"),
                          ServingState(load_error="no model in this test"))


def test_chunked_body_is_cut_one_byte_past_the_limit() -> None:
    body = WerkzeugBody(StubRequest(b"x" * 10_000, None))
    assert len(body.read(1025)) == 1025
    body.discard()
    assert body.read(10) == b""


def test_wsgi_headers_read_the_environ_like_werkzeug() -> None:
    from werkzeug.datastructures import EnvironHeaders

    environ = {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "12", "HTTP_TRACEPARENT": "00-a-b-01",
               "HTTP_X_CLOUD_TRACE_CONTEXT": "abc/1;o=1", "REQUEST_METHOD": "POST"}
    ours, theirs = WsgiHeaders(environ), EnvironHeaders(environ)
    for name in ("Content-Type", "Content-Length", "traceparent", "X-Cloud-Trace-Context",
                 "x-cloud-trace-context", "Authorization"):
        assert ours.get(name) == theirs.get(name), name
    assert ours.get("Authorization", "none") == "none"


def test_a_body_read_whole_is_not_read_again() -> None:
    request = StubRequest(b"{}", 2)
    body = WerkzeugBody(request)
    assert body.read(1024) == b"{}"
    request.stream = None  # discard must not touch the stream of a body already read to its end
    body.discard()


@pytest.mark.parametrize("content_length", [None, 5000])
def test_too_large_bodies_are_413_with_or_without_content_length(content_length: int | None) -> None:
    b = Body(b"{" + b" " * 4998 + b"}", content_length)
    resp = service().handle("POST", "/score", {"Content-Type": "application/json"}, b)
    assert resp.status == 413
    assert b.discarded


def test_content_type_with_charset_and_json_suffix_are_accepted() -> None:
    for ctype in ("application/json; charset=utf-8", "application/vnd.txguard+json"):
        resp = service().handle("POST", "/score", {"Content-Type": ctype}, Body(b"{}", 2))
        assert resp.status == 503  # got past the media type check; no model here


def test_head_is_get_and_trailing_slash_is_ignored() -> None:
    assert service().handle("HEAD", "/health/", {}, Body(b"")).status == 503
    assert service().handle("GET", "/openapi.json", {}, Body(b"")).status == 200


def test_render_error_shape() -> None:
    resp = render_error(MethodNotAllowedError("nope", {"allow": "POST"}))
    assert resp.status == 405 and resp.headers["Allow"] == "POST"
    assert json.loads(resp.body) == {"error": {"status": 405, "message": "nope", "errors": []}}


def test_parse_splits_malformed_json_from_schema_errors() -> None:
    with pytest.raises(BadRequestError):
        parse(ENRICHED_ADAPTER, b"{nope")
    with pytest.raises(BadRequestError):
        parse(ENRICHED_ADAPTER, b"\xff\xfe")
    with pytest.raises(ValidationFailedError) as info:
        parse(ENRICHED_ADAPTER, b'{"amount": "NaN"}')
    assert all(set(e) == {"loc", "msg", "type"} for e in info.value.details)


def test_an_unexpected_bug_is_a_logged_500_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    svc = service()

    def broken(_state: object, _settings: object, _ctx: object, _data: bytes) -> None:
        raise RuntimeError("bug")

    monkeypatch.setitem(routes.ROUTES, "/health", {"GET": (broken, False)})
    resp = svc.handle("GET", "/health", {}, Body(b""))
    assert resp.status == 500
    assert json.loads(resp.body)["error"]["message"] == "internal error"
