"""Follow a function's JSON log file as it grows: each new complete line to a callback.

The local stack learns what the label function did with each label from its log (one line per
delivery: `label_id`, `status`), the way Cloud Logging's log-based metric counts them in the
cloud (infra/monitoring.py). A thread reads from the last offset every `interval_s`; a line
written in two parts is read once it is complete; a restarted function appends to the same file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


class LogTail:
    def __init__(self, path: Path, sink: Callable[[dict[str, Any]], None], interval_s: float = 0.2,
                 from_end: bool = False) -> None:
        """`from_end`: only lines appended from now on (what a delivery made after this point)."""
        self.path = path
        self.sink = sink
        self.interval_s = interval_s
        self.lines = 0
        self._offset = path.stat().st_size if from_end and path.is_file() else 0
        self._partial = b""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LogTail:
        self._thread = threading.Thread(target=self._loop, name=f"tail-{self.path.name}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def poll(self) -> int:
        """Read what was appended since the last call; the number of JSON lines handed to the sink."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return 0
        self._offset += len(chunk)
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        handed = 0
        for raw in complete:
            if not raw.startswith(b"{"):
                continue  # gunicorn's own lines
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict):
                self.sink(entry)
                handed += 1
        self.lines += handed
        return handed

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.poll()  # the last lines written before the stop
