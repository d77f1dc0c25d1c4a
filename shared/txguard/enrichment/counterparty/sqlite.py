"""Embedded counterparty store: cells, markers and label ledgers in the SQLite file of the history.

Same semantics as the Bigtable store (protocol.py): a transaction's increments and its marker are
written in one SQLite transaction; a label's ledger update and its increments too, so a label is
applied exactly once without a marker. One writer at a time (`BEGIN IMMEDIATE`): ample for the
embedded stack, never a production layout (docs/counterparty.md). Read marks (lateness.py): the
latest 5-minute slot read per (entity, day), recorded in the same transaction as the read and
compared in the same transaction as the update, so here the comparison is exact.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from txguard.contract.models import LabelEvent, Transaction
from txguard.enrichment.counterparty.lateness import Update, find_late
from txguard.enrichment.counterparty.protocol import Applied, LabelApplied, by_row, transaction_marker
from txguard.enrichment.sqlite_db import SqliteDatabase
from txguard.features.counterparty import (
    WINDOW_DAYS,
    EntityKeys,
    Increment,
    Snapshot,
    View,
    day_of,
    read_days,
    slot_start,
    transaction_increments,
)
from txguard.features.label_ledger import transition

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
CREATE TABLE IF NOT EXISTS cp_reads (
    entity TEXT NOT NULL,
    day INTEGER NOT NULL,
    slot REAL NOT NULL,
    PRIMARY KEY (entity, day)
) WITHOUT ROWID;
"""


class SqliteCounterpartyStore:
    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000) -> None:
        self.db = SqliteDatabase(path, _SCHEMA, busy_timeout_ms)
        self.path = self.db.path

    def snapshot(self, tx: Transaction) -> Snapshot:
        return self._snapshot(tx, self.db.read)

    def read_before(self, tx: Transaction) -> Snapshot:
        t = tx.timestamp.timestamp()
        keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO cp_reads (entity, day, slot) VALUES (?, ?, ?) "
                "ON CONFLICT (entity, day) DO UPDATE SET slot = MAX(slot, excluded.slot)",
                [(e, day_of(t), slot_start(t)) for e in keys.read()])
            return self._snapshot(tx, lambda sql, params: conn.execute(sql, params).fetchall())

    def _snapshot(self, tx: Transaction, read: Callable[[str, tuple], list[tuple]]) -> Snapshot:
        keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
        days = read_days(tx.timestamp.timestamp())
        wanted = list(keys.read())
        rows = read(
            f"SELECT entity, day, col, value FROM cp_cells WHERE entity IN ({','.join('?' * len(wanted))})"
            " AND day BETWEEN ? AND ?", (*wanted, days.start, days.stop - 1))
        views: dict[str, dict[int, dict[str, int]]] = {k: {} for k in wanted}
        for entity, day, col, value in rows:
            views[entity].setdefault(day, {})[col] = value
        return Snapshot.of(keys, views)

    def apply_transaction(self, tx: Transaction, new_for_cp: bool, new_for_device: bool) -> Applied:
        update = Update.of_transaction(tx, transaction_increments(tx, new_for_cp, new_for_device))
        with self.db.transaction() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO cp_markers (marker, day) VALUES (?, ?)",
                               (transaction_marker(tx.transaction_id), day_of(tx.timestamp.timestamp())))
            added = cur.rowcount > 0
            if added:
                _add(conn, update.increments)
            return Applied(added, find_late(update, _read_slots(conn, update)))

    def settle_transaction(self, tx: Transaction) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM cp_markers WHERE marker = ?", (transaction_marker(tx.transaction_id),))

    def apply_label(self, label: LabelEvent) -> LabelApplied:
        with self.db.transaction() as conn:
            row = conn.execute("SELECT doc FROM label_ledger WHERE transaction_id = ?",
                               (label.transaction_id,)).fetchone()
            ledger, outcome = transition(json.loads(row[0]) if row else None, label)
            if outcome.duplicate:  # ledger and increments were written together: nothing to add or report
                return LabelApplied(outcome)
            conn.execute("INSERT INTO label_ledger (transaction_id, doc) VALUES (?, ?) "
                         "ON CONFLICT (transaction_id) DO UPDATE SET doc = excluded.doc",
                         (label.transaction_id, json.dumps(ledger, separators=(",", ":"))))
            _add(conn, outcome.increments)
            update = Update.of_label(label, outcome.increments)
            return LabelApplied(outcome, find_late(update, _read_slots(conn, update)))

    def entity_cells(self, entity: str) -> View:
        days: dict[int, dict[str, int]] = {}
        for day, col, value in self.db.read("SELECT day, col, value FROM cp_cells WHERE entity = ?", (entity,)):
            days.setdefault(day, {})[col] = value
        return days

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
            n += conn.execute("DELETE FROM cp_reads WHERE day < ?", (before_day,)).rowcount
        return n

    def close(self) -> None:
        self.db.close()


def _read_slots(conn: sqlite3.Connection, update: Update) -> dict[str, float]:
    """Per entity of `update`, the latest slot read over the days in which the update is visible."""
    slots = {}
    for entity, t in update.visible_from().items():
        row = conn.execute("SELECT MAX(slot) FROM cp_reads WHERE entity = ? AND day BETWEEN ? AND ?",
                           (entity, day_of(t), day_of(t) + WINDOW_DAYS)).fetchone()
        if row and row[0] is not None:
            slots[entity] = float(row[0])
    return slots


def _add(conn: sqlite3.Connection, increments: tuple[Increment, ...] | list[Increment]) -> None:
    for (entity, day), cells in by_row(increments).items():
        conn.executemany(
            "INSERT INTO cp_cells (entity, day, col, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (entity, day, col) DO UPDATE SET value = value + excluded.value",
            [(entity, day, col, value) for col, value in cells.items()],
        )
