"""Embedded transaction index: the records in the SQLite file of the history (`SqliteDatabase`).

The same 33-byte records as Bigtable under the same transaction ids; `purge` drops what Bigtable's
garbage collection would (older than TRANSACTION_INDEX_RETENTION_DAYS by transaction time).
"""

from __future__ import annotations

from pathlib import Path

from txguard.contract import names
from txguard.contract.models import Transaction
from txguard.enrichment.sqlite_db import SqliteDatabase
from txguard.enrichment.transaction_index.protocol import IndexedTransaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transaction_index (
    transaction_id TEXT PRIMARY KEY,
    record BLOB NOT NULL,
    ts_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS transaction_index_ts ON transaction_index (ts_ms);
"""
DAY_MS = 86_400_000


class SqliteTransactionIndex:
    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000) -> None:
        self.db = SqliteDatabase(path, _SCHEMA, busy_timeout_ms)
        self.path = self.db.path

    def record(self, tx: Transaction) -> None:
        entry = IndexedTransaction.of(tx)
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO transaction_index (transaction_id, record, ts_ms) VALUES (?, ?, ?)",
                         (entry.transaction_id, entry.encode(), entry.ts_ms))

    def lookup(self, transaction_id: str) -> IndexedTransaction | None:
        rows = self.db.read("SELECT record FROM transaction_index WHERE transaction_id = ?", (transaction_id,))
        return IndexedTransaction.decode(transaction_id, bytes(rows[0][0])) if rows else None

    def purge(self, now_ms: int, retention_days: int = names.TRANSACTION_INDEX_RETENTION_DAYS) -> int:
        """Delete records of transactions older than the retention (Bigtable's GC rule on the family)."""
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM transaction_index WHERE ts_ms < ?",
                                (now_ms - retention_days * DAY_MS,)).rowcount

    def close(self) -> None:
        self.db.close()
