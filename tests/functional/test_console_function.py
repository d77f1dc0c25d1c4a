"""The console's entry point served by functions-framework, as Cloud Run runs it: every path goes
to `console`, which hands the request to the console app (built on the first request)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from tests.scoring_fixtures import publish_tiny
from txguard.console import app as console_app
from txguard.contract import names
from txguard.contract.settings import console_settings

SOURCE = str(Path(__file__).resolve().parents[2] / "functions" / "console" / "main.py")


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    registry = tmp_path / "registry"
    publish_tiny(registry)
    for key, value in {"HISTORY_STORE": "sqlite", "SQLITE_PATH": str(tmp_path / "h.sqlite3"),
                       "CONSOLE_QUEUE_PATH": str(tmp_path / "q.sqlite3"), "TXGUARD_REGISTRY": str(registry),
                       "CONSOLE_INGEST": "false", "SCORING_URL": "http://127.0.0.1:9", "SCORING_AUTH": "none",
                       "PUBSUB_EMULATOR_HOST": "127.0.0.1:9"}.items():
        monkeypatch.setenv(key, value)
    console_settings.cache_clear()
    console_app._app.install(None)
    app = functions_framework.create_app(target=names.CONSOLE_ENTRY_POINT, source=SOURCE, signature_type="http")
    yield app.test_client()
    console_app.default_app().config["parts"].close()  # every test made requests: it was built
    console_app._app.install(None)
    console_settings.cache_clear()


def test_pages_static_files_and_api_through_functions_framework(client: Any) -> None:
    assert client.get("/healthz").get_json()["status"] == "ok"
    page = client.get("/queue")
    assert page.status_code == 200 and b"Review queue" in page.data
    assert client.get("/assets/console.js").status_code == 200
    models = client.get("/api/models").get_json()
    assert models["aliases"] == {"production": "v1"}


def test_bad_input_is_answered_by_the_console_not_the_framework(client: Any) -> None:
    resp = client.post("/api/score", data=json.dumps({"wallet_id": "w1"}), content_type="application/json")
    assert resp.status_code == 422
    fields = {e["loc"][0] for e in resp.get_json()["error"]["errors"]}
    assert {"transaction_id", "amount", "timestamp"} <= fields
    # The scoring function is unreachable here: a valid transaction gets a clear 503, not a crash.
    body = {"transaction_id": "m-1", "wallet_id": "w1", "counterparty_id": "c1", "amount": 10.0, "currency": "EUR",
            "type": "payment", "channel": "app", "country": "FR", "timestamp": "2025-01-01T00:00:00Z"}
    resp = client.post("/api/score", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 503 and "unavailable" in resp.get_json()["error"]["message"]


def test_the_live_stream_streams_through_functions_framework(client: Any) -> None:
    resp = client.get("/api/live/stream", buffered=False)
    assert resp.mimetype == "text/event-stream"
    chunk = next(iter(resp.response))
    text = chunk.decode() if isinstance(chunk, bytes) else chunk
    assert text.startswith("data: ") and "per_second" in text
    resp.close()
