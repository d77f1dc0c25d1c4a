"""A value built once per process, on first use.

The functions' and the console's clients (Pub/Sub, Firestore, Bigtable: gRPC underneath) must be
created after gunicorn forks its workers, in the process that uses them, and only once even when
several request threads ask at the same moment. Functional tests install their own value instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ProcessWide(Generic[T]):
    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: T | None = None

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    def install(self, value: T | None) -> None:
        """Replace the value (None: build it again on next use)."""
        with self._lock:
            self._value = value
