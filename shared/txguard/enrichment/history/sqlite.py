"""Embedded history store: wallets and processed records in one SQLite file (`SqliteDatabase`).

Every enrichment runs in `BEGIN IMMEDIATE`, so two deliveries of one wallet serialise instead of
both reading the same state; the processed record is written in the same transaction as the
wallet state (see `protocol` for the idempotency argument and the counterparty lease).
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from txguard.contract.models import (
    DECISION_ADAPTER,
    CounterpartyFeatures,
    Decision,
    EnrichedTransaction,
    Transaction,
)
from txguard.enrichment.history.record import (
    DEFAULT_LEASE_S,
    CounterpartySource,
    Enrichment,
    claim,
    counterparty_of,
    enriched_from_record,
    fresh,
    processed_record,
    reuse,
    step,
    took_over,
)
from txguard.enrichment.sqlite_db import SqliteDatabase
from txguard.features.wallet import WalletState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS wallets (
    wallet_id TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS processed (
    transaction_id TEXT PRIMARY KEY,
    wallet_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    features TEXT NOT NULL,
    counterparty TEXT,
    decision TEXT,
    expires_at TEXT NOT NULL,
    late INTEGER NOT NULL DEFAULT 0,
    tx TEXT,
    entities TEXT,
    event_time REAL
);
CREATE INDEX IF NOT EXISTS processed_expires_at ON processed (expires_at);
"""


class SqliteHistoryStore:
    def __init__(self, path: str | Path, ttl_days: int = 7, busy_timeout_ms: int = 10_000,
                 lease_s: float = DEFAULT_LEASE_S) -> None:
        self.db = SqliteDatabase(path, _SCHEMA, busy_timeout_ms)
        self.path = self.db.path
        self.ttl_days = ttl_days
        self.lease_s = lease_s
        columns = {row[1] for row in self.db.read("PRAGMA table_info(processed)")}
        with self.db.transaction() as conn:  # a file written before these columns existed
            if "counterparty" not in columns:
                conn.execute("ALTER TABLE processed ADD COLUMN counterparty TEXT")
            if "late" not in columns:
                conn.execute("ALTER TABLE processed ADD COLUMN late INTEGER NOT NULL DEFAULT 0")
            if "tx" not in columns:
                conn.execute("ALTER TABLE processed ADD COLUMN tx TEXT")
            if "entities" not in columns:
                conn.execute("ALTER TABLE processed ADD COLUMN entities TEXT")
                conn.execute("ALTER TABLE processed ADD COLUMN event_time REAL")
            conn.execute("CREATE INDEX IF NOT EXISTS processed_event_time ON processed (event_time)")
        self.purge_expired()  # at cold start: SQLite has no TTL policy

    # HistoryStore ------------------------------------------------------------------------------
    def enrich_once(self, tx: Transaction, counterparty: CounterpartySource) -> Enrichment:
        # Awaited before the write lock: the snapshot may write read marks to this same file
        # (COUNTERPARTY_STORE=sqlite), and a local file has no round trip to overlap. Its error
        # counts only for a first delivery (a duplicate does not use it), as in the network stores.
        features: CounterpartyFeatures | None = None
        failed: Exception | None = None
        try:
            features = counterparty_of(counterparty)
        except Exception as exc:  # raised below if this is a first delivery
            failed = exc
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT fingerprint, features, decision, counterparty, late FROM processed WHERE transaction_id = ?",
                (tx.transaction_id,),
            ).fetchone()
            if row is not None:
                record = {"fingerprint": row[0], "features": json.loads(row[1]), "decision": row[2],
                          "counterparty": json.loads(row[3]) if row[3] else None, "late": bool(row[4])}
                enrichment = reuse(tx, record)  # checks the fingerprint before anything is claimed
                renewed = claim(record, self.lease_s)
                if renewed is None:
                    return enrichment
                conn.execute("UPDATE processed SET counterparty = ? WHERE transaction_id = ?",
                             (json.dumps(renewed), tx.transaction_id))
                return took_over(enrichment)
            if failed is not None:
                raise failed
            assert features is not None
            found = conn.execute("SELECT state FROM wallets WHERE wallet_id = ?", (tx.wallet_id,)).fetchone()
            done = step(tx, json.loads(found[0]) if found else None)
            record = processed_record(tx, done, features, self.ttl_days, self.lease_s)
            conn.execute(
                "INSERT INTO wallets (wallet_id, state) VALUES (?, ?) "
                "ON CONFLICT (wallet_id) DO UPDATE SET state = excluded.state",
                (tx.wallet_id, json.dumps(done.state, separators=(",", ":"))),
            )
            conn.execute(
                "INSERT INTO processed (transaction_id, wallet_id, fingerprint, features, counterparty, decision,"
                " expires_at, late, tx, entities, event_time) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
                (tx.transaction_id, tx.wallet_id, record["fingerprint"], json.dumps(record["features"]),
                 json.dumps(record["counterparty"]), record["expires_at"].isoformat(), int(done.late),
                 json.dumps(record["transaction"]), json.dumps(record["entities"]), record["event_time"]),
            )
        return fresh(tx, done, features)

    def record_decision(self, transaction_id: str, decision: Decision, version: Any = None) -> Decision:
        del version  # one local transaction either way: no round trip to save
        with self.db.transaction() as conn:
            row = conn.execute("SELECT decision FROM processed WHERE transaction_id = ?",
                               (transaction_id,)).fetchone()
            if row is not None and row[0] is None:
                conn.execute("UPDATE processed SET decision = ? WHERE transaction_id = ?",
                             (decision.model_dump_json(), transaction_id))
                _patch_counterparty(conn, transaction_id, applied=True)
                return decision
        return DECISION_ADAPTER.validate_json(row[0]) if row and row[0] else decision

    def counterparty_applied(self, transaction_id: str) -> None:
        with self.db.transaction() as conn:
            _patch_counterparty(conn, transaction_id, applied=True)

    def wallet_state(self, wallet_id: str) -> WalletState:
        row = self.db.read("SELECT state FROM wallets WHERE wallet_id = ?", (wallet_id,))
        return WalletState.from_dict(json.loads(row[0][0]) if row else None)

    _COLUMNS = "features, decision, expires_at, counterparty, late, tx, entities, event_time, transaction_id"

    def processed(self, transaction_id: str) -> dict[str, Any] | None:
        rows = self.db.read(f"SELECT {self._COLUMNS} FROM processed WHERE transaction_id = ?", (transaction_id,))
        return _record(rows[0]) if rows else None

    def processed_at(self, entity: str, start: float, end: float, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self.db.read(
            f"SELECT {self._COLUMNS} FROM processed WHERE event_time >= ? AND event_time < ? AND EXISTS "
            "(SELECT 1 FROM json_each(processed.entities) WHERE json_each.value = ?) ORDER BY event_time LIMIT ?",
            (start, end, entity, limit))
        return [_record(row) for row in rows]

    def enriched(self, transaction_id: str) -> EnrichedTransaction | None:
        return enriched_from_record(self.processed(transaction_id))

    def purge_expired(self, now: datetime | None = None) -> int:
        """Delete processed records past their TTL (Firestore does this with a TTL policy)."""
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM processed WHERE expires_at < ?",
                               ((now or datetime.now(UTC)).isoformat(),))
            return cur.rowcount

    def release_counterparty(self, transaction_id: str) -> None:
        """Make a held counterparty lease expired, so the next delivery takes it at once."""
        with self.db.transaction() as conn:
            _patch_counterparty(conn, transaction_id, lease_until=time.time() - 1)

    def close(self) -> None:
        self.db.close()


def _record(row: tuple) -> dict[str, Any]:
    return {"features": json.loads(row[0]), "decision": json.loads(row[1]) if row[1] else None,
            "expires_at": row[2], "counterparty": json.loads(row[3]) if row[3] else None, "late": bool(row[4]),
            "transaction": json.loads(row[5]) if row[5] else None,
            "entities": json.loads(row[6]) if row[6] else None, "event_time": row[7], "transaction_id": row[8]}


def _patch_counterparty(conn: sqlite3.Connection, transaction_id: str, **changes: object) -> None:
    """Set keys of a processed record's counterparty part (a record without one is left alone)."""
    row = conn.execute("SELECT counterparty FROM processed WHERE transaction_id = ?", (transaction_id,)).fetchone()
    if row and row[0]:
        conn.execute("UPDATE processed SET counterparty = ? WHERE transaction_id = ?",
                     (json.dumps({**json.loads(row[0]), **changes}), transaction_id))
