"""Embedded counterparty store: cells, markers and label ledgers in the SQLite file of the history.

Same semantics as the Bigtable store (protocol.py): a transaction's increments and its marker are
written in one SQLite transaction; a label's ledger update and its increments too, so a label is
applied exactly once without a marker. One writer at a time (`BEGIN IMMEDIATE`): ample for the
embedded stack, never a production layout (docs/counterparty.md).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from txguard.contract.models import LabelEvent, Transaction
from txguard.enrichment.counterparty.protocol import by_row, transaction_marker
from txguard.enrichment.sqlite_db import SqliteDatabase
from txguard.features.counterparty import (
    EntityKeys,
    Increment,
    Snapshot,
    day_of,
    read_days,
    transaction_increments,
)
from txguard.features.label_ledger import LabelOutcome, transition

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cp_cells (
    entity TEXT NOT NULL,
    day INTEGER NOT NULL,
    col TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (entity, day, col)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cp_markers (
    marker TEXT PRIMARY KEY,
    day INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS label_ledger (
    transaction_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
"""


class SqliteCounterpartyStore:
    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000) -> None:
        self.db = SqliteDatabase(path, _SCHEMA, busy_timeout_ms)
        self.path = self.db.path

    def snapshot(self, tx: Transaction) -> Snapshot:
        keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
        days = read_days(tx.timestamp.timestamp())
        wanted = [k for k in (keys.counterparty, keys.device, keys.wallet) if k]
        rows = self.db.read(
            f"SELECT entity, day, col, value FROM cp_cells WHERE entity IN ({','.join('?' * len(wanted))})"
            " AND day BETWEEN ? AND ?", (*wanted, days.start, days.stop - 1))
        views: dict[str, dict[int, dict[str, int]]] = {k: {} for k in wanted}
        for entity, day, col, value in rows:
            views[entity].setdefault(day, {})[col] = value
        return Snapshot(views[keys.counterparty], views[keys.device] if keys.device else {}, views[keys.wallet])

    def apply_transaction(self, tx: Transaction, new_for_cp: bool, new_for_device: bool) -> bool:
        increments = transaction_increments(tx, new_for_cp, new_for_device)
        with self.db.transaction() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO cp_markers (marker, day) VALUES (?, ?)",
                               (transaction_marker(tx.transaction_id), day_of(tx.timestamp.timestamp())))
            if cur.rowcount == 0:
                return False
            _add(conn, increments)
        return True

    def settle_transaction(self, tx: Transaction) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM cp_markers WHERE marker = ?", (transaction_marker(tx.transaction_id),))

    def apply_label(self, label: LabelEvent) -> LabelOutcome:
        with self.db.transaction() as conn:
            row = conn.execute("SELECT doc FROM label_ledger WHERE transaction_id = ?",
                               (label.transaction_id,)).fetchone()
            ledger, outcome = transition(json.loads(row[0]) if row else None, label)
            if not outcome.duplicate:
                conn.execute("INSERT INTO label_ledger (transaction_id, doc) VALUES (?, ?) "
                             "ON CONFLICT (transaction_id) DO UPDATE SET doc = excluded.doc",
                             (label.transaction_id, json.dumps(ledger, separators=(",", ":"))))
                _add(conn, outcome.increments)
        return outcome

    def knows_label(self, label: LabelEvent) -> bool:
        rows = self.db.read("SELECT doc FROM label_ledger WHERE transaction_id = ?", (label.transaction_id,))
        return bool(rows) and label.label_id in json.loads(rows[0][0])["labels"]

    def pending_markers(self) -> int:
        """Markers not settled yet (tests and inspection: 0 once every delivery completed)."""
        return int(self.db.read("SELECT COUNT(*) FROM cp_markers")[0][0])

    def purge(self, before_day: int) -> int:
        """Delete cells no feature reads any more and orphaned markers (Bigtable's GC rules)."""
        with self.db.transaction() as conn:
            n = conn.execute("DELETE FROM cp_cells WHERE day < ?", (before_day,)).rowcount
            n += conn.execute("DELETE FROM cp_markers WHERE day < ?", (before_day,)).rowcount
        return n

    def close(self) -> None:
        self.db.close()


def _add(conn: sqlite3.Connection, increments: tuple[Increment, ...] | list[Increment]) -> None:
    for (entity, day), cells in by_row(increments).items():
        conn.executemany(
            "INSERT INTO cp_cells (entity, day, col, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (entity, day, col) DO UPDATE SET value = value + excluded.value",
            [(entity, day, col, value) for col, value in cells.items()],
        )
