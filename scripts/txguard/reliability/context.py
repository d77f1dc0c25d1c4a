"""What every scenario shares: the profile (how long, how many), the router, publish and drain.

One `LocalStack` serves the whole run. Its tracker is a `Router` that hands each output
(decision, invalid, dead letter) to the ledger of the scenario it belongs to, so a late output
of one scenario never counts in the next. Each scenario uses transaction ids and wallets of its
own (`<scenario>-...`), so its history check only looks at its own wallets.

Draining ends when every transaction has an outcome; while some are missing and nothing has
arrived for `redrive_after_s`, the dead-letter subscription is redriven (scripts/txguard/ops/redrive.py), and
the drain gives up after `idle_s` without any progress, or at `cap_s`: what is missing then is
`lost`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from txguard.contract import names
from txguard.publisher import Outgoing
from txguard.reliability.history_check import HistoryCheck, check
from txguard.reliability.ledger import Ledger


@dataclass(frozen=True)
class Profile:
    name: str
    duplicates_tx: int
    poison_messages: int
    poison_fraction: float
    scoring_stream_s: float
    scoring_outage_at_s: float
    scoring_outage_s: float
    store_stream_s: float
    store_outage_at_s: float
    store_outage_s: float
    bad_model_tx: int
    burst_factor: float
    burst_s: float
    redrive_after_s: float
    idle_s: float
    cap_s: float


# cap_s bounds each drain; generous because the machine running it may be shared (the emulator
# then delivers far below its ~35 tx/s), idle_s is what actually ends a stuck drain.
FULL = Profile("full", duplicates_tx=400, poison_messages=1200, poison_fraction=0.05,
               scoring_stream_s=60, scoring_outage_at_s=15, scoring_outage_s=20,
               store_stream_s=40, store_outage_at_s=10, store_outage_s=10,
               bad_model_tx=150, burst_factor=10, burst_s=10,
               redrive_after_s=8, idle_s=60, cap_s=900)
QUICK = Profile("quick", duplicates_tx=40, poison_messages=240, poison_fraction=0.05,
                scoring_stream_s=20, scoring_outage_at_s=4, scoring_outage_s=10,
                store_stream_s=12, store_outage_at_s=3, store_outage_s=5,
                bad_model_tx=25, burst_factor=10, burst_s=2,
                redrive_after_s=6, idle_s=30, cap_s=240)


class Router:
    """The stack's tracker for the whole run: outputs go to the ledger that knows them."""

    def __init__(self) -> None:
        self.ledgers: list[Ledger] = []
        self.unmatched: Counter[str] = Counter()
        self.dead_letters: list[tuple[bytes, dict[str, str]]] = []  # embedded mode: kept for a redrive
        self._lock = threading.Lock()

    def add(self, ledger: Ledger) -> Ledger:
        self.ledgers.append(ledger)
        return ledger

    def _route(self, kind: str, fn: Callable[[Ledger], bool]) -> None:
        for ledger in reversed(self.ledgers):
            if fn(ledger):
                return
        with self._lock:
            self.unmatched[kind] += 1

    def on_decision(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> None:
        self._route("decision", lambda lg: lg.on_decision(data, attributes, now_ms))

    def on_invalid(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> None:
        self._route("invalid", lambda lg: lg.on_invalid(data, attributes, now_ms))

    def on_dead_letter(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> None:
        """Embedded mode only (the emulator's dead letters are pulled by the redrive)."""
        with self._lock:
            self.dead_letters.append((bytes(data), dict(attributes)))
        self._route("dead_letter", lambda lg: lg.on_dead_letter(data, attributes, now_ms))

    def take_dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        """Embedded mode: the dead letters parked so far, removed from the router (for a redrive)."""
        with self._lock:
            parked, self.dead_letters = self.dead_letters, []
        return parked

    def on_redriven(self, data: bytes, attributes: dict[str, str]) -> None:
        """A message pulled from the dead-letter subscription and republished."""
        self._route("redriven", lambda lg: lg.on_dead_letter(data, attributes) and lg.on_redriven(data))


@dataclass
class Drain:
    seconds: float = 0.0
    redrives: int = 0
    redriven: int = 0
    gave_up: bool = False


@dataclass
class Context:
    stack: Any
    profile: Profile
    router: Router
    progress: Any  # scripts.reliability.runner.Progress
    notes: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return str(self.stack.mode)

    @property
    def nominal_rate(self) -> float:
        return float(self.stack.rate)

    def messages(self, scenario: str, count: int, seed: int) -> list[Outgoing]:
        """`count` simulated transactions with ids and wallets of the scenario's own."""
        from txguard.bench.e2e import own_wallets
        from txguard.publisher import make_stream

        return own_wallets(make_stream(count, "fraud", seed=seed, id_prefix=scenario), f"{scenario}-")

    # publishing ----------------------------------------------------------------------------
    def publish(self, ledger: Ledger, messages: list[Outgoing], rate: float,
                events: list[tuple[float, str, Callable[[], None]]] = ()) -> dict[str, Any]:
        """Publish at `rate` tx/s; run each `(at_s, label, action)` at its time (in this thread)."""
        from txguard.publisher import Pacer, PubSubTransport, publish_all

        # Embedded mode's broker speaks the same Publish RPC (PUBSUB_EMULATOR_HOST points at it).
        transport = PubSubTransport(self.stack.options.project, names.TRANSACTIONS_TOPIC,
                                    max_messages=100, max_latency_s=0.005)
        result: dict[str, Any] = {}
        stop = threading.Event()

        def run() -> None:
            try:
                result["stats"] = publish_all(messages, transport, Pacer(rate=rate), on_sent=ledger.sent,
                                              on_done=ledger.confirmed, stop=stop)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                result["error"] = exc

        thread = threading.Thread(target=run, name=f"publish-{ledger.scenario}", daemon=True)
        started = time.monotonic()
        pending_events = sorted(events, key=lambda e: e[0])
        timeline: list[tuple[float, str]] = []
        thread.start()
        try:
            while thread.is_alive() or pending_events:
                elapsed = time.monotonic() - started
                while pending_events and pending_events[0][0] <= elapsed:
                    _, label, action = pending_events.pop(0)
                    self.progress.phase(ledger, label)
                    action()
                    timeline.append((round(time.monotonic() - started, 1), label))
                self.progress.update(ledger, "publishing" if thread.is_alive() else "waiting")
                time.sleep(0.2)
            thread.join()
        finally:
            stop.set()
            transport.close()
        if "error" in result:
            raise result["error"]
        stats = result["stats"]
        return {"publish_s": round(stats.send_seconds, 2), "publish_rate_tps": round(
            stats.attempted / stats.send_seconds, 1) if stats.send_seconds else None,
            "timeline": timeline}

    # draining ------------------------------------------------------------------------------
    def redrive(self) -> int:
        if self.mode == "embedded":
            parked = self.router.take_dead_letters()
            for data, attributes in parked:
                self.stack.broker.publish(names.TRANSACTIONS_TOPIC, data, attributes)
                for ledger in reversed(self.router.ledgers):
                    if ledger.on_redriven(data):
                        break
            return len(parked)
        from txguard.ops.redrive import redrive

        stats = redrive(self.stack.options.project, pull_timeout_s=2.0, on_message=self.router.on_redriven)
        return stats.republished

    def drain(self, ledger: Ledger) -> Drain:
        p = self.profile
        out = Drain()
        started = last_change = last_redrive = time.monotonic()
        last = -1
        while True:
            now = time.monotonic()
            outcomes = ledger.outcomes()
            if outcomes != last:
                last, last_change = outcomes, now
            if ledger.pending() == 0:
                break
            if now - max(last_change, last_redrive) >= p.redrive_after_s:
                self.progress.phase(ledger, "redriving the dead-letter subscription")
                moved = self.redrive()
                out.redrives += 1
                out.redriven += moved
                last_redrive = time.monotonic()
                if moved:
                    last_change = last_redrive
            if now - last_change >= p.idle_s or now - started >= p.cap_s:
                out.gave_up = True
                break
            self.progress.update(ledger, "draining")
            time.sleep(0.25)
        out.seconds = round(time.monotonic() - started, 1)
        return out

    def retries(self, prefix: str) -> dict[str, int]:
        """Deliveries of the scenario's transactions the enrichment function answered with a retry
        (503), by error type, from its JSON log."""
        fn = self.stack.functions.get("enrich")
        out: Counter[str] = Counter()
        try:
            lines = fn.log_path.read_text(errors="replace").splitlines() if fn is not None else []
        except OSError:
            return {}
        for line in lines:
            if '"status":"retry"' not in line or f'"{prefix}-' not in line or not line.startswith("{"):
                continue
            try:
                reason = str(json.loads(line).get("reason") or "?")
            except ValueError:
                continue
            out[reason.split(":", 1)[0]] += 1
        return dict(out.most_common())

    # history -------------------------------------------------------------------------------
    def history(self, messages: list[Outgoing]) -> HistoryCheck:
        """The scenario's wallets in the store against the sequential replay of its transactions."""
        from txguard.contract.models import TRANSACTION_ADAPTER

        txs = [TRANSACTION_ADAPTER.validate_json(m.data) for m in messages if m.expected_valid]
        store = self._store()
        try:
            return check(txs, store.wallet_state)
        finally:
            store.close()

    def _store(self) -> Any:
        if self.mode == "embedded":
            from txguard.enrichment.history.sqlite import SqliteHistoryStore

            return SqliteHistoryStore(self.stack.workdir / "history.sqlite3")
        from txguard.enrichment.history.firestore import FirestoreHistoryStore

        return FirestoreHistoryStore(project=self.stack.options.project)
