"""Feed a stream into the local stack and watch it: publish in a thread, then drain.

The one way `txguard local up`, `txguard bench e2e` and `txguard reliability` put transactions
through the stack. `publish` runs the paced publisher in a thread onto the `transactions` topic
(the emulator, or the embedded broker: both speak the Publish RPC), records every message in a
ledger, and meanwhile calls `tick` every `interval_s` (a live line, a backlog sample) and runs
timed `events` (stop a function at 4 s, restart it at 14 s) in the watching thread. `drain` then
waits while outcomes keep arriving: it ends when the ledger is settled, after `idle_s` without
any new outcome, or at `cap_s`; `on_idle` (a dead-letter redrive) runs after `act_after_s`
without progress. What is still missing when a drain ends is `lost`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from txguard.contract import names
from txguard.local.ledger import Ledger
from txguard.publisher import Outgoing, Pacer, PublishStats

Tick = Callable[[str, float], None]  # (phase, seconds since the start)
Event = tuple[float, str, Callable[[], None]]  # (at seconds, label, action)


@dataclass
class Published:
    stats: PublishStats
    seconds: float  # until the publisher thread ended (every publish confirmed or failed)
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (seconds, label) of the events run

    @property
    def rate_tps(self) -> float | None:
        s = self.stats
        return round(s.attempted / s.send_seconds, 1) if s.send_seconds else None


@dataclass
class Drained:
    seconds: float = 0.0
    settled: bool = False
    gave_up: bool = False  # idle_s without progress, or cap_s
    actions: int = 0  # on_idle runs
    moved: int = 0  # what on_idle reported (messages redriven)


def publish(project: str, ledger: Ledger, messages: Sequence[Outgoing], pacer: Pacer, *,
            tick: Tick | None = None, events: Sequence[Event] = (), interval_s: float = 0.25,
            stop: threading.Event | None = None) -> Published:
    """Publish `messages` paced by `pacer`; returns when every publish is confirmed (or failed)."""
    from txguard.publisher import PubSubTransport, publish_all

    transport = PubSubTransport(project, names.TRANSACTIONS_TOPIC, max_messages=100, max_latency_s=0.005)
    result: dict[str, object] = {}
    stop = stop or threading.Event()

    def run() -> None:
        try:
            result["stats"] = publish_all(messages, transport, pacer, on_sent=ledger.sent,
                                          on_done=ledger.confirmed, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the watching thread
            result["error"] = exc

    thread = threading.Thread(target=run, name=f"publish-{ledger.name}", daemon=True)
    pending = sorted(events, key=lambda e: e[0])
    timeline: list[tuple[float, str]] = []
    started = time.monotonic()
    thread.start()
    try:
        while thread.is_alive() or pending:
            elapsed = time.monotonic() - started
            while pending and pending[0][0] <= elapsed:
                _, label, action = pending.pop(0)
                action()
                timeline.append((round(time.monotonic() - started, 1), label))
            if tick is not None:
                tick("publishing" if thread.is_alive() else "waiting", elapsed)
            time.sleep(interval_s)
        thread.join()
    finally:
        stop.set()  # a way out (Ctrl-C) ends the publisher too
        transport.close()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return Published(result["stats"], time.monotonic() - started, timeline)  # type: ignore[arg-type]


def drain(ledger: Ledger, idle_s: float, cap_s: float | None = None, *, tick: Tick | None = None,
          on_idle: Callable[[], int] | None = None, act_after_s: float | None = None,
          interval_s: float = 0.25) -> Drained:
    """Wait for the ledger's outcomes (see the module docstring)."""
    out = Drained()
    started = last_change = last_action = time.monotonic()
    last = -1
    while True:
        now = time.monotonic()
        outcomes = ledger.outcomes()
        if outcomes != last:
            last, last_change = outcomes, now
        if ledger.settled():
            out.settled = True
            break
        if on_idle is not None and act_after_s is not None and now - max(last_change, last_action) >= act_after_s:
            moved = on_idle()
            out.actions += 1
            out.moved += moved
            last_action = time.monotonic()
            if moved:
                last_change = last_action
        if now - last_change >= idle_s or (cap_s is not None and now - started >= cap_s):
            out.gave_up = True
            break
        if tick is not None:
            tick("draining", now - started)
        time.sleep(interval_s)
    out.seconds = round(time.monotonic() - started, 1)
    return out
