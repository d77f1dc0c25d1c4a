"""The review queue in one SQLite file (embedded mode): `BEGIN IMMEDIATE` per change.

The write lock is taken before the item is read, so two claims of one item run one after the
other and the second sees the first's claim (same reasoning as the SQLite history store).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from txguard.console.items import ReviewItem
from txguard.console.queue import Change
from txguard.contract.errors import ConsoleNotFoundError, ConsoleUnavailableError
from txguard.contract.models import Outcome

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
        self.busy_timeout_ms = busy_timeout_ms
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self._conn().executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConsoleUnavailableError(f"sqlite: cannot create the review queue in {self.path}: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self.busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
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
            raise ConsoleUnavailableError(f"sqlite review queue: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

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
        row = self._conn().execute("SELECT item FROM review_queue WHERE transaction_id = ?",
                                   (transaction_id,)).fetchone()
        return ReviewItem.model_validate_json(row[0]) if row else None

    def open_items(self, outcomes: Iterable[Outcome], limit: int = 100) -> list[ReviewItem]:
        wanted = [Outcome(o).value for o in outcomes]
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = self._conn().execute(
            f"SELECT item FROM review_queue WHERE open = 1 AND outcome IN ({marks})"
            " ORDER BY decided_at DESC, transaction_id LIMIT ?", (*wanted, int(limit))).fetchall()
        return [ReviewItem.model_validate_json(r[0]) for r in rows]

    def open_counts(self) -> dict[str, int]:
        rows = self._conn().execute(
            "SELECT outcome, COUNT(*) FROM review_queue WHERE open = 1 GROUP BY outcome").fetchall()
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
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
