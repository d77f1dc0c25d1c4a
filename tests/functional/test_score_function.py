"""The score function driven in process through functions-framework (`create_app().test_client()`).

Each client is a fresh import of functions/score/main.py (cold start) with MODEL_URI pointing at
a registry in tmp_path holding a tiny model trained by the test.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from tests.scoring_fixtures import THRESHOLDS, enriched_transactions, publish_tiny
from txguard.contract import names
from txguard.contract.logs import JsonFormatter
from txguard.contract.models import MAX_BATCH
from txguard.contract.settings import scoring_settings
from txguard.contract.trace import SPAN_KEY, TRACE_KEY

ROOT = Path(__file__).resolve().parents[2]
SOURCE = str(ROOT / "functions" / "score" / "main.py")
JSON_CT = "application/json"


@pytest.fixture
def make_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    def make(model_uri: str, **env: str) -> Any:
        monkeypatch.setenv("MODEL_URI", model_uri)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        scoring_settings.cache_clear()
        app = functions_framework.create_app(target=names.SCORING_ENTRY_POINT, source=SOURCE,
                                             signature_type="http")
        return app.test_client()

    yield make
    scoring_settings.cache_clear()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry"
    publish_tiny(path)
    return path


@pytest.fixture
def client(make_client: Callable[..., Any], registry: Path) -> Any:
    return make_client(f"{registry}@production")


class LogLines(list):
    """JSON log lines as Cloud Logging would receive them: request lines (stdout) + `txguard` loggers."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__()
        self.capsys = capsys

    def read(self) -> LogLines:
        for raw in self.capsys.readouterr().out.splitlines():
            if raw.startswith("{"):
                self.append(json.loads(raw))
        return self


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[LogLines]:
    lines = LogLines(capsys)

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(JsonFormatter().format(record)))

    handler = Capture()
    root = logging.getLogger("txguard")
    root.addHandler(handler)
    yield lines
    root.removeHandler(handler)


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def tx_json(i: int = 0) -> str:
    return enriched_transactions()[i].model_dump_json()


# Happy paths -----------------------------------------------------------------------------------
def test_score_returns_a_decision_and_logs_one_structured_line(client: Any, log_lines: LogLines) -> None:
    tx = enriched_transactions()[3]
    resp = client.post("/score", data=tx.model_dump_json(), content_type=JSON_CT,
                       headers={"X-Cloud-Trace-Context": f"{TRACE_ID}/1;o=1"})
    assert resp.status_code == 200, resp.data
    body = resp.get_json()
    assert body["transaction_id"] == tx.transaction_id and body["wallet_id"] == tx.wallet_id
    assert 0.0 <= body["score"] <= 1.0
    expected = "block" if body["score"] >= THRESHOLDS.block else "review" if body["score"] >= THRESHOLDS.review \
        else "allow"
    assert body["outcome"] == expected
    assert body["model_version"] == "v1"
    assert set(body["timings"]) == {"inference_us", "total_us"}

    scored = [line for line in log_lines.read() if line.get("transaction_id") == tx.transaction_id]
    assert len(scored) == 1
    line = scored[0]
    assert line["severity"] == "INFO"
    assert line[TRACE_KEY].endswith(f"/traces/{TRACE_ID}")
    assert line[SPAN_KEY] == "0000000000000001"  # the decimal span id of the Cloud header, as hex
    for key in ("wallet_id", "model_version", "outcome", "score", "latency_ms", "inference_us"):
        assert key in line, key


@pytest.mark.parametrize(("headers", "trace_id"), [
    ({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}, TRACE_ID),  # what enrichment forwards
    ({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
      "X-Cloud-Trace-Context": "0af7651916cd43dd8448eb211c80319c/5;o=1"}, TRACE_ID),  # the W3C one wins
    ({"X-Cloud-Trace-Context": "not-a-trace"}, None),  # malformed: no trace, still scored
    ({}, None),
])
def test_the_callers_trace_is_on_the_request_line(client: Any, log_lines: LogLines, headers: dict[str, str],
                                                  trace_id: str | None) -> None:
    tx = enriched_transactions()[4]
    resp = client.post("/score", data=tx.model_dump_json(), content_type=JSON_CT, headers=headers)
    assert resp.status_code == 200, resp.data
    (line,) = [x for x in log_lines.read() if x.get("transaction_id") == tx.transaction_id]
    if trace_id is None:
        assert TRACE_KEY not in line
    else:
        assert line[TRACE_KEY] == f"projects/{line[TRACE_KEY].split('/')[1]}/traces/{trace_id}"
        assert line[SPAN_KEY] == "00f067aa0ba902b7"


def test_batch_keeps_input_order_and_matches_single_scores(client: Any) -> None:
    txs = enriched_transactions()[:120]
    body = {"transactions": [json.loads(tx.model_dump_json()) for tx in reversed(txs)]}
    resp = client.post("/score/batch", data=json.dumps(body), content_type=JSON_CT)
    assert resp.status_code == 200, resp.data
    out = resp.get_json()
    assert out["model_version"] == "v1"
    assert [d["transaction_id"] for d in out["decisions"]] == [tx.transaction_id for tx in reversed(txs)]
    for tx, decision in zip(reversed(txs), out["decisions"], strict=True):
        single = client.post("/score", data=tx.model_dump_json(), content_type=JSON_CT).get_json()
        assert (single["score"], single["outcome"], single["reasons"]) == (
            decision["score"], decision["outcome"], decision["reasons"])


def test_health_model_and_openapi(client: Any) -> None:
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["model_version"] == "v1"
    model = client.get("/model").get_json()
    assert model["version"] == "v1" and model["thresholds"] == THRESHOLDS.model_dump()
    assert model["features"][0] == "amount" and len(model["sha256"]) == 64
    assert model["calibration"] is None  # the tiny test model predates calibration: its score only ranks
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert {"/score", "/score/batch", "/health", "/model", "/openapi.json"} <= set(doc["paths"])
    assert "EnrichedTransaction" in doc["components"]["schemas"]


# Bad input never 5xx --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "data", "ctype", "status"),
    [
        ("POST", "/score", "{not json", JSON_CT, 400),
        ("POST", "/score", "", JSON_CT, 400),
        ("POST", "/score", tx_json(), "text/plain", 415),
        ("POST", "/score", tx_json(), None, 415),
        ("POST", "/score", "[1, 2]", JSON_CT, 422),
        ("POST", "/score/batch", '{"transactions": []}', JSON_CT, 422),
        ("GET", "/score", None, None, 405),
        ("PUT", "/health", None, None, 405),
        ("GET", "/nope", None, None, 404),
        ("POST", "/", "{}", JSON_CT, 404),
    ],
)
def test_bad_requests_get_4xx_with_an_error_body(
    client: Any, method: str, path: str, data: str | None, ctype: str | None, status: int
) -> None:
    resp = client.open(path, method=method, data=data, content_type=ctype)
    assert resp.status_code == status, resp.data
    err = resp.get_json()["error"]
    assert err["status"] == status and err["message"]
    if status == 405:
        assert resp.headers["Allow"]


def test_schema_errors_are_field_level(client: Any) -> None:
    tx = json.loads(tx_json())
    tx["amount"] = -5
    tx["currency"] = "XXX"
    del tx["features"]["tx_count_1h"]
    resp = client.post("/score", data=json.dumps(tx), content_type=JSON_CT)
    assert resp.status_code == 422
    errors = resp.get_json()["error"]["errors"]
    locs = {tuple(e["loc"]) for e in errors}
    assert {("amount",), ("currency",), ("features", "tx_count_1h")} <= locs
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)


def test_body_over_the_limit_is_413(make_client: Callable[..., Any], registry: Path) -> None:
    client = make_client(f"{registry}@production", MAX_BODY_BYTES="2048")
    assert client.post("/score", data=tx_json(), content_type=JSON_CT).status_code == 200  # ~1.1 KB
    big = json.dumps({"transactions": [json.loads(tx_json(i)) for i in range(5)]})
    resp = client.post("/score/batch", data=big, content_type=JSON_CT)
    assert resp.status_code == 413
    assert client.get("/health").status_code == 200  # the client/connection is still usable


def test_batch_over_max_batch_is_422(client: Any) -> None:
    one = json.loads(tx_json())
    body = json.dumps({"transactions": [one] * (MAX_BATCH + 1)})
    resp = client.post("/score/batch", data=body, content_type=JSON_CT)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["errors"][0]["loc"] == ["transactions"]


# Model not loaded ----------------------------------------------------------------------------
def test_without_a_model_health_and_score_are_503_with_the_reason(
    make_client: Callable[..., Any], tmp_path: Path, log_lines: LogLines
) -> None:
    client = make_client(f"{tmp_path / 'empty'}@production")
    health = client.get("/health")
    assert health.status_code == 503
    assert "ModelNotFoundError" in health.get_json()["reason"]
    resp = client.post("/score", data=tx_json(), content_type=JSON_CT)
    assert resp.status_code == 503 and "not loaded" in resp.get_json()["error"]["message"]
    assert client.get("/model").status_code == 503
    assert client.get("/openapi.json").status_code == 200
    lines = log_lines.read()
    assert any(line["severity"] == "CRITICAL" and "model not loaded" in line["message"] for line in lines)
    assert any(line["severity"] == "ERROR" and line.get("status") == 503 for line in lines)


def test_a_tampered_artifact_is_refused(make_client: Callable[..., Any], registry: Path) -> None:
    artifact = registry / "versions" / "v1" / "model.onnx"
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    client = make_client(f"{registry}@production")
    health = client.get("/health")
    assert health.status_code == 503
    assert "ChecksumMismatchError" in health.get_json()["reason"]


# Concurrency ---------------------------------------------------------------------------------
def test_concurrent_requests_get_their_own_decisions(client: Any) -> None:
    txs = enriched_transactions()
    expected = {}
    for tx in txs:
        d = client.post("/score", data=tx.model_dump_json(), content_type=JSON_CT).get_json()
        expected[tx.transaction_id] = (d["score"], d["outcome"])
    bodies = [tx.model_dump_json() for tx in txs]
    wrong: list[str] = []

    def hammer(offset: int) -> None:
        for body in bodies[offset::8] * 2:
            d = client.post("/score", data=body, content_type=JSON_CT).get_json()
            if expected[d["transaction_id"]] != (d["score"], d["outcome"]):
                wrong.append(d["transaction_id"])

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
