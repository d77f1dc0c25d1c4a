"""Structured JSON log lines that Cloud Logging understands (severity, message, trace)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

TRACE_KEY = "logging.googleapis.com/trace"

# The `event` field of the scoring function's lines that are not per request: the Pulumi program
# filters its log-based metrics on it and the CLI (`txguard drift`, `compare`, `reliability`) parses it.
EVENT_KEY = "event"
MODEL_LOADED_EVENT = "model_loaded"  # a version became the one answering (cold start or alias change)
MODEL_REFUSED_EVENT = "model_refused"  # a version failed its checks; the previous one keeps answering
DRIFT_EVENT = "drift_window"  # PSI of one window of traffic against the version's training reference
SHADOW_EVENT = "shadow_score"  # the challenger's score of a transaction the champion answered
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
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def trace_field(header: str | None, project: str) -> dict[str, str]:
    """`X-Cloud-Trace-Context: TRACE_ID/SPAN;o=1` -> the Cloud Logging trace field."""
    if not header:
        return {}
    trace_id = header.split("/", 1)[0].strip()
    return {TRACE_KEY: f"projects/{project}/traces/{trace_id}"} if trace_id else {}


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
