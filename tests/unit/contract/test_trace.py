"""Trace context: both Cloud Run headers parsed, malformed ones ignored, and log lines bound to a trace."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from txguard.contract.logs import JsonFormatter, log_context
from txguard.contract.trace import (
    CLOUD_TRACE_CONTEXT,
    SAMPLED_KEY,
    SPAN_KEY,
    TRACE_KEY,
    TRACEPARENT,
    TraceContext,
    bind,
    current,
    from_headers,
    parse_cloud_trace_context,
    parse_traceparent,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


def test_traceparent_round_trip() -> None:
    ctx = parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-01")
    assert ctx == TraceContext(TRACE_ID, SPAN_ID, True)
    assert ctx.traceparent == f"00-{TRACE_ID}-{SPAN_ID}-01"
    assert parse_traceparent(f"00-{TRACE_ID.upper()}-{SPAN_ID}-00") == TraceContext(TRACE_ID, SPAN_ID, False)


@pytest.mark.parametrize("value", [
    None, "", "garbage", f"00-{TRACE_ID}-{SPAN_ID}", f"00-{'0' * 32}-{SPAN_ID}-01", f"00-{TRACE_ID}-{'0' * 16}-01",
    f"ff-{TRACE_ID}-{SPAN_ID}-01", f"00-{TRACE_ID[:-1]}x-{SPAN_ID}-01", f"00-{TRACE_ID}-{SPAN_ID}-01-extra",
])
def test_malformed_traceparent_is_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_future_traceparent_versions_are_read() -> None:
    """W3C: a higher version may append fields; the first four keep their meaning."""
    assert parse_traceparent(f"01-{TRACE_ID}-{SPAN_ID}-01-what-comes-next") == TraceContext(TRACE_ID, SPAN_ID)


def test_cloud_trace_context_decimal_span_becomes_hex() -> None:
    ctx = parse_cloud_trace_context(f"{TRACE_ID}/{int(SPAN_ID, 16)};o=1")
    assert ctx == TraceContext(TRACE_ID, SPAN_ID, True)
    assert ctx.cloud_trace_context == f"{TRACE_ID}/{int(SPAN_ID, 16)};o=1"
    assert parse_cloud_trace_context(f"{TRACE_ID}/1;o=0").sampled is False
    no_span = parse_cloud_trace_context(TRACE_ID)  # span and options are optional
    assert no_span.trace_id == TRACE_ID and len(no_span.span_id) == 16 and no_span.sampled


@pytest.mark.parametrize("value", [None, "", "abc123/1;o=1", f"{'0' * 32}/1;o=1", "/1;o=1"])
def test_malformed_cloud_trace_context_is_ignored(value: str | None) -> None:
    assert parse_cloud_trace_context(value) is None


def test_traceparent_wins_over_the_cloud_header() -> None:
    other = "0af7651916cd43dd8448eb211c80319c"
    headers = {TRACEPARENT: f"00-{TRACE_ID}-{SPAN_ID}-01", CLOUD_TRACE_CONTEXT: f"{other}/5;o=1"}
    assert from_headers(headers.get).trace_id == TRACE_ID
    assert from_headers({CLOUD_TRACE_CONTEXT: f"{other}/5;o=1"}.get).trace_id == other
    assert from_headers({TRACEPARENT: "bad", CLOUD_TRACE_CONTEXT: f"{other}/5;o=1"}.get).trace_id == other
    assert from_headers({}.get) is None


def test_child_keeps_the_trace_and_both_headers_name_it() -> None:
    parent = TraceContext(TRACE_ID, SPAN_ID)
    child = parent.child()
    assert child.trace_id == TRACE_ID and child.span_id != SPAN_ID and len(child.span_id) == 16
    headers = child.headers()
    assert parse_traceparent(headers[TRACEPARENT]) == child
    assert parse_cloud_trace_context(headers[CLOUD_TRACE_CONTEXT]) == child
    new = TraceContext.new()
    assert len(new.trace_id) == 32 and new.trace_id != TraceContext.new().trace_id


def _logger(stream: io.StringIO) -> logging.Logger:
    logger = logging.getLogger(f"trace-test-{id(stream)}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_log_context_puts_the_trace_on_every_line_of_the_block_and_thread() -> None:
    stream = io.StringIO()
    log = _logger(stream)
    ctx = TraceContext(TRACE_ID, SPAN_ID)
    seen_elsewhere: list[str] = []

    def other_thread() -> None:
        log.info("other")  # another thread's line: not bound to this delivery
        seen_elsewhere.append(stream.getvalue().splitlines()[-1])

    with log_context(ctx.log_fields("proj")):
        log.info("inside", extra={"transaction_id": "t1"})
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    log.info("after")
    inside, other, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside[TRACE_KEY] == f"projects/proj/traces/{TRACE_ID}"
    assert inside[SPAN_KEY] == SPAN_ID and inside[SAMPLED_KEY] is True and inside["transaction_id"] == "t1"
    assert TRACE_KEY not in other and TRACE_KEY not in after


def test_bind_makes_a_trace_current_in_this_thread_only() -> None:
    outer, inner = TraceContext.new(), TraceContext.new()
    seen: list[TraceContext | None] = []
    assert current() is None
    with bind(outer):
        with bind(inner):
            assert current() is inner
        assert current() is outer
        thread = threading.Thread(target=lambda: seen.append(current()))
        thread.start()
        thread.join()
    assert current() is None and seen == [None]
