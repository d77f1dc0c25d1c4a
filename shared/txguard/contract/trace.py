"""One trace per transaction: read it from a request, pass it on, put it on every log line.

Cloud Run gives every request a trace: the W3C `traceparent` header
(`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`) and Google's older
`X-Cloud-Trace-Context` (`<32 hex trace id>/<decimal span id>;o=<0|1>`). Enrichment reads the push
request's (or starts one when there is none, e.g. a local push), logs it on each of its lines,
sends it to scoring in both headers and puts it on the decision's Pub/Sub attributes; scoring logs
the one it receives. Cloud Logging groups lines whose `logging.googleapis.com/trace` field names
the same trace, so Logs Explorer shows one transaction's lines from both functions together.

The delivery's trace is also *current* while it is processed (`bind` / `current`, a context
variable: per thread, so concurrent deliveries never mix): the HTTP scoring client reads it there,
so a scoring backend is any `score(tx)` (the in-process `Scorer` of batch jobs included) and needs
no trace parameter.

No OpenTelemetry here: parsing two headers costs about a microsecond and keeps scoring's cold
start free of the SDK.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

TRACEPARENT = "traceparent"
CLOUD_TRACE_CONTEXT = "X-Cloud-Trace-Context"
TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"
SAMPLED_KEY = "logging.googleapis.com/trace_sampled"

_HEX = frozenset("0123456789abcdef")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and _HEX.issuperset(text)


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A trace id and the current span in it (lowercase hex, W3C sizes)."""

    trace_id: str
    span_id: str
    sampled: bool = True

    @classmethod
    def new(cls, sampled: bool = True) -> TraceContext:
        return cls(secrets.token_hex(16), secrets.token_hex(8), sampled)

    def child(self) -> TraceContext:
        """The same trace, a new span whose parent is this one (work done here, a call made from here)."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.sampled)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    @property
    def cloud_trace_context(self) -> str:
        return f"{self.trace_id}/{int(self.span_id, 16)};o={1 if self.sampled else 0}"

    def headers(self) -> dict[str, str]:
        """Both propagation headers (Cloud Run and older Google front ends read either)."""
        return {TRACEPARENT: self.traceparent, CLOUD_TRACE_CONTEXT: self.cloud_trace_context}

    def log_fields(self, project: str) -> dict[str, str | bool]:
        """The fields Cloud Logging reads from a JSON line to attach it to this trace."""
        return {TRACE_KEY: f"projects/{project}/traces/{self.trace_id}", SPAN_KEY: self.span_id,
                SAMPLED_KEY: self.sampled}


def parse_traceparent(value: str | None) -> TraceContext | None:
    """A W3C `traceparent`, or None when absent or malformed (all-zero ids and version ff included)."""
    if not value:
        return None
    parts = value.strip().lower().split("-")
    if len(parts) < 4 or not _is_hex(parts[0], 2) or parts[0] == "ff":
        return None
    version, trace_id, span_id, flags = parts[0], parts[1], parts[2], parts[3]
    if version == "00" and len(parts) != 4:
        return None
    if not (_is_hex(trace_id, 32) and _is_hex(span_id, 16) and _is_hex(flags, 2)):
        return None
    if trace_id == _INVALID_TRACE or span_id == _INVALID_SPAN:
        return None
    return TraceContext(trace_id, span_id, bool(int(flags, 16) & 1))


def parse_cloud_trace_context(value: str | None) -> TraceContext | None:
    """`TRACE_ID/SPAN_ID;o=1` (span and options optional), or None when absent or malformed."""
    if not value:
        return None
    head, _, options = value.strip().partition(";")
    trace_id, _, span = head.partition("/")
    trace_id = trace_id.lower()
    if not _is_hex(trace_id, 32) or trace_id == _INVALID_TRACE:
        return None
    span_id = None
    if span.isdigit() and 0 < int(span) < 2**64:
        span_id = f"{int(span):016x}"
    sampled = options.strip() != "o=0"
    return TraceContext(trace_id, span_id or secrets.token_hex(8), sampled)


def from_headers(get: Callable[[str], str | None]) -> TraceContext | None:
    """The request's trace: `traceparent` first (the standard), else `X-Cloud-Trace-Context`."""
    return parse_traceparent(get(TRACEPARENT)) or parse_cloud_trace_context(get(CLOUD_TRACE_CONTEXT))


_CURRENT: ContextVar[TraceContext | None] = ContextVar("txguard_trace", default=None)


def current() -> TraceContext | None:
    """The trace bound by the innermost `bind` of this thread or task, if any."""
    return _CURRENT.get()


@contextmanager
def bind(trace: TraceContext) -> Iterator[TraceContext]:
    """Make `trace` current for the block (what outgoing calls made meanwhile carry)."""
    token = _CURRENT.set(trace)
    try:
        yield trace
    finally:
        _CURRENT.reset(token)
