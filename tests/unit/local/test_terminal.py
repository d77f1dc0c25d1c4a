"""Terminal output that survives a pipe: wide terminals, live counts as plain lines."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from txguard.local import terminal


def test_a_piped_terminal_is_wide_and_a_table_is_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    term = terminal.make_terminal()  # pytest captures stdout: not a terminal
    assert term.width == terminal.PIPE_WIDTH
    table = Table(title="registry")
    for col in ("version", "created", "aliases", "PR-AUC", "ROC-AUC", "recall@1%FPR", "commit", "data fingerprint"):
        table.add_column(col)
    table.add_row("v12", "2026-11-30T05:00:00", "production,staging", "0.9512", "0.9985", "0.9790", "a874b86c1f",
                  "sha256:0123456789abcdef")
    buffer = io.StringIO()
    Console(file=buffer, width=term.width).print(table)
    assert "sha256:0123456789abcdef" in buffer.getvalue() and "production,staging" in buffer.getvalue()


def test_live_counts_become_periodic_lines_when_piped() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)  # not a terminal
    clock = iter([0.0, 1.0, 6.0, 7.0])
    status = terminal.PlainStatus(console, period_s=5.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(terminal.time, "monotonic", lambda: next(clock))
        for n in range(4):
            status.update(f"published {n}")
    status.final()
    assert buffer.getvalue().splitlines() == ["published 0", "published 2", "published 3"]
    with terminal.live(console) as display:
        assert isinstance(display, terminal.PlainStatus)

