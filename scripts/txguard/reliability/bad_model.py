"""Broken registry versions, and what a fresh and a running scoring function make of them.

Two versions are published next to the production one (which is left alone): one whose artifact
was altered after publishing (its SHA-256 no longer matches the metadata) and one whose artifact
is gone. A *fresh* scoring function pointed at either must refuse to serve: 503 on /health with
the reason, and one CRITICAL log line. The *running* function (loaded at cold start, never
reloaded) must keep answering 200 with its production version.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from txguard.registry import PRODUCTION, Registry, open_registry

BROKEN_KINDS = ("checksum_mismatch", "missing_artifact")


def publish_broken(location: str, kind: str) -> str:
    """A new version with production's artifact, then broken the `kind` way; returns `vN`."""
    registry = open_registry(location)
    good = registry.load(PRODUCTION)
    meta = registry.publish(good.artifact, good.metadata)
    key = Registry._artifact_key(meta.version, meta.artifact)
    if kind == "checksum_mismatch":
        data, generation = registry.store.read(key) or (b"", None)
        tampered = data[:-1] + bytes([data[-1] ^ 0xFF])
        registry.store.replace(key, tampered, generation)
    elif kind == "missing_artifact":
        _delete(registry, key)
    else:
        raise ValueError(f"unknown broken kind {kind!r}")
    return meta.version


def _delete(registry: Registry, key: str) -> None:
    store: Any = registry.store
    if hasattr(store, "bucket"):  # GcsBlobStore
        store.bucket.blob(store._name(key)).delete()
    else:  # LocalBlobStore
        Path(store._path(key)).unlink()


def http_json(method: str, url: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = int(exc.code), exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"raw": raw[:200].decode(errors="replace")}


def critical_lines(log_path: Path) -> list[str]:
    """The CRITICAL JSON log lines of a function (the model refusal)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        if '"CRITICAL"' in line:
            try:
                out.append(str(json.loads(line).get("message", line)))
            except ValueError:
                out.append(line)
    return out


def sample_enriched_body() -> bytes:
    """One valid `/score` request body (a fresh wallet's first transaction)."""
    from datetime import UTC, datetime

    from txguard.contract.models import Transaction
    from txguard.features.timeline import enrich

    tx = Transaction.model_validate({
        "transaction_id": "reliability-probe", "wallet_id": "reliability-probe-wallet",
        "counterparty_id": "merchant-1", "amount": 42.0, "currency": "EUR", "type": "payment",
        "channel": "app", "country": "FR", "device_id": "dev-1", "timestamp": datetime.now(UTC).isoformat(),
    })
    return enrich(tx).model_dump_json().encode()
