"""Alias following on a local registry: swaps, refusals, retries, and what requests see meanwhile."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.scoring_fixtures import enriched_transactions, parity_probe, tiny_metadata, tiny_model
from txguard.contract.errors import RegistryUnavailableError
from txguard.contract.settings import ScoringSettings
from txguard.registry import Registry, open_registry
from txguard.registry.core import AliasRecord
from txguard.registry.store import LocalBlobStore
from txguard.scoring import loading
from txguard.scoring.http import BytesBody
from txguard.scoring.runtime import ModelRuntime
from txguard.scoring.service import ScoringService
from txguard.scoring.vectorize import row_of


def score(service: ScoringService, tx: Any) -> tuple[int, dict]:
    resp = service.handle("POST", "/score", {"Content-Type": "application/json"}, BytesBody(tx.model_dump_json().encode()))
    return resp.status, json.loads(resp.body)


def health(service: ScoringService) -> tuple[int, dict]:
    resp = service.handle("GET", "/health", {}, BytesBody(b""))
    return resp.status, json.loads(resp.body)


def publish(reg: Registry, seed: int = 0, **overrides: Any) -> str:
    return reg.publish(tiny_model(seed)[1], tiny_metadata(**overrides)).version


def tamper(reg_path: Path, version: str) -> None:
    artifact = reg_path / "versions" / version / "model.onnx"
    artifact.write_bytes(artifact.read_bytes() + b"\0")


@pytest.fixture
def reg_path(tmp_path: Path) -> Path:
    path = tmp_path / "registry"
    reg = open_registry(str(path))
    reg.promote(publish(reg, 0, parity_probe=parity_probe(0)))
    return path


def load(reg_path: Path, **env: Any) -> ScoringService:
    settings = ScoringSettings(MODEL_URI=f"{reg_path}@production", MODEL_POLL_S=env.pop("MODEL_POLL_S", 3600),
                               DRIFT_WINDOW_S=0, **env)
    return ScoringService.load(settings)


class Records(logging.Handler):
    """Every record of the `txguard` loggers (they do not propagate to the root logger)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def caplog() -> Any:  # noqa: F811 - pytest's own does not see non-propagating loggers
    handler = Records()
    logger = logging.getLogger("txguard")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def events(caplog: Any, name: str) -> list[Any]:
    """Log records of one `event` (model_loaded, model_refused), with their extra fields."""
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def test_promote_and_rollback_swap_the_model_and_decisions_name_it(reg_path: Path, capsys: Any, caplog: Any) -> None:
    reg = open_registry(str(reg_path))
    service = load(reg_path)
    tx = enriched_transactions()[5]
    assert score(service, tx)[1]["model_version"] == "v1"
    v2 = publish(reg, 1, parity_probe=parity_probe(1))
    reg.promote(v2)
    service.follower.check()
    status, decision = score(service, tx)
    assert status == 200 and decision["model_version"] == "v2"
    assert decision["score"] == pytest.approx(ModelRuntime(tiny_model(1)[1], tiny_metadata()).predict_row(row_of(tx)))
    assert health(service)[1]["model_version"] == "v2"
    reg.rollback()
    service.follower.check()
    assert score(service, tx)[1]["model_version"] == "v1"
    loaded = [(r.model_version, getattr(r, "previous_version", None)) for r in events(caplog, "model_loaded")]
    assert loaded == [("v1", None), ("v2", "v1"), ("v1", "v2")]  # cold start, promote, rollback
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    scored = [line["model_version"] for line in lines if line.get("path") == "/score"]
    assert scored == ["v1", "v2", "v1"]


@pytest.mark.parametrize("kind", ["checksum", "features", "parity"])
def test_a_bad_version_is_refused_and_the_old_one_keeps_answering(reg_path: Path, kind: str, caplog: Any) -> None:
    reg = open_registry(str(reg_path))
    service = load(reg_path)
    if kind == "checksum":
        bad = publish(reg, 1)
        tamper(reg_path, bad)
        expected = "ChecksumMismatchError"
    elif kind == "features":
        bad = publish(reg, 1, features=["amount", "other"])
        expected = "IncompatibleModelError"
    else:  # model 1 carrying the probe of model 0: it does not reproduce the scores training recorded
        bad = publish(reg, 1, parity_probe=parity_probe(0))
        expected = "ParityCheckError"
    reg.promote(bad)
    service.follower.check()
    assert service.state.version == "v1"
    status, body = health(service)
    assert status == 200 and body["model_version"] == "v1" and expected in body["refused"][bad]
    assert score(service, enriched_transactions()[0])[1]["model_version"] == "v1"
    refusals = events(caplog, "model_refused")
    assert len(refusals) == 1 and refusals[0].levelname == "ERROR" and refusals[0].refused_version == bad
    service.follower.check()  # the alias has not moved: no second download, no second line
    assert len(events(caplog, "model_refused")) == 1
    good = publish(reg, 1, parity_probe=parity_probe(1))
    reg.promote(good)
    service.follower.check()
    assert service.state.version == good and health(service)[1]["refused"] == {}


def test_requests_never_fail_while_the_alias_moves_under_them(reg_path: Path) -> None:
    reg = open_registry(str(reg_path))
    v2 = publish(reg, 1)
    service = load(reg_path, MODEL_POLL_S=0.02)
    txs = enriched_transactions()[:40]
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            for tx in txs:
                status, body = score(service, tx)
                seen.append((status, body.get("model_version")))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for target in (v2, "v1", v2):
            reg.promote(target)
            deadline = time.monotonic() + 10
            while service.state.version != target and time.monotonic() < deadline:
                time.sleep(0.01)
            assert service.state.version == target
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        service.close()
    assert {status for status, _ in seen} == {200}
    assert {version for _, version in seen} == {"v1", v2}


class FlakyStore(LocalBlobStore):
    """A local store whose first `failures` reads fail like an unreachable Cloud Storage."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures
        self.reads = 0

    def read(self, key: str) -> Any:
        self.reads += 1
        if self.failures > 0:
            self.failures -= 1
            raise RegistryUnavailableError("GET ... failed: [Errno 111] Connection refused")
        return super().read(key)


def test_cold_start_retries_an_unreachable_registry_with_backoff(reg_path: Path, monkeypatch: Any) -> None:
    store = FlakyStore(reg_path, failures=2)
    monkeypatch.setattr(loading, "serving_registry", lambda _location: Registry(store))
    waits: list[float] = []
    monkeypatch.setattr("txguard.scoring.service.time.sleep", waits.append)
    service = load(reg_path)
    assert service.state.version == "v1" and waits == [0.5, 1.0]


def test_an_instance_without_a_model_keeps_trying_and_recovers(tmp_path: Path, monkeypatch: Any, caplog: Any) -> None:
    path = tmp_path / "registry"
    store = FlakyStore(path, failures=10**6)
    monkeypatch.setattr(loading, "serving_registry", lambda _location: Registry(store))
    monkeypatch.setattr("txguard.scoring.service.time.sleep", lambda _s: None)
    # Trained and simulated before the first request starts the follower thread (its first retry
    # comes 1 s later): the rounds counted below are this test's own.
    tiny_model(0), enriched_transactions()
    service = load(path, MODEL_LOAD_ATTEMPTS=2)
    assert service.state.champion is None and health(service)[0] == 503
    assert score(service, enriched_transactions()[0])[0] == 503
    waits = [service.follower.check() for _ in range(7)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]  # backoff, capped: it never gives up
    store.failures = 0  # the registry is reachable again but still empty
    assert service.follower.check() == 30.0 and "ModelNotFoundError" in health(service)[1]["reason"]
    reg = open_registry(str(path))
    reg.promote(publish(reg, 0))
    assert service.follower.check() == service.settings.model_poll_s
    assert health(service)[0] == 200 and score(service, enriched_transactions()[0])[1]["model_version"] == "v1"
    retries = [r for r in caplog.records if r.getMessage().startswith("model still not loaded")]
    assert len(retries) == 8 and all(r.levelname == "CRITICAL" for r in retries)
    assert [r.model_version for r in events(caplog, "model_loaded")] == ["v1"]


def test_a_rewritten_alias_with_the_same_version_loads_nothing(reg_path: Path, monkeypatch: Any) -> None:
    service = load(reg_path)
    reg = open_registry(str(reg_path))
    record, generation = reg.read_alias("production")
    reg.set_alias("production", AliasRecord(version="v1", history=["v1"], updated_at=record.updated_at), generation)
    monkeypatch.setattr("txguard.scoring.follower.load_scorer", lambda *_a: pytest.fail("reloaded v1"))
    before = service.state.champion
    service.follower.check()
    assert service.state.champion is before
