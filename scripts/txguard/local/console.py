"""The analyst console next to the local stack: its stores, its scoring function, its registry.

With the emulators the console reads its own subscriptions like in Google Cloud (the topology
created them), keeps its queue in the Firestore emulator and reads the counterparty aggregates from
the Bigtable emulator. In embedded mode there are no
subscriptions: the stack hands the console a copy of what would reach them (`deliver`) and the
queue is a SQLite file in the work folder. Either way the console is served from a thread of the
stack's process and stops with it.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from txguard.console.app import create_app
from txguard.console.server import ConsoleServer
from txguard.console.wiring import ConsoleParts, build_console
from txguard.contract.settings import ConsoleSettings

if TYPE_CHECKING:
    from txguard.local.stack import LocalStack


class LocalConsole:
    def __init__(self, parts: ConsoleParts, server: ConsoleServer) -> None:
        self.parts = parts
        self.server = server

    @property
    def url(self) -> str:
        return self.server.url

    def deliver(self, subscription: str, message: Any) -> None:
        """Embedded mode: what the console's `subscription` would have received (a broker Message)."""
        published = datetime.fromisoformat(message.publish_time.replace("Z", "+00:00")).timestamp()
        self.parts.intake.handlers()[subscription](message.data, message.attributes, published)

    def stop(self) -> None:
        self.server.stop()
        self.parts.close()


def console_settings(stack: LocalStack) -> ConsoleSettings:
    embedded = stack.mode == "embedded"
    return ConsoleSettings(**{
        "GOOGLE_CLOUD_PROJECT": stack.options.project,
        "HISTORY_STORE": "sqlite" if embedded else "firestore",
        "COUNTERPARTY_STORE": "sqlite" if embedded else "bigtable",
        "SQLITE_PATH": str(stack.workdir / "history.sqlite3"),
        "CONSOLE_QUEUE_PATH": str(stack.workdir / "console.sqlite3"),
        "SCORING_URL": stack.functions["score"].url,
        "SCORING_AUTH": "none",
        "TXGUARD_REGISTRY": stack.env["TXGUARD_REGISTRY"],
        "CONSOLE_INGEST": "false" if embedded else "true",
        "DRIFT_SOURCE": f"file:{stack.functions['score'].log_path}",
        "LABEL_SOURCE": f"file:{stack.functions['label'].log_path}",
        # The Rules page's backtest sample, when the caller has one (`txguard rules backtest --save-sample`).
        "BACKTEST_SAMPLE": os.environ.get("BACKTEST_SAMPLE", ""),
        "CONSOLE_APPROVERS": os.environ.get("CONSOLE_APPROVERS", ""),
    })


def start_console(stack: LocalStack, port: int = 0) -> LocalConsole:
    parts = build_console(console_settings(stack))
    try:
        server = ConsoleServer(create_app(parts), port=port).start()
    except BaseException:
        parts.close()
        raise
    parts.start_ingest()
    return LocalConsole(parts, server)
