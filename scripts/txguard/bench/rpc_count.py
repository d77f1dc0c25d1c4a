"""The gRPC calls a function process makes, by method: the store operations per delivery of `bench e2e`.

Every Firestore, Bigtable and Pub/Sub call of the enrichment function is one gRPC call of its
client library, so counting the calls the process starts, by method
(`/google.firestore.v1.Firestore/Commit`, `/google.bigtable.v2.Bigtable/ReadRows`, ...), measures
what the code does, retries and aborted transactions included, rather than what it was meant to
do. `install` wraps the start of every gRPC call (synchronous and asyncio channels) in the process;
a daemon thread writes the counts to `<dir>/rpc-<target>-<pid>.json` twice a second (a fork
restarts it with the counts at zero: gunicorn's worker is a fork of its master). `bench e2e`
reads them before and after each stage and divides by the stage's decided messages.

Only `bench e2e` turns it on, for the enrichment function alone, by putting `rpc_hook/` (a
`sitecustomize` that calls `install` when `TXGUARD_RPC_COUNT_DIR` is set) on its PYTHONPATH:
production never imports this module.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DIR_ENV = "TXGUARD_RPC_COUNT_DIR"
HOOK = Path(__file__).resolve().parent / "rpc_hook"
SERVICES = {"google.firestore.v1.Firestore": "firestore", "google.bigtable.v2.Bigtable": "bigtable",
            "google.pubsub.v1.Publisher": "pubsub"}

_counts: Counter[str] = Counter()
_lock = threading.Lock()


def _count(method: Any) -> None:
    name = method.decode() if isinstance(method, bytes) else str(method)
    with _lock:
        _counts[name] += 1


def _wrap(cls: type, attr: str) -> None:
    original = getattr(cls, attr, None)
    if original is None or getattr(original, "_txguard_counted", False):
        return

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _count(getattr(self, "_method", "?"))
        return original(self, *args, **kwargs)

    counted._txguard_counted = True  # type: ignore[attr-defined]
    setattr(cls, attr, counted)


def _patch() -> None:
    import grpc._channel as sync
    from grpc.aio import _channel as aio

    for name in ("_UnaryUnaryMultiCallable", "_UnaryStreamMultiCallable", "_SingleThreadedUnaryStreamMultiCallable",
                 "_StreamUnaryMultiCallable", "_StreamStreamMultiCallable"):
        cls = getattr(sync, name, None)
        if cls is not None:
            for attr in ("__call__", "with_call", "future"):
                _wrap(cls, attr)
    for name in ("UnaryUnaryMultiCallable", "UnaryStreamMultiCallable", "StreamUnaryMultiCallable",
                 "StreamStreamMultiCallable"):
        cls = getattr(aio, name, None)
        if cls is not None:
            _wrap(cls, "__call__")


def _target() -> str:
    argv = sys.argv
    return argv[argv.index("--target") + 1] if "--target" in argv[:-1] else "process"


def _writer(directory: Path, interval_s: float) -> None:
    path = directory / f"rpc-{_target()}-{os.getpid()}.json"

    def loop() -> None:
        event = threading.Event()
        while not event.wait(interval_s):
            try:
                write(path)
            except OSError:  # the folder removed (the stack's work folder after a run): stop counting
                return

    threading.Thread(target=loop, name="txguard-rpc-count", daemon=True).start()


def write(path: Path) -> None:
    with _lock:
        data = dict(_counts)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def install(directory: str | Path, interval_s: float = 0.5) -> None:
    """Count this process's gRPC calls from now on, written under `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _patch()

    def after_fork() -> None:
        global _lock
        _lock = threading.Lock()
        _counts.clear()
        _writer(directory, interval_s)

    os.register_at_fork(after_in_child=after_fork)
    _writer(directory, interval_s)


def hook_env(directory: Path, pythonpath: str) -> dict[str, str]:
    """The environment that turns the count on in a function process (`pythonpath`: what it has otherwise)."""
    return {DIR_ENV: str(directory), "PYTHONPATH": os.pathsep.join(p for p in (str(HOOK), pythonpath) if p)}


def read(directory: Path, target: str = "enrich") -> Counter[str]:
    """The counts so far of every process of `target` under `directory`."""
    total: Counter[str] = Counter()
    for path in sorted(directory.glob(f"rpc-{target}-*.json")):
        try:
            total.update(json.loads(path.read_text()))
        except (OSError, ValueError):  # being replaced: the next read has it
            continue
    return total


def per_message(before: Mapping[str, int], after: Mapping[str, int], decided: int | None) -> dict[str, Any]:
    """Calls per decided message between two reads: by service (firestore, bigtable, pubsub) with each
    method's share, e.g. {"firestore": {"total": 7.0, "Commit": 2.0, ...}, ...}."""
    if not decided:
        return {}
    out: dict[str, dict[str, float]] = {}
    for method, n in after.items():
        delta = n - before.get(method, 0)
        if delta <= 0:
            continue
        service, _, rpc = method.lstrip("/").rpartition("/")
        part = out.setdefault(SERVICES.get(service, service), {"total": 0.0})
        part[rpc] = round(part.get(rpc, 0.0) + delta / decided, 2)
        part["total"] = round(part["total"] + delta / decided, 2)
    return out
