"""Embedded history store: one SQLite file, WAL mode, one connection per thread.

Every enrichment runs in `BEGIN IMMEDIATE`: the write lock is taken before the wallet is read, so
two deliveries of one wallet serialise instead of both reading the same state (a deferred
transaction would let both read and then fail, or lose an update). `busy_timeout` makes a waiting
writer queue for the lock rather than fail at once; when it still cannot get the lock the error
is `StoreUnavailableError` (retryable: Pub/Sub redelivers).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from txguard.contract.errors import StoreUnavailableError
from txguard.contract.models import DECISION_ADAPTER, Decision, EnrichedTransaction, Transaction
from txguard.enrichment.history.protocol import (
    Enrichment,
    enriched_from_record,
    fresh,
    processed_record,
    reuse,
    step,
)
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
    decision TEXT,
    expires_at TEXT NOT NULL,
    late INTEGER NOT NULL DEFAULT 0,
    tx TEXT
);
CREATE INDEX IF NOT EXISTS processed_expires_at ON processed (expires_at);
"""
# Files written before a column existed get it added (the late flag; the transaction itself).
_MIGRATIONS = {
    "late": "ALTER TABLE processed ADD COLUMN late INTEGER NOT NULL DEFAULT 0",
    "tx": "ALTER TABLE processed ADD COLUMN tx TEXT",
}


class SqliteHistoryStore:
    def __init__(self, path: str | Path, ttl_days: int = 7, busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        self.ttl_days = ttl_days
        self.busy_timeout_ms = busy_timeout_ms
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            conn = self._conn()
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(processed)")}
            for column, ddl in _MIGRATIONS.items():
                if column not in columns:
                    conn.execute(ddl)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"sqlite: cannot create the schema in {self.path}: {exc}") from exc
        self.purge_expired()  # at cold start: SQLite has no TTL policy

    # connections -------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=self.busy_timeout_ms / 1000)
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"sqlite: cannot open {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"sqlite: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreUnavailableError(f"sqlite: {exc}") from exc
            raise

    # HistoryStore ------------------------------------------------------------------------------
    def enrich_once(self, tx: Transaction) -> Enrichment:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT fingerprint, features, decision, late FROM processed WHERE transaction_id = ?",
                (tx.transaction_id,),
            ).fetchone()
            if row is not None:
                return reuse(tx, {"fingerprint": row[0], "features": json.loads(row[1]), "decision": row[2],
                                  "late": bool(row[3])})
            found = conn.execute("SELECT state FROM wallets WHERE wallet_id = ?", (tx.wallet_id,)).fetchone()
            applied = step(tx, json.loads(found[0]) if found else None)
            record = processed_record(tx, applied, self.ttl_days)
            conn.execute(
                "INSERT INTO wallets (wallet_id, state) VALUES (?, ?) "
                "ON CONFLICT (wallet_id) DO UPDATE SET state = excluded.state",
                (tx.wallet_id, json.dumps(applied.state, separators=(",", ":"))),
            )
            conn.execute(
                "INSERT INTO processed (transaction_id, wallet_id, fingerprint, features, decision, expires_at, late, tx)"
                " VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
                (tx.transaction_id, tx.wallet_id, record["fingerprint"], json.dumps(record["features"]),
                 record["expires_at"].isoformat(), int(applied.late), json.dumps(record["transaction"])),
            )
        return fresh(tx, applied)

    def record_decision(self, transaction_id: str, decision: Decision) -> Decision:
        with self._transaction() as conn:
            conn.execute("UPDATE processed SET decision = ? WHERE transaction_id = ? AND decision IS NULL",
                         (decision.model_dump_json(), transaction_id))
            row = conn.execute("SELECT decision FROM processed WHERE transaction_id = ?",
                               (transaction_id,)).fetchone()
        return DECISION_ADAPTER.validate_json(row[0]) if row and row[0] else decision

    def wallet_state(self, wallet_id: str) -> WalletState:
        row = self._conn().execute("SELECT state FROM wallets WHERE wallet_id = ?", (wallet_id,)).fetchone()
        return WalletState.from_dict(json.loads(row[0]) if row else None)

    def processed(self, transaction_id: str) -> dict[str, Any] | None:
        try:
            row = self._conn().execute(
                "SELECT features, decision, expires_at, late, tx FROM processed WHERE transaction_id = ?",
                (transaction_id,),
            ).fetchone()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"sqlite: {exc}") from exc
        if row is None:
            return None
        return {"features": json.loads(row[0]), "decision": json.loads(row[1]) if row[1] else None,
                "expires_at": row[2], "late": bool(row[3]), "transaction": json.loads(row[4]) if row[4] else None}

    def enriched(self, transaction_id: str) -> EnrichedTransaction | None:
        return enriched_from_record(self.processed(transaction_id))

    def purge_expired(self, now: datetime | None = None) -> int:
        """Delete processed records past their TTL (Firestore does this with a TTL policy)."""
        with self._transaction() as conn:
            cur = conn.execute("DELETE FROM processed WHERE expires_at < ?",
                               ((now or datetime.now(UTC)).isoformat(),))
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
