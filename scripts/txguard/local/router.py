"""The local stack's sink for every output of the pipeline: each goes to the ledger that knows it.

Ledgers are tried newest first, so a late output of one stream (a redelivered decision of the
previous `bench e2e` stage, of the previous reliability scenario) never counts in the next;
outputs no ledger knows are counted as `unmatched`. In embedded mode the dead letters are also
kept here, for a redrive (the embedded broker has no dead-letter subscription to pull).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from txguard.local.ledger import Ledger


class Router:
    """The stack's sink for every output: each goes to the ledger that knows it (newest first)."""

    def __init__(self) -> None:
        self.ledgers: list[Ledger] = []
        self.unmatched: Counter[str] = Counter()
        self.dead_letters: list[tuple[bytes, dict[str, str]]] = []  # embedded mode: kept for a redrive
        self._lock = threading.Lock()

    def add(self, ledger: Ledger) -> Ledger:
        with self._lock:
            self.ledgers.append(ledger)
        return ledger

    def _route(self, kind: str, fn: Callable[[Ledger], bool]) -> bool:
        with self._lock:
            ledgers = list(reversed(self.ledgers))
        for ledger in ledgers:
            if fn(ledger):
                return True
        with self._lock:
            self.unmatched[kind] += 1
        return False

    def on_decision(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> None:
        self._route("decision", lambda lg: lg.on_decision(data, attributes, now_ms))

    def on_invalid(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> None:
        self._route("invalid", lambda lg: lg.on_invalid(data, attributes, now_ms))

    def on_dead_letter(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> None:
        """A message forwarded to the dead-letter topic (embedded mode also keeps it for a redrive)."""
        with self._lock:
            self.dead_letters.append((bytes(data), dict(attributes)))
        self._route("dead_letter", lambda lg: lg.on_dead_letter(data, attributes, now_ms))

    def on_label_dead_letter(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> None:
        """A label on `labels-dead-letter` (not kept for a transactions redrive)."""
        self._route("label_dead_letter", lambda lg: lg.on_dead_letter(data, attributes, now_ms))

    def on_label_status(self, label_id: str, status: str) -> None:
        """A line of the label function's log: what it did with one label id."""
        self._route("label_status", lambda lg: lg.on_label_status(label_id, status))

    def take_dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        """Embedded mode: the dead letters parked so far, removed from the router (for a redrive)."""
        with self._lock:
            parked, self.dead_letters = self.dead_letters, []
        return parked

    def on_redriven(self, data: bytes, attributes: dict[str, str]) -> None:
        """A message pulled from the dead-letter subscription (never seen by a consumer) and republished."""
        self._route("redriven", lambda lg: lg.on_dead_letter(data, attributes) and lg.on_redriven(data))

    def redriven(self, data: bytes) -> None:
        """A dead letter this router already counted was republished (embedded redrive)."""
        self._route("redriven", lambda lg: lg.on_redriven(data))
