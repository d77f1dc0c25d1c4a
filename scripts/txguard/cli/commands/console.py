"""`txguard console`: serve the analyst console locally; `txguard console screenshots` for the docs.

The console reads the same environment as in Google Cloud (ConsoleSettings: the history store,
SCORING_URL, TXGUARD_REGISTRY, the emulator hosts), so after `txguard local up --keep --no-console`
and the `export` lines it prints, `txguard console` serves the running stack. `txguard local up`
serves it by itself and prints its URL.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "console", help="serve the analyst console (review queue, live view, manual scoring, models)",
        description="Serve the analyst console on this machine, configured from the environment "
        "(HISTORY_STORE, SQLITE_PATH or FIRESTORE_EMULATOR_HOST, SCORING_URL, TXGUARD_REGISTRY, "
        "PUBSUB_EMULATOR_HOST, ...; see the README). Runs until Ctrl-C; the last line is one JSON object.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port (default 8090; 0 picks a free one)")
    parser.add_argument("--no-ingest", dest="ingest", action="store_false",
                        help="do not pull the console's subscriptions (queue and live view stay as they are)")
    parser.set_defaults(func=run_serve)
    sub = parser.add_subparsers(dest="console_command", metavar="ACTION")
    shots = sub.add_parser(
        "screenshots", help="start a local stack, run a stream, and capture each console page (docs/img)",
        description="Start the local stack with the console, publish a short simulated stream, review one "
        "item, score one transaction and capture each page in headless Chromium (/usr/bin/chromium) as "
        "<out>/console-<page>.png. The last line is one JSON object.")
    shots.add_argument("--out", default="docs/img", help="folder for the PNG files (default docs/img)")
    shots.add_argument("--count", type=int, default=1200,
                       help="transactions to stream first (default 1200: enough for two drift windows)")
    shots.add_argument("--embedded", action="store_true", help="embedded mode even if gcloud is installed")
    shots.add_argument("--workdir", default=None, help="folder for the stack's logs (default: a temp folder)")
    shots.set_defaults(func=run_screenshots)


def run_serve(args: argparse.Namespace) -> int:
    from rich.console import Console

    from txguard.cli.errors import CliError, Exit
    from txguard.console.app import create_app
    from txguard.console.server import ConsoleServer
    from txguard.console.wiring import build_console
    from txguard.contract.settings import ConsoleSettings

    err = Console(stderr=True)
    settings = ConsoleSettings()
    if not args.ingest:
        settings = settings.model_copy(update={"ingest": False})
    try:
        parts = build_console(settings)
        server = ConsoleServer(create_app(parts), host=args.host, port=args.port).start()
    except OSError as exc:
        raise CliError(f"cannot serve the console on {args.host}:{args.port}", exc.strerror or str(exc),
                       "choose another --port (0 picks a free one)", Exit.SETUP) from None
    started = time.monotonic()
    parts.start_ingest()
    store = (f"firestore ({settings.firestore_database})" if settings.history_store == "firestore"
             else f"sqlite ({settings.sqlite_path}, queue {settings.queue_path})")
    err.print(f"[bold]analyst console {server.url}[/]  history/queue: {store}; scoring: {settings.scoring_url}; "
              f"registry: {settings.registry}; ingest: {'on' if settings.ingest else 'off'}. Ctrl-C to stop.")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
        parts.close()
    print(json.dumps({"url": server.url, "served_s": round(time.monotonic() - started, 1),
                      "queued": parts.intake.queued, "decisions_seen": sum(
                          parts.stats.totals[o] for o in ("allow", "review", "block"))}), flush=True)
    return 0


def run_screenshots(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from txguard.local.screenshots import take_screenshots

    err = Console(stderr=True)
    try:
        result = take_screenshots(Path(args.out), count=args.count, embedded=args.embedded,
                                  workdir=Path(args.workdir) if args.workdir else None, log=err)
    except KeyboardInterrupt:
        err.print("stopping (interrupted)")
        return 130
    except Exception as exc:  # noqa: BLE001 - one readable line; the stack's logs have the rest
        from txguard.cli.errors import run_failure

        raise run_failure("console screenshots failed", exc,
                          f"the stack's logs are in {args.workdir or 'the temp folder it printed'}") from exc
    print(json.dumps(result), flush=True)
    return 0
