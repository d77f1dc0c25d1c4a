"""One SQLite file shared by the embedded stores: WAL mode, one connection per thread.

Every write runs in `BEGIN IMMEDIATE`: the write lock is taken before anything is read, so two
deliveries that touch the same rows serialise instead of both reading the same state (a deferred
transaction would let both read and then fail, or lose an update). `busy_timeout` makes a waiting
writer queue for the lock rather than fail at once; when it still cannot get the lock the error is
`StoreUnavailableError` (retryable: Pub/Sub redelivers).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from txguard.contract.errors import StoreUnavailableError


class SqliteDatabase:
    def __init__(self, path: str | Path, schema: str, busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self.conn().executescript(schema)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"sqlite: cannot create the schema in {self.path}: {exc}") from exc

    def conn(self) -> sqlite3.Connection:
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
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn()
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

    def read(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self.conn().execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"sqlite: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
