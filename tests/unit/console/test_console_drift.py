"""Drift per feature on the models page, from drift_window lines the scoring code itself wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.console_fixtures import console_parts
from txguard.console.app import create_app
from txguard.console.drift import CloudLoggingDriftWindows, FileDriftWindows, drift_source, drift_view
from txguard.contract.errors import ConsoleUnavailableError
from txguard.scoring.drift import MIN_ROWS, DriftMonitor
from txguard.scoring.psi import reference_of

FEATURES = ["amount", "tx_count_24h", "new_counterparties_24h"]


def windows_written_by_the_scoring_code(path: Path, shift: float) -> None:
    """Two windows of v1 traffic, the second with `new_counterparties_24h` shifted by `shift`."""
    rng = np.random.default_rng(1)
    reference_rows = rng.normal(size=(5000, len(FEATURES)))
    reference = reference_of(reference_rows, FEATURES, rng.random(5000), period="test")
    clock = [1_700_000_000.0]
    lines: list[dict[str, Any]] = []
    monitor = DriftMonitor(window_s=60, window_rows=MIN_ROWS, emit=lines.append, clock=lambda: clock[0])
    for second_window in (False, True):
        x = rng.normal(size=(MIN_ROWS, len(FEATURES)))
        if second_window:
            x[:, 2] += shift
        clock[0] += 30
        monitor.add("v1", reference, FEATURES, x, rng.random(MIN_ROWS))
    # As the function logs them: one JSON object per line, among other lines.
    path.write_text("gunicorn says hello\n" + "\n".join(json.dumps({"severity": "INFO", **line}) for line in lines)
                    + '\n{"severity":"INFO","message":"scored tx-1"}\n')


def test_the_latest_window_per_version_with_each_feature_against_the_threshold(tmp_path: Path) -> None:
    log = tmp_path / "score.log"
    windows_written_by_the_scoring_code(log, shift=2.0)
    windows = FileDriftWindows(str(log)).recent()
    assert len(windows) == 2 and windows[0]["window_end"] >= windows[1]["window_end"]
    view = drift_view(windows, threshold=0.2)["v1"]
    assert view["psi"][0]["name"] == "new_counterparties_24h" and view["psi"][0]["over"] is True
    assert view["feature_max"] == "new_counterparties_24h" and view["windows_over"] == 1
    assert {f["name"] for f in view["psi"]} == {*FEATURES, "score"}
    assert FileDriftWindows(str(tmp_path / "missing.log")).recent() == []


def test_the_models_page_shows_drift(tmp_path: Path) -> None:
    log = tmp_path / "score.log"
    windows_written_by_the_scoring_code(log, shift=2.0)
    parts = console_parts(tmp_path, DRIFT_SOURCE=f"file:{log}")
    client = create_app(parts).test_client()
    data = client.get("/api/models").get_json()["drift"]
    assert data["error"] is None and data["versions"]["v1"]["feature_max"] == "new_counterparties_24h"
    page = client.get("/models").data.decode()
    assert 'id="drift-v1"' in page and "new_counterparties_24h" in page
    parts.close()


def test_without_a_source_the_page_says_so(tmp_path: Path) -> None:
    parts = console_parts(tmp_path)
    page = create_app(parts).test_client().get("/models").data.decode()
    assert "not configured" in page and "DRIFT_SOURCE" in page
    parts.close()
    with pytest.raises(ValueError, match="DRIFT_SOURCE"):
        drift_source("s3://nope", "p")


class FakeSession:
    """Answers entries.list like Cloud Logging (or fails like it)."""

    def __init__(self, status: int, entries: list[dict[str, Any]]) -> None:
        self.status, self.entries, self.bodies = status, entries, []

    def post(self, url: str, json: dict[str, Any], timeout: float) -> Any:  # noqa: A002 - requests' name
        self.bodies.append((url, json))
        status, entries = self.status, self.entries

        class Response:
            status_code = status
            text = "denied"

            @staticmethod
            def json() -> dict[str, Any]:
                return {"entries": entries}

        return Response()


def test_cloud_logging_query_and_answer() -> None:
    entry = {"jsonPayload": {"event": "drift_window", "model_version": "v3", "window_end": "2026-01-01T00:05:00+00:00",
                             "psi_max": 0.31, "feature_max": "amount", "psi": {"amount": 0.31}, "rows": 900}}
    session = FakeSession(200, [entry, {"textPayload": "noise"}])
    source = CloudLoggingDriftWindows("txguard-prod", session=session)
    assert source.recent(10) == [entry["jsonPayload"]]
    url, body = session.bodies[0]
    assert url.endswith("/v2/entries:list") and body["resourceNames"] == ["projects/txguard-prod"]
    assert 'resource.labels.service_name="txguard-score"' in body["filter"]
    assert 'jsonPayload.event="drift_window"' in body["filter"] and body["orderBy"] == "timestamp desc"
    since = source.request_body(5, now=datetime(2026, 1, 3, tzinfo=UTC))["filter"]
    assert 'timestamp>="2026-01-01T00:00:00Z"' in since
    with pytest.raises(ConsoleUnavailableError, match="403"):
        CloudLoggingDriftWindows("p", session=FakeSession(403, [])).recent()


def test_a_log_view_source_queries_that_view_only() -> None:
    """What infra sets: the drift log bucket's view, the one log resource the console may read."""
    view = "projects/txguard-prod/locations/global/buckets/txguard-drift/views/drift-windows"
    source = drift_source(f"cloud-logging:{view}", "txguard-prod")
    assert isinstance(source, CloudLoggingDriftWindows)
    session = FakeSession(200, [])
    source._session = session
    assert source.recent(3) == []
    assert session.bodies[0][1]["resourceNames"] == [view]
    from txguard.contract.settings import ConsoleSettings

    assert ConsoleSettings.model_validate({"DRIFT_SOURCE": f"cloud-logging:{view}"}).drift_source.endswith(view)
    with pytest.raises(ValueError, match="DRIFT_SOURCE"):
        ConsoleSettings.model_validate({"DRIFT_SOURCE": "cloud-logging:somewhere"})


def test_a_malformed_drift_line_is_skipped_with_a_warning_and_the_page_still_renders(tmp_path: Path) -> None:
    """A line the scoring code never writes (a PSI that is not a number, no version, a map where a number
    belongs) is left out with one warning each; the good windows are shown and /models answers 200."""
    import logging

    log = tmp_path / "score.log"
    windows_written_by_the_scoring_code(log, shift=2.0)
    bad = [{"event": "drift_window", "model_version": "v1", "window_end": "2099-01-01T00:00:00+00:00",
            "psi": {"amount": "lots"}, "psi_max": 0.5},
           {"event": "drift_window", "window_end": "2099-01-01T00:00:01+00:00", "psi": {}},
           {"event": "drift_window", "model_version": "v1", "window_end": "2099-01-01T00:00:02+00:00",
            "psi": {"amount": 0.1}, "psi_max": {"no": "number"}}]
    with log.open("a") as fh:
        fh.write("\n".join(json.dumps(b) for b in bad) + "\n")
    parts = console_parts(tmp_path, DRIFT_SOURCE=f"file:{log}")
    warnings: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = warnings.append  # type: ignore[method-assign]
    parts.log = logging.getLogger("txguard.test-drift-skip")
    parts.log.addHandler(handler)
    client = create_app(parts).test_client()
    assert client.get("/models").status_code == 200
    shown = client.get("/api/models").get_json()["drift"]["versions"]
    assert set(shown) == {"v1"} and shown["v1"]["feature_max"] == "new_counterparties_24h"  # the good window
    skipped = [r.getMessage() for r in warnings if r.levelno == logging.WARNING]
    assert len(skipped) >= 3 and all(m.startswith("drift_window line skipped: ") for m in skipped)
    assert any("psi.amount" in m for m in skipped) and any("model_version" in m for m in skipped)
    parts.close()
