"""Drift per feature for the models page: the scoring function's `drift_window` log lines.

The scoring function counts a sample of its live rows into each version's training reference bins
and logs one `drift_window` line per window with the PSI of every monitored feature and of the score
(txguard.scoring.drift; docs/lifecycle.md). The console does not recompute anything: it reads those
lines back, from Cloud Logging in Google Cloud (`DRIFT_SOURCE=cloud-logging`) or from the local
scoring function's log file (`DRIFT_SOURCE=file:<path>`), and shows the latest window per version,
each feature's PSI against the alert threshold (`DRIFT_PSI_THRESHOLD`, infra's `driftPsiThreshold`)
and the recent windows' largest PSI.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from txguard.contract import names
from txguard.contract.errors import ConsoleUnavailableError
from txguard.contract.logs import DRIFT_EVENT, EVENT_KEY

TAIL_BYTES = 4 * 1024 * 1024  # a local log is read from its end: the latest windows are there
LOGGING_URL = "https://logging.googleapis.com/v2/entries:list"
LOOKBACK = timedelta(days=2)


class DriftWindows(Protocol):
    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest `drift_window` lines, newest first."""
        ...


class NoDriftWindows:
    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        return []


def drift_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """`drift_window` objects among JSON log lines (other lines, and non-JSON ones, skipped)."""
    found = []
    for line in lines:
        if not line.startswith("{") or DRIFT_EVENT not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get(EVENT_KEY) == DRIFT_EVENT:
            found.append(entry)
    return found


class FileDriftWindows:
    """The local scoring function's stdout log (the stack's `score.log`)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - TAIL_BYTES))
                text = fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConsoleUnavailableError(f"cannot read {self.path}: {exc}") from exc
        return _newest(drift_lines(text.splitlines()), limit)


class CloudLoggingDriftWindows:
    """Cloud Logging's entries.list (REST through google-auth) over the project's logs
    (roles/logging.viewer) or over one log view (`view`: roles/logging.viewAccessor on it alone)."""

    def __init__(self, project: str, service: str = names.SCORING_FUNCTION, session: Any = None,
                 view: str = "") -> None:
        self.project = project
        self.service = service
        self.view = view  # projects/P/locations/L/buckets/B/views/V
        self._session = session

    def _authorized(self) -> Any:
        if self._session is None:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/logging.read"])
            self._session = AuthorizedSession(credentials)
        return self._session

    def request_body(self, limit: int, now: datetime | None = None) -> dict[str, Any]:
        since = ((now or datetime.now(UTC)) - LOOKBACK).isoformat().replace("+00:00", "Z")
        return {
            "resourceNames": [self.view or f"projects/{self.project}"],
            "filter": (f'resource.type="cloud_run_revision" AND resource.labels.service_name="{self.service}" '
                       f'AND jsonPayload.{EVENT_KEY}="{DRIFT_EVENT}" AND timestamp>="{since}"'),
            "orderBy": "timestamp desc",
            "pageSize": limit,
        }

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        try:
            resp = self._authorized().post(LOGGING_URL, json=self.request_body(limit), timeout=10)
        except Exception as exc:  # noqa: BLE001 - credentials or network: the page says so
            raise ConsoleUnavailableError(f"Cloud Logging: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            raise ConsoleUnavailableError(f"Cloud Logging answered {resp.status_code}: {resp.text[:300]}")
        entries = resp.json().get("entries", [])
        return _newest([e["jsonPayload"] for e in entries if isinstance(e.get("jsonPayload"), dict)], limit)


def _newest(windows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    return sorted(windows, key=lambda w: str(w.get("window_end", "")), reverse=True)[:limit]


def drift_source(spec: str, project: str) -> DriftWindows:
    """`DRIFT_SOURCE`: "" (none), "cloud-logging", "cloud-logging:<log view>", or "file:<path>"."""
    if not spec:
        return NoDriftWindows()
    if spec == "cloud-logging":
        return CloudLoggingDriftWindows(project)
    if spec.startswith("cloud-logging:projects/"):
        return CloudLoggingDriftWindows(project, view=spec.removeprefix("cloud-logging:"))
    if spec.startswith("file:"):
        return FileDriftWindows(spec.removeprefix("file:"))
    raise ValueError(f"DRIFT_SOURCE must be empty, cloud-logging[:<log view>] or file:<path>, got {spec!r}")


class DriftLine(BaseModel):
    """The fields of a `drift_window` line the page shows (txguard.scoring.drift writes them): a line
    without them, or with a PSI that is not a number, is skipped with a warning, never a 500."""

    model_config = ConfigDict(extra="ignore")

    model_version: str
    window_start: str = ""
    window_end: str = ""
    rows: int = Field(0, ge=0)
    psi_max: float = 0.0
    feature_max: str | None = None
    psi: dict[str, float] = Field(default_factory=dict)


def valid_windows(windows: list[dict[str, Any]], log: logging.Logger | None = None) -> list[DriftLine]:
    """The windows that have the shape the page needs, in their order; each other one is logged once."""
    good = []
    for w in windows:
        try:
            good.append(DriftLine.model_validate(w))
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(x) for x in first["loc"]) or "(line)"
            if log is not None:
                log.warning("drift_window line skipped: %s: %s", where, first["msg"],
                            extra={"model_version": w.get("model_version") if isinstance(w, dict) else None,
                                   "window_end": w.get("window_end") if isinstance(w, dict) else None})
    return good


def drift_view(windows: list[dict[str, Any]], threshold: float,
               log: logging.Logger | None = None) -> dict[str, dict[str, Any]]:
    """Per model version: its latest window (PSI per feature, largest first) and its recent psi_max.
    Malformed lines are skipped with a warning (`valid_windows`)."""
    by_version: dict[str, list[DriftLine]] = {}
    for w in valid_windows(windows, log):  # newest first
        by_version.setdefault(w.model_version, []).append(w)
    view = {}
    for version, ws in by_version.items():
        latest = ws[0]
        psi = sorted(latest.psi.items(), key=lambda kv: -kv[1])
        recent = [w.psi_max for w in reversed(ws[:20])]
        view[version] = {
            "window_start": latest.window_start, "window_end": latest.window_end,
            "rows": latest.rows, "psi_max": latest.psi_max, "feature_max": latest.feature_max,
            "psi": [{"name": n, "psi": round(v, 4), "over": v > threshold} for n, v in psi],
            "recent_psi_max": recent,
            "windows_over": sum(1 for v in recent if v > threshold),
            "threshold": threshold,
        }
    return view
