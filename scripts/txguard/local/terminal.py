"""Terminal output of the CLI and the local harness (rich), the same on a terminal and in a pipe.

Piped (CI logs, `| tee`, a file), Rich assumes 80 columns, cutting tables and wrapping log lines,
and its `Live` display shows nothing at all. Here a rich Console off a terminal gets a wide width
(COLUMNS wins if set), and `live()` falls back to one plain status line every few seconds, so a
long run still shows its counts in a log.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PIPE_WIDTH = 200
PIPE_STATUS_PERIOD_S = 5.0


def make_terminal(stderr: bool = False) -> Any:
    """A rich Console on stdout (or stderr) that does not cut lines when piped."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    interactive = hasattr(stream, "isatty") and stream.isatty()
    width = None if interactive or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(stderr=stderr, width=width)


class PlainStatus:
    """`Live`'s update() for a console that is not a terminal: a line every `period_s` at most."""

    def __init__(self, terminal: Any, period_s: float = PIPE_STATUS_PERIOD_S) -> None:
        self.terminal = terminal
        self.period_s = period_s
        self._last = float("-inf")
        self._latest: Any = None

    def update(self, renderable: Any) -> None:
        self._latest = renderable
        now = time.monotonic()
        if now - self._last >= self.period_s:
            self._last = now
            self.terminal.print(renderable)

    def final(self) -> None:
        """The last state, so a log ends with the final counts."""
        if self._latest is not None:
            self.terminal.print(self._latest)


@contextmanager
def live(terminal: Any, refresh_per_second: float = 4) -> Iterator[Any]:
    """A rich Live (transient) on a terminal; PlainStatus lines otherwise."""
    if terminal.is_terminal:
        from rich.live import Live

        with Live(console=terminal, refresh_per_second=refresh_per_second, transient=True) as display:
            yield display
        return
    status = PlainStatus(terminal)
    try:
        yield status
    finally:
        status.final()
