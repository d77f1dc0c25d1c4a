"""Structured JSON log lines that Cloud Logging understands (severity, message, trace).

`log_context` binds fields (one delivery's trace, see txguard.contract.trace) to every line written
in a block, by this thread or task only, so lines logged deep in a store or client carry the trace
without each call passing it along.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from txguard.contract.trace import TRACE_KEY

__all__ = ["EVENT_KEY", "TRACE_KEY", "JsonFormatter", "get_logger", "log_context"]

# The `event` field of the lines that are not one per request: the Pulumi program filters its log-based
# metrics on it and the CLI (`txguard drift`, `compare`, `reliability`, `late-updates`) parses it.
EVENT_KEY = "event"
MODEL_LOADED_EVENT = "model_loaded"  # a version became the one answering (cold start or alias change)
MODEL_REFUSED_EVENT = "model_refused"  # a version failed its checks; the previous one keeps answering
DRIFT_EVENT = "drift_window"  # PSI of one window of traffic against the version's training reference
SHADOW_EVENT = "shadow_score"  # the challenger's score of a transaction the champion answered
# Enrichment and label functions: a counterparty, device or wallet-label update applied after reads that
# should have included it (txguard.enrichment.counterparty.lateness).
LATE_UPDATE_EVENT = "late_update"
RULES_LOADED_EVENT = "rules_loaded"  # a rule set version became the one applied (or shadowed)
RULES_REFUSED_EVENT = "rules_refused"  # a rule set version failed its checks; the previous one stays
RULES_SHADOW_EVENT = "rules_shadow"  # what the staging rule set would have decided (never returned)

_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("txguard_log_context", default=MappingProxyType({}))
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "logger": record.name,
        }
        entry.update(_CONTEXT.get())
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


@contextmanager
def log_context(fields: Mapping[str, Any]) -> Iterator[None]:
    """Every line logged in this block (this thread or task) carries `fields`; nested blocks add to them."""
    token = _CONTEXT.set({**_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def get_logger(name: str, level: str = "INFO") -> logging.Logger:
    """A logger writing one JSON object per line to stdout (configured once per process)."""
    root = logging.getLogger("txguard")
    if not getattr(root, "_txguard_configured", False):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.propagate = False
        root._txguard_configured = True  # type: ignore[attr-defined]
    root.setLevel(level.upper())
    return root.getChild(name)
