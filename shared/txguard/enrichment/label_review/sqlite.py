"""Embedded label review state in the SQLite file of the history (`SqliteDatabase`, BEGIN IMMEDIATE)."""

from __future__ import annotations

from pathlib import Path

from txguard.enrichment.label_review.protocol import HeldLabel
from txguard.enrichment.sqlite_db import SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS label_rates (
    key TEXT NOT NULL,
    minute INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key, minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS held_labels (
    label_id TEXT PRIMARY KEY,
    held_at REAL NOT NULL,
    doc TEXT NOT NULL
);
"""


class SqliteLabelReview:
    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000) -> None:
        self.db = SqliteDatabase(path, _SCHEMA, busy_timeout_ms)
        self.path = self.db.path

    def count(self, key: str, minute: int, window_minutes: int) -> int:
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO label_rates (key, minute, count) VALUES (?, ?, 1) "
                         "ON CONFLICT (key, minute) DO UPDATE SET count = count + 1", (key, minute))
            row = conn.execute("SELECT COALESCE(SUM(count), 0) FROM label_rates WHERE key = ? AND minute > ? "
                               "AND minute <= ?", (key, minute - window_minutes, minute)).fetchone()
        return int(row[0])

    def hold(self, held: HeldLabel) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO held_labels (label_id, held_at, doc) VALUES (?, ?, ?)",
                         (held.label.label_id, held.held_at, held.to_json()))

    def held(self) -> list[HeldLabel]:
        rows = self.db.read("SELECT doc FROM held_labels ORDER BY held_at, label_id")
        return [HeldLabel.from_json(row[0]) for row in rows]

    def drop(self, label_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM held_labels WHERE label_id = ?", (label_id,))

    def purge(self, before_minute: int) -> int:
        """Drop rate buckets no window reads any more (Bigtable's GC rule on the family)."""
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM label_rates WHERE minute <= ?", (before_minute,)).rowcount

    def close(self) -> None:
        self.db.close()
