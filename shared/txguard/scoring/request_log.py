"""The scoring function's per-request log line, written straight to stdout.

Same shape as txguard.contract.logs.JsonFormatter (severity, message, time, logger, fields; Cloud
Logging reads it from stdout) at a fraction of the cost: `logging` builds a LogRecord, copies `extra` and walks its
attributes for every request (~35 us), here one dict and pydantic-core's encoder (~5 us), which matters
when the whole request is ~100 us of work. Everything else (load, errors with stack traces)
goes through `logging` as usual.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from pydantic_core import to_json

# The severities a line may carry (Cloud Logging's names, which are also `logging`'s).
DEBUG, INFO, WARNING, ERROR, CRITICAL = "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"
_LEVELS = {DEBUG: logging.DEBUG, INFO: logging.INFO, WARNING: logging.WARNING, ERROR: logging.ERROR,
           CRITICAL: logging.CRITICAL}


class RequestLog:
    def __init__(self, level: str = INFO, logger: str = "txguard.score") -> None:
        self.threshold = logging.getLevelName(level.upper())
        if not isinstance(self.threshold, int):
            self.threshold = logging.INFO
        self.logger = logger
        self._lock = threading.Lock()  # one whole line at a time, whatever the thread count
        self._second = -1
        self._stamp = ""

    def emit(self, severity: str, message: str, fields: dict[str, Any]) -> None:
        entry = self.entry(severity, message)
        if entry is not None:
            entry.update(fields)
            self.write(entry)

    def entry(self, severity: str, message: str) -> dict[str, Any] | None:
        """A line's leading fields (severity, message, time, logger), for the caller to add its own
        and `write`; None when `severity` is below the level (nothing to build)."""
        if _LEVELS[severity] < self.threshold:
            return None
        return {"severity": severity, "message": message, "time": self._time(time.time()), "logger": self.logger}

    def write(self, entry: dict[str, Any]) -> None:
        self._write(to_json(entry, fallback=str).decode() + "\n")  # pydantic-core's Rust encoder: ~2 us

    def emit_many(self, severity: str, entries: list[tuple[str, dict[str, Any]]]) -> None:
        """Several lines in one write (the observer's shadow lines: one system call per chunk)."""
        if _LEVELS[severity] < self.threshold or not entries:
            return
        now = time.time()
        self._write("".join(self._line(severity, message, fields, now) for message, fields in entries))

    def _time(self, now: float) -> str:
        second = int(now)
        if second != self._second:  # strftime once per second, not per request
            self._stamp, self._second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)), second
        return f"{self._stamp}.{int(now * 1000) % 1000:03d}Z"

    def _line(self, severity: str, message: str, fields: dict[str, Any], now: float) -> str:
        entry = {"severity": severity, "message": message, "time": self._time(now), "logger": self.logger, **fields}
        return to_json(entry, fallback=str).decode() + "\n"

    def _write(self, text: str) -> None:
        with self._lock:
            out = sys.stdout  # looked up each time: test capture and redirection keep working
            out.write(text)
            out.flush()
