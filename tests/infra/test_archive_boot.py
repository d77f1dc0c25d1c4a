"""Each function archive, unpacked alone, boots under functions-framework and answers.

The archive is what Cloud Run functions builds, so this is the closest local check that a deploy
will start: the process runs with .venv's interpreter (its site-packages stand in for the pinned
requirements) but PYTHONPATH and cwd are the unpacked archive, so `main` and `txguard` come from the
zip, not from the repository. Servers listen on 127.0.0.1, in their own process group, and are
killed by group; every wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pulumi_mocks import ROOT

from infra.archive import build_archive
from tests.conftest import PROJECT, require
from txguard.contract import names
from txguard.local.emulators import free_port
from txguard.local.procgroup import stop_group

BOOT_TIMEOUT_S = 90.0


def unpack(function: str, tmp_path: Path) -> Path:
    main = ROOT / "functions" / function / "main.py"
    require(main.exists(), f"{main.relative_to(ROOT)} is missing")
    archive = build_archive(function, tmp_path / "zips")
    target = tmp_path / f"{function}-unpacked"
    with zipfile.ZipFile(archive.path) as zf:
        zf.extractall(target)
    return target


def archive_env(unpacked: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env |= {"PYTHONPATH": str(unpacked), "PYTHONDONTWRITEBYTECODE": "1", **extra}
    return env


def assert_imports_from_archive(unpacked: Path, env: dict[str, str]) -> None:
    """`main` and every `txguard` module it loads come from the unpacked archive.

    The interpreter is .venv's, whose editable install could also serve `txguard` from the
    checkout: listing what was loaded catches a runtime module that reaches for tooling.
    """
    code = ("import sys, main\n"
            "for name, module in sorted(sys.modules.items()):\n"
            "    if name == 'main' or name.startswith('txguard.'):\n"
            "        print('@', name, getattr(module, '__file__', None))\n")
    probe = subprocess.run([sys.executable, "-c", code], cwd=unpacked, env=env, capture_output=True,
                           text=True, timeout=120, check=False)
    assert probe.returncode == 0, probe.stderr[-3000:]
    loaded = [line[2:].split(" ", 1) for line in probe.stdout.splitlines() if line.startswith("@ ")]
    assert any(name == "main" for name, _ in loaded), probe.stdout[-3000:]
    assert len(loaded) > 3, probe.stdout[-3000:]
    for name, path in loaded:
        assert path != "None" and Path(path).resolve().is_relative_to(unpacked.resolve()), (name, path)


@contextlib.contextmanager
def serve(unpacked: Path, target: str, env: dict[str, str]) -> Iterator[str]:
    """functions-framework on a free loopback port, as the platform starts it (target + env only)."""
    port = free_port()
    log_path = unpacked.parent / f"{target}-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", f"--target={target}", "--host=127.0.0.1",
             f"--port={port}"],
            cwd=unpacked, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{target} exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # the server answered (any status): it is up
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{target} not listening after {BOOT_TIMEOUT_S:.0f}s:\n"
                                f"{log_path.read_text()[-4000:]}")
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc, timeout=15)


def http(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def publish_tiny_model(registry_dir: Path) -> tuple[str, str]:
    """Train a small classifier on random data, export it to ONNX and promote it: (MODEL_URI, version)."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from txguard.features.wallet import FEATURE_NAMES
    from txguard.registry import PRODUCTION, open_registry
    from txguard.registry.metadata import ModelMetadata, Thresholds
    from txguard.training.onnx_export import to_onnx

    rng = np.random.default_rng(7)
    x = rng.random((300, len(FEATURE_NAMES))).astype(np.float32)
    y = (x[:, 0] + rng.random(300) * 0.5 > 0.8).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=10).fit(x, y)
    registry = open_registry(str(registry_dir))
    meta = registry.publish(to_onnx(clf, len(FEATURE_NAMES)), ModelMetadata(
        created_at=datetime.now(UTC), data_fingerprint="random-test-data", features=list(FEATURE_NAMES),
        thresholds=Thresholds(review=0.5, block=0.9)))
    registry.promote(meta.version, PRODUCTION)
    return f"{registry_dir}@{PRODUCTION}", meta.version


def enriched_transaction_json() -> bytes:
    from txguard.contract.models import Transaction
    from txguard.features.timeline import enrich

    tx = Transaction(transaction_id="tx-boot-score", wallet_id="w-boot", counterparty_id="m-boot", amount=42.5,
                     currency="EUR", type="payment", channel="app", country="FR",
                     timestamp=datetime.now(UTC))
    return enrich(tx).model_dump_json().encode()


def test_scoring_archive_boots_reports_health_and_scores(tmp_path: Path) -> None:
    unpacked = unpack("score", tmp_path)
    model_uri, version = publish_tiny_model(tmp_path / "registry")
    env = archive_env(unpacked, {
        "MODEL_URI": model_uri, "GOOGLE_CLOUD_PROJECT": PROJECT, "FUNCTION_SIGNATURE_TYPE": "http",
        "WORKERS": "1", "THREADS": "1",
    })
    assert_imports_from_archive(unpacked, env)
    with serve(unpacked, names.SCORING_ENTRY_POINT, env) as base:
        status, body = http(f"{base}/health")
        score_status, score_body = http(f"{base}/score", enriched_transaction_json(),
                                        {"Content-Type": "application/json"})
    assert status == 200, body[:2000]
    assert json.loads(body)["model_version"] == version  # the promoted version is the one loaded
    assert score_status == 200, score_body[:2000]
    decision = json.loads(score_body)
    assert decision["transaction_id"] == "tx-boot-score" and decision["model_version"] == version


def test_enrich_archive_boots_and_routes_an_invalid_push_to_invalid(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from google.cloud import pubsub_v1

    unpacked = unpack("enrich", tmp_path)
    pubsub_emulator = request.getfixturevalue("pubsub_emulator")  # only once the archive can boot
    os.environ["PUBSUB_EMULATOR_HOST"] = pubsub_emulator.host  # for the clients in this process
    try:
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        for topic in (names.DECISIONS_TOPIC, names.INVALID_TOPIC):
            with contextlib.suppress(Exception):  # AlreadyExists when another test made it
                publisher.create_topic(name=publisher.topic_path(PROJECT, topic))
        watch = subscriber.subscription_path(PROJECT, f"boot-watch-invalid-{os.getpid()}-{time.time_ns()}")
        subscriber.create_subscription(name=watch, topic=publisher.topic_path(PROJECT, names.INVALID_TOPIC))

        env = archive_env(unpacked, {
            "PUBSUB_EMULATOR_HOST": pubsub_emulator.host, "GOOGLE_CLOUD_PROJECT": PROJECT,
            "FUNCTION_SIGNATURE_TYPE": "cloudevent", "HISTORY_STORE": "sqlite",
            "SQLITE_PATH": str(tmp_path / "history.sqlite3"), "SCORING_URL": "http://127.0.0.1:9",
            "SCORING_AUTH": "none", "WORKERS": "1", "THREADS": "2",
        })
        assert_imports_from_archive(unpacked, env)
        invalid = {"transaction_id": "tx-boot-1", "amount": -3}  # fails the contract
        push_body = {
            "message": {
                "data": base64.b64encode(json.dumps(invalid).encode()).decode(),
                "messageId": "1001", "publishTime": "2025-01-01T00:00:00Z", "attributes": {},
            },
            "subscription": f"projects/{PROJECT}/subscriptions/{names.ENRICH_PUSH_SUBSCRIPTION}",
        }
        with serve(unpacked, names.ENRICH_ENTRY_POINT, env) as base:
            status, body = http(f"{base}/", json.dumps(push_body).encode(),
                                   {"Content-Type": "application/json"})
        assert 200 <= status < 300, body[:2000]  # acked: an invalid transaction is never retried

        received = []
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            resp = subscriber.pull(subscription=watch, max_messages=10, timeout=10)
            received = list(resp.received_messages)
        assert received, "nothing was published to the invalid topic"
        assert b"tx-boot-1" in received[0].message.data or any(
            "tx-boot-1" in v for v in received[0].message.attributes.values())
        subscriber.delete_subscription(subscription=watch)
    finally:
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)


def _push(payload: bytes, message_id: str) -> bytes:
    return json.dumps({
        "message": {"data": base64.b64encode(payload).decode(), "messageId": message_id,
                    "publishTime": "2025-01-01T00:00:00Z", "attributes": {}},
        "subscription": f"projects/{PROJECT}/subscriptions/{names.LABELS_PUSH_SUBSCRIPTION}",
    }).encode()


def test_label_archive_boots_applies_a_label_to_bigtable_and_parks_a_malformed_one(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """As deployed: COUNTERPARTY_STORE=bigtable (the Bigtable emulator), `invalid` on Pub/Sub (its emulator)."""
    import uuid
    from datetime import timedelta

    from google.cloud import pubsub_v1

    from txguard.contract.models import LabelEvent, Transaction
    from txguard.enrichment.counterparty.bigtable import BigtableCounterpartyStore
    from txguard.local.bigtable import drop_tables, ensure_tables

    unpacked = unpack("label", tmp_path)
    pubsub_emulator = request.getfixturevalue("pubsub_emulator")
    bigtable_emulator = request.getfixturevalue("bigtable_emulator")
    project = f"boot-label-{uuid.uuid4().hex[:8]}"  # a table of its own on the shared emulator
    hosts = {"PUBSUB_EMULATOR_HOST": pubsub_emulator.host, "BIGTABLE_EMULATOR_HOST": bigtable_emulator.host}
    saved = {k: os.environ.get(k) for k in hosts}
    os.environ.update(hosts)  # for the clients in this process
    try:
        ensure_tables(project)
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        publisher.create_topic(name=publisher.topic_path(project, names.INVALID_TOPIC))
        watch = subscriber.subscription_path(project, "boot-watch-invalid")
        subscriber.create_subscription(name=watch, topic=publisher.topic_path(project, names.INVALID_TOPIC))
        env = archive_env(unpacked, {
            **hosts, "GOOGLE_CLOUD_PROJECT": project, "FUNCTION_SIGNATURE_TYPE": "cloudevent",
            "COUNTERPARTY_STORE": "bigtable", "WORKERS": "1", "THREADS": "2",
        })
        assert_imports_from_archive(unpacked, env)
        when = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
        label = LabelEvent(label_id="tx-boot-label:cb", transaction_id="tx-boot-label", wallet_id="w-boot",
                           counterparty_id="m-boot-label", transaction_time=when, known_at=when + timedelta(days=3),
                           kind="chargeback", is_fraud=True)
        from txguard.enrichment.transaction_index.bigtable import BigtableTransactionIndex

        index = BigtableTransactionIndex(project=project)  # what enrichment recorded of the transaction
        index.record(Transaction(transaction_id="tx-boot-label", wallet_id="w-boot", counterparty_id="m-boot-label",
                                 amount=12.0, currency="EUR", type="payment", channel="app", country="FR",
                                 timestamp=when))
        index.close()
        malformed = json.dumps({"label_id": "x", "kind": "chargeback"}).encode()
        path = names.label_route("chargeback").path  # the processor feed's push subscription posts here
        with serve(unpacked, names.LABEL_ENTRY_POINT, env) as base:
            statuses = [http(f"{base}{path}", _push(body, str(n)), {"Content-Type": "application/json"})[0]
                        for n, body in enumerate((label.model_dump_json().encode(), malformed,
                                                  label.model_dump_json().encode()))]
        assert all(200 <= s < 300 for s in statuses), statuses  # applied, parked, duplicate: all acked

        store = BigtableCounterpartyStore(project=project)
        try:
            probe = Transaction(transaction_id="probe", wallet_id="w-other", counterparty_id="m-boot-label",
                                amount=1.0, currency="EUR", type="payment", channel="app", country="FR",
                                timestamp=when + timedelta(days=5))
            frauds = sum(cells.get("df", 0) for cells in store.snapshot(probe).counterparty.values())
        finally:
            store.close()
        assert frauds == 1  # applied once although delivered twice
        received = []
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            received = list(subscriber.pull(subscription=watch, max_messages=10, timeout=10).received_messages)
        assert [m.message.data for m in received] == [malformed]
        assert received[0].message.attributes[names.ATTR_REASON]
        drop_tables(project)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
