"""Two independent calls of one delivery at the same time: the critical path is the longer one.

In Google Cloud each store or scoring call is a network round trip; two that do not depend on each
other (the counterparty update and the scoring call; dropping the counterparty markers and
publishing the decision) need not wait for each other. `overlap(main, side)` runs `side` on a
pool thread, in a copy of the caller's context (its bound trace and log fields: the scoring call
still sends the delivery's trace, lines logged there still carry it), runs `main` in the caller's
thread, and returns only when both are done, with each one's value or exception: the caller
decides what each failure means, and nothing a delivery started is still running when it
answers (nothing acked before its work is done).

`start(side)` is the same with the caller's part written inline: the side call begins at once, and
the caller awaits it (`Pending.wait`) where it needs its value or before it answers; the history
transaction awaits the counterparty snapshot this way between its reads and its writes. `all(calls)`
runs several independent calls at once and returns their values in order (a store's RPCs that do
not depend on each other).

The pool is created on first use (in the serving process, after any fork) and is as large as the
number of deliveries a process runs at once, so a side call never queues behind another delivery.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")

DEFAULT_WORKERS = 64  # above any THREADS an enrichment instance runs with (its concurrency per instance)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A call's value, or the exception it raised."""

    value: T | None = None
    error: BaseException | None = None

    def get(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def outcome_of(fn: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(fn())
    except Exception as exc:  # handed to the caller, which decides what it means
        return Outcome(error=exc)


class Pending(Generic[T]):
    """A side call under way; `wait` returns its outcome (the same one however often it is called)."""

    def __init__(self, future: Future[Outcome[T]]) -> None:
        self._future = future

    def wait(self) -> Outcome[T]:
        return self._future.result()


class Overlap:
    def __init__(self, workers: int = DEFAULT_WORKERS) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="txguard-overlap")
        return self._pool

    def __call__(self, main: Callable[[], T], side: Callable[[], U] | None) -> tuple[Outcome[T], Outcome[U]]:
        """Both calls' outcomes; `side` None: `main` alone, in the caller's thread (no hop)."""
        if side is None:
            return outcome_of(main), Outcome()
        pending = self.start(side)
        first = outcome_of(main)
        return first, pending.wait()

    def start(self, side: Callable[[], U]) -> Pending[U]:
        """Begin `side` on a pool thread, in a copy of the caller's context; the caller must wait for it."""
        ctx = contextvars.copy_context()
        return Pending(self._executor().submit(ctx.run, outcome_of, side))

    def all(self, calls: list[Callable[[], T]]) -> list[T]:
        """Every call's value, in order: the first in the caller's thread, the others on pool threads, all
        at once. Returns when every call is done; then raises the first error in call order, if any."""
        pending = [self.start(call) for call in calls[1:]]
        outcomes = [outcome_of(calls[0])] if calls else []
        outcomes += [p.wait() for p in pending]
        return [o.get() for o in outcomes]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
