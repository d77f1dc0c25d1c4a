"""Promotion without a redeploy, against the storage emulator: gunicorn workers serving a gs:// registry
(fake-gcs-server) follow the production alias under load, refuse a bad version, roll back, and
retry an unreachable registry at cold start and afterwards. Real processes, loopback only."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.flaky_proxy import FlakyProxy
from tests.scoring_fixtures import enriched_transactions, tiny_metadata, tiny_model
from txguard.bench.procs import Server, functions_framework_argv, running
from txguard.contract import names
from txguard.local.emulators import Emulator, free_port
from txguard.registry import open_registry

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "functions" / "score" / "main.py"
BOUND_S = 30.0  # promote / rollback must reach every worker within this
WORKERS = 2


@pytest.fixture
def gcs_location(gcs_env: Emulator) -> str:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket = f"follow-{uuid.uuid4().hex[:10]}"
    storage.Client(project="txguard-test", credentials=AnonymousCredentials()).create_bucket(bucket)
    return f"gs://{bucket}/registry"


def _server(location: str, storage_url: str, tmp_path: Path, **env: str) -> Server:
    port = free_port()
    return Server("score", functions_framework_argv(SOURCE, names.SCORING_ENTRY_POINT, port),
                  {"MODEL_URI": f"{location}@production", "STORAGE_EMULATOR_HOST": storage_url,
                   "WORKERS": str(WORKERS), "THREADS": "2", "MODEL_POLL_S": "1", **env},
                  tmp_path / "score.log", port)


def _log(server: Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]


def _epoch(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["time"].replace("Z", "+00:00")).timestamp()


def _wait_events(server: Server, event: str, version: str, since: float, key: str = "model_version") -> dict[int, float]:
    """{worker pid: seconds after `since`} once every worker logged `event` for `version`."""
    deadline = time.monotonic() + BOUND_S + 10
    while time.monotonic() < deadline:
        seen = {line["pid"]: _epoch(line) - since for line in _log(server)
                if line.get("event") == event and line.get(key) == version and _epoch(line) >= since - 0.01}
        if len(seen) >= WORKERS:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"not every worker logged {event} {version}: {seen}")


class Load:
    """Client threads posting /score until stopped; every answer kept with the time it arrived."""

    def __init__(self, port: int, clients: int = 3) -> None:
        self.port, self.stop = port, threading.Event()
        self.answers: list[tuple[float, int, str | None]] = []
        self.bodies = [tx.model_dump_json().encode() for tx in enriched_transactions()[:100]]
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(clients)]

    def _run(self, k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = k
        while not self.stop.is_set():
            body = self.bodies[i % len(self.bodies)]
            i += 1
            try:
                conn.request("POST", "/score", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = json.loads(resp.read())
                self.answers.append((time.time(), resp.status, data.get("model_version")))
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.answers.append((time.time(), 0, None))
            time.sleep(0.005)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def versions_after(self, t: float) -> set[str | None]:
        return {v for at, _, v in self.answers if at > t}


def _health(port: int) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.gcs
def test_workers_follow_promote_refusal_and_rollback_without_a_failed_request(
    gcs_location: str, gcs_env: Emulator, tmp_path: Path
) -> None:
    reg = open_registry(gcs_location)
    v1 = reg.publish(tiny_model(0)[1], tiny_metadata()).version
    reg.promote(v1)
    v2 = reg.publish(tiny_model(1)[1], tiny_metadata()).version
    bad = reg.publish(tiny_model(1)[1], tiny_metadata()).version
    store: Any = reg.store
    blob = store.bucket.blob(store._name(f"versions/{bad}/model.onnx"))
    blob.upload_from_string(tiny_model(1)[1] + b"\0")  # its SHA-256 no longer matches the metadata
    server = _server(gcs_location, gcs_env.env_value, tmp_path)
    with running(server):
        server.wait("GET", "/health", timeout=90)
        with Load(server.port) as load:
            time.sleep(1.0)
            t_promote = time.time()
            reg.promote(v2)
            switched = _wait_events(server, "model_loaded", v2, t_promote)
            time.sleep(1.0)
            assert load.versions_after(t_promote + max(switched.values()) + 0.2) == {v2}

            t_bad = time.time()
            reg.promote(bad)
            refused = _wait_events(server, "model_refused", bad, t_bad, key="refused_version")
            time.sleep(1.5)
            status, health = _health(server.port)
            assert status == 200 and health["model_version"] == v2 and "ChecksumMismatchError" in health["refused"][bad]

            reg.rollback()  # back to v2: already answering, nothing to load
            assert reg.rollback() == v1
            t_rollback = time.time()
            rolled = _wait_events(server, "model_loaded", v1, t_rollback)
            time.sleep(1.0)
            assert load.versions_after(t_rollback + max(rolled.values()) + 0.2) == {v1}
    statuses = {status for _, status, _ in load.answers}
    assert statuses == {200}, f"failed requests: {[a for a in load.answers if a[1] != 200][:5]}"
    assert {version for _, _, version in load.answers} == {v1, v2}  # the bad version never answered
    assert len(load.answers) > 200
    for seconds in (*switched.values(), *refused.values(), *rolled.values()):
        assert 0 <= seconds < BOUND_S
    # The figures docs/lifecycle.md quotes (pytest -s shows them).
    print(json.dumps({"promote_s": sorted(round(v, 2) for v in switched.values()),
                      "refuse_s": sorted(round(v, 2) for v in refused.values()),
                      "rollback_s": sorted(round(v, 2) for v in rolled.values()),
                      "requests": len(load.answers), "failed": sum(1 for a in load.answers if a[1] != 200)}))


@pytest.mark.gcs
def test_an_unreachable_registry_is_retried_at_cold_start_and_afterwards(
    gcs_location: str, gcs_emulator: Emulator, gcs_env: Emulator, tmp_path: Path
) -> None:
    reg = open_registry(gcs_location)
    reg.promote(reg.publish(tiny_model(0)[1], tiny_metadata()).version)
    proxy = FlakyProxy(gcs_emulator.port)
    proxy.up = False
    server = _server(gcs_location, proxy.url, tmp_path, MODEL_LOAD_ATTEMPTS="3")
    try:
        with running(server):
            server.wait("GET", "/health", ok=(503,), timeout=90)
            status, health = _health(server.port)
            assert status == 503 and "RegistryUnavailableError" in health["reason"]
            lines = _log(server)
            attempts = [line for line in lines if line["message"].startswith("model load attempt")]
            assert [line["message"].split(":")[0] for line in attempts] == ["model load attempt 1 failed",
                                                                           "model load attempt 2 failed"]
            assert any(line["severity"] == "CRITICAL" and line.get("retrying") for line in lines)
            time.sleep(2.0)  # the workers keep trying in the background meanwhile
            refused_before = proxy.refused
            assert refused_before > 3
            t_up = time.time()
            proxy.up = True
            loaded = _wait_events(server, "model_loaded", "v1", t_up)
            assert max(loaded.values()) < RETRY_BOUND_S
            status, health = _health(server.port)
            assert status == 200 and health["model_version"] == "v1"
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("POST", "/score", body=enriched_transactions()[0].model_dump_json().encode(),
                         headers={"Content-Type": "application/json"})
            assert conn.getresponse().status == 200
    finally:
        proxy.close()


RETRY_BOUND_S = 10.0  # backoff 1, 2, 4 s...: within ~8 s of the registry coming back after ~3 s down
