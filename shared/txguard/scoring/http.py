"""HTTP transport of the scoring function: responses, body limits, JSON validation, one error handler.

Knows nothing of the model or the routes: `routes.py` maps paths to handlers and `service.py`
ties both to the loaded model. Bad input never becomes a 5xx: every failure is a `ScoringError`
subclass carrying its status, and `render_error` is the one place that turns it into a response.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_content_length, get_input_stream

from txguard.contract.errors import (
    BadRequestError,
    PayloadTooLargeError,
    ScoringError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)

JSON = "application/json"
_JSON_HEADERS = {"Content-Type": JSON}


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: dict(_JSON_HEADERS))


_STATUS_LINES = {code: f"{code} {phrase.upper()}" for code, phrase in HTTP_STATUS_CODES.items()}


def status_line(status: int) -> str:
    """`200 OK`, `422 UNPROCESSABLE ENTITY`: werkzeug's status line, so either route answers alike."""
    return _STATUS_LINES.get(status) or f"{status} UNKNOWN"


class Headers(Protocol):
    """What the service reads of request headers: `get` by header name (`WsgiHeaders`; a dict in tests)."""

    def get(self, name: str, default: str | None = None) -> str | None: ...


class WsgiHeaders:
    """Request headers read straight from the WSGI environ.

    werkzeug's `EnvironHeaders.get` normalises and decodes on every call (a few microseconds each,
    three per request); here a header name maps once to its environ key and a lookup is a dict get.
    """

    __slots__ = ("_environ",)
    _KEYS: dict[str, str] = {}  # header name -> environ key, filled as names are first asked for

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        key = self._KEYS.get(name)
        if key is None:
            upper = name.upper().replace("-", "_")
            key = self._KEYS.setdefault(name, upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{upper}")
        return self._environ.get(key, default)


class BodyReader(Protocol):
    content_length: int | None

    def read(self, limit: int) -> bytes:
        """Up to `limit` bytes of the body (fewer only at its end)."""

    def discard(self) -> None:
        """Consume the rest of the body without keeping it."""


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(status, body, {**_JSON_HEADERS, **(headers or {})})


def render_error(exc: ScoringError) -> HttpResponse:
    """The one error handler: `{"error": {"status", "message", "errors": [{loc, msg, type}]}}`."""
    info: dict[str, Any] = {"status": exc.status, "message": exc.message}
    info["errors"] = exc.details if isinstance(exc.details, list) else []
    extra = {"Allow": exc.details["allow"]} if isinstance(exc.details, dict) and "allow" in exc.details else None
    return json_response(exc.status, {"error": info}, extra)


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse(adapter: Any, body: bytes) -> Any:
    """Validate JSON bytes: malformed JSON -> 400, schema errors -> 422 with field-level errors."""
    try:
        return adapter.validator.validate_json(body)  # the adapter's validator itself: its wrapper adds ~0.3 us
    except ValidationError as exc:
        errors = field_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            raise BadRequestError("request body is not valid JSON", errors) from None
        raise ValidationFailedError(f"{len(errors)} validation error(s) in the request body", errors) from None


def read_json_body(headers: Headers, body: BodyReader, limit: int) -> bytes:
    """The body of a JSON request: 415 for another media type, 413 beyond `limit` bytes."""
    ctype = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if ctype != JSON and not (ctype.startswith("application/") and ctype.endswith("+json")):
        raise UnsupportedMediaTypeError(f"Content-Type must be {JSON}, got {ctype or 'none'!r}")
    if body.content_length is not None and body.content_length > limit:
        raise PayloadTooLargeError(f"body of {body.content_length} bytes exceeds {limit} bytes")
    data = body.read(limit + 1)  # one byte more tells "too large" when no Content-Length
    if len(data) > limit:
        raise PayloadTooLargeError(f"body exceeds {limit} bytes")
    return data


class BytesBody:
    """A body already in memory: scoring in process (replays, benchmarks, tests) without a server."""

    __slots__ = ("content_length", "data")

    def __init__(self, data: bytes) -> None:
        self.data, self.content_length = data, len(data)

    def read(self, limit: int) -> bytes:
        return self.data[:limit]

    def discard(self) -> None:
        return None


def _read_capped(stream: Any, limit: int) -> bytes:
    """A body without a length (chunked upload): read up to one byte past the limit, never more."""
    chunks, size = [], 0
    while size < limit:
        chunk = stream.read(min(limit - size, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class WsgiBody:
    """The body of a request read straight from the WSGI environ (the hot routes, `txguard.scoring.wsgi`).

    The stream is werkzeug's `get_input_stream` (under gunicorn, which terminates the input, the
    server's own stream; elsewhere one limited to Content-Length), the length werkzeug's
    `get_content_length`: the same bytes a werkzeug `Request` would read, without building one.
    """

    __slots__ = ("_left", "_stream", "content_length")

    def __init__(self, wsgi_env: Mapping[str, Any]) -> None:
        length = wsgi_env.get("CONTENT_LENGTH")
        if "wsgi.input_terminated" in wsgi_env and length and length.isdigit() and length.isascii() \
                and "HTTP_TRANSFER_ENCODING" not in wsgi_env:
            # The common case, what werkzeug's two functions return for it: the server's stream, the length.
            self._stream, self.content_length = wsgi_env["wsgi.input"], int(length)
        else:
            self._stream = get_input_stream(wsgi_env)  # type: ignore[arg-type]
            self.content_length = get_content_length(wsgi_env)  # type: ignore[arg-type]
        self._left = self.content_length  # bytes not read yet (None: read to the stream's end)

    def read(self, limit: int) -> bytes:
        if self.content_length is not None and self.content_length <= limit:
            data = self._stream.read(self.content_length)
            self._left = 0
            return data
        data = _read_capped(self._stream, limit)
        if self._left is not None:
            self._left -= len(data)
        return data

    def discard(self) -> None:
        if self._left == 0:
            return
        while self._stream.read(65536):
            pass
        self._left = 0


class WerkzeugBody:
    """The body of a werkzeug request, read at most once and never beyond the limit."""

    __slots__ = ("_request", "_whole", "content_length")

    def __init__(self, request: Any) -> None:
        self._request = request
        self._whole = False  # read to its end: nothing left to discard
        self.content_length = request.content_length

    def read(self, limit: int) -> bytes:
        if self.content_length is not None and self.content_length <= limit:
            self._whole = True
            return self._request.get_data()  # cached: functions-framework reads it again afterwards
        return _read_capped(self._request.stream, limit)

    def discard(self) -> None:
        if self._whole:
            return
        stream = self._request.stream
        while stream.read(65536):
            pass
