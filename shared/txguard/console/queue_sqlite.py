"""The review queue in one SQLite file (embedded mode): `BEGIN IMMEDIATE` per change.

The write lock is taken before the item is read, so two claims of one item run one after the
other and the second sees the first's claim (the embedded stores' SqliteDatabase, same reasoning).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from txguard.console.items import ReviewItem
from txguard.console.review_queue import Change
from txguard.contract.errors import ConsoleNotFoundError, ConsoleUnavailableError, StoreUnavailableError
from txguard.contract.models import Outcome
from txguard.enrichment.sqlite_db import SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_queue (
    transaction_id TEXT PRIMARY KEY,
    open INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    item TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS review_queue_open ON review_queue (open, outcome, decided_at);
"""


class SqliteReviewQueue:
    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        try:
            self.db = SqliteDatabase(path, _SCHEMA, busy_timeout_ms)
        except StoreUnavailableError as exc:
            raise ConsoleUnavailableError(f"sqlite: cannot create the review queue in {self.path}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with self.db.transaction() as conn:
                yield conn
        except StoreUnavailableError as exc:
            raise ConsoleUnavailableError(f"sqlite review queue: {exc}") from exc

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self.db.read(sql, params)
        except StoreUnavailableError as exc:
            raise ConsoleUnavailableError(f"sqlite review queue: {exc}") from exc

    @staticmethod
    def _row(item: ReviewItem) -> tuple[str, int, str, str, str]:
        return (item.transaction_id, int(item.open), item.outcome.value, item.decided_at.isoformat(),
                item.model_dump_json())

    def add(self, item: ReviewItem) -> bool:
        with self._transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO review_queue (transaction_id, open, outcome, decided_at, item)"
                " VALUES (?, ?, ?, ?, ?)", self._row(item))
            return cur.rowcount == 1

    def get(self, transaction_id: str) -> ReviewItem | None:
        rows = self._read("SELECT item FROM review_queue WHERE transaction_id = ?", (transaction_id,))
        return ReviewItem.model_validate_json(rows[0][0]) if rows else None

    def open_items(self, outcomes: Iterable[Outcome], limit: int = 100) -> list[ReviewItem]:
        wanted = [Outcome(o).value for o in outcomes]
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = self._read(
            f"SELECT item FROM review_queue WHERE open = 1 AND outcome IN ({marks})"
            " ORDER BY decided_at DESC, transaction_id LIMIT ?", (*wanted, int(limit)))
        return [ReviewItem.model_validate_json(r[0]) for r in rows]

    def open_counts(self) -> dict[str, int]:
        rows = self._read("SELECT outcome, COUNT(*) FROM review_queue WHERE open = 1 GROUP BY outcome")
        return {outcome: int(n) for outcome, n in rows}

    def update(self, transaction_id: str, change: Change) -> ReviewItem:
        with self._transaction() as conn:
            row = conn.execute("SELECT item FROM review_queue WHERE transaction_id = ?",
                               (transaction_id,)).fetchone()
            if row is None:
                raise ConsoleNotFoundError(f"no review item for transaction {transaction_id!r}")
            item = change(ReviewItem.model_validate_json(row[0]))
            conn.execute("UPDATE review_queue SET open = ?, outcome = ?, decided_at = ?, item = ?"
                         " WHERE transaction_id = ?", (*self._row(item)[1:], transaction_id))
        return item

    def close(self) -> None:
        self.db.close()
