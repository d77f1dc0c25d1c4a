"""The hot routes at the WSGI layer: what they take, what they pass on, and the body they read."""

from __future__ import annotations

import io
from typing import Any

import flask
import pytest
from werkzeug.test import EnvironBuilder

from txguard.contract.settings import ScoringSettings
from txguard.scoring import wsgi
from txguard.scoring.http import WsgiBody, status_line
from txguard.scoring.service import ScoringService
from txguard.scoring.state import ServingState


def service() -> ScoringService:
    return ScoringService(ScoringSettings(MAX_BODY_BYTES=1024, MODEL_URI="nowhere@production"),
                          ServingState(load_error="no model in this test"))


class Recorder:
    """A WSGI app that says it was called (the app behind the middleware)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        start_response("204 NO CONTENT", [])
        return [b""]


def call(app: Any, method: str, path: str, data: bytes | None = None, **kw: Any) -> tuple[str, dict, bytes]:
    environ = EnvironBuilder(method=method, path=path, data=data, **kw).get_environ()
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


@pytest.mark.parametrize(("method", "path"), [("GET", "/score"), ("HEAD", "/score/batch"), ("GET", "/health"),
                                               ("POST", "/"), ("POST", "/model"), ("POST", "/score/"),
                                               ("OPTIONS", "/score")])
def test_everything_but_post_to_the_hot_routes_goes_to_the_app(method: str, path: str) -> None:
    app = Recorder()
    status, _, _ = call(wsgi.FastRoutes(service(), app), method, path)
    assert app.calls == [(method, path)] and status == "204 NO CONTENT"


@pytest.mark.parametrize("path", ["/score", "/score/batch"])
def test_post_to_a_hot_route_is_answered_by_the_service(path: str) -> None:
    app = Recorder()
    status, headers, body = call(wsgi.FastRoutes(service(), app), "POST", path, b"{}",
                                 content_type="application/json")
    assert app.calls == []
    assert status == "503 SERVICE UNAVAILABLE"  # no model in this test: the service's own answer
    assert headers["Content-Type"] == "application/json" and headers["Content-Length"] == str(len(body))
    assert b"no model in this test" in body


def test_status_lines_are_werkzeugs() -> None:
    from werkzeug.wrappers import Response

    for code in (200, 400, 404, 405, 413, 415, 422, 500, 503):
        assert status_line(code) == Response(status=code).status
    assert status_line(599) == "599 UNKNOWN"


def test_install_wraps_the_app_being_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_EXECUTION_ID", raising=False)
    app = flask.Flask("t")
    inner = app.wsgi_app
    first, second = service(), service()
    with app.app_context():
        assert wsgi.install(first)
        assert wsgi.install(second)  # the module executed again: the same wrapper, the newer service
    assert isinstance(app.wsgi_app, wsgi.FastRoutes)
    assert app.wsgi_app.app == inner and app.wsgi_app.service is second


def test_install_does_nothing_when_off_outside_an_app_or_with_execution_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_EXECUTION_ID", raising=False)
    assert not wsgi.install(service())  # no app being built
    app = flask.Flask("t")
    with app.app_context():
        assert not wsgi.install(service(), enabled=False)
        monkeypatch.setenv("LOG_EXECUTION_ID", "true")
        assert not wsgi.install(service())
    assert not isinstance(app.wsgi_app, wsgi.FastRoutes)


def environ(data: bytes, length: str | None, terminated: bool, chunked: bool = False) -> dict[str, Any]:
    env: dict[str, Any] = {"wsgi.input": io.BytesIO(data)}
    if length is not None:
        env["CONTENT_LENGTH"] = length
    if terminated:
        env["wsgi.input_terminated"] = True
    if chunked:
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
    return env


@pytest.mark.parametrize("terminated", [True, False])
def test_a_body_with_a_length_is_read_to_that_length(terminated: bool) -> None:
    body = WsgiBody(environ(b'{"a":1}trailing', "7", terminated))
    assert body.content_length == 7
    assert body.read(1024) == b'{"a":1}'
    body.discard()  # read whole: nothing to drain


def test_a_body_without_a_length_is_cut_one_byte_past_the_limit_then_drained() -> None:
    env = environ(b"x" * 10_000, None, terminated=True, chunked=True)
    body = WsgiBody(env)
    assert body.content_length is None
    assert len(body.read(1025)) == 1025
    body.discard()
    assert env["wsgi.input"].read() == b""


def test_a_body_over_its_stated_length_limit_is_drained_by_discard() -> None:
    env = environ(b"y" * 5000, "5000", terminated=True)
    body = WsgiBody(env)
    assert len(body.read(1025)) == 1025
    body.discard()
    assert env["wsgi.input"].read() == b""


@pytest.mark.parametrize("length", ["", "abc", "-1", "１２"])
def test_odd_lengths_are_werkzeugs_reading(length: str) -> None:
    from werkzeug.wsgi import get_content_length

    env = environ(b"{}", length, terminated=True)
    assert WsgiBody(env).content_length == get_content_length(env)
