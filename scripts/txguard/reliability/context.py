"""What every scenario shares: the profile (how long, how many), the router, publish and drain.

One `LocalStack` serves the whole run. Its `Router` (txguard.local.ledger) hands each output
(decision, invalid, dead letter) to the ledger of the scenario it belongs to, so a late output
of one scenario never counts in the next. Each scenario uses transaction ids, wallets,
counterparties and devices of its own (`<scenario>-...`), so its history check only looks at its
own wallets and its counterparty replay is complete without the other scenarios.

Draining ends when every transaction has an outcome; while some are missing and nothing has
arrived for `redrive_after_s`, the dead-letter subscription is redriven (scripts/txguard/ops/redrive.py), and
the drain gives up after `idle_s` without any progress, or at `cap_s`: what is missing then is
`lost`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from txguard.contract import names
from txguard.local import feed
from txguard.local.ledger import Ledger
from txguard.local.push import Faults
from txguard.local.router import Router
from txguard.ops.late_updates import LateLine, distinct
from txguard.publisher import Outgoing
from txguard.reliability import counterparty_check
from txguard.reliability.history_check import check, check_features


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
    kill_stream_s: float
    kill_at_s: tuple[float, ...]  # when the enrichment workers are killed, seconds into the stream
    flaky_stream_s: float
    flaky_share: float
    promotion_stream_s: float  # the promotion scenario: promote at promote_at_s, roll back at rollback_at_s
    promote_at_s: float
    rollback_at_s: float
    labels_tx: int  # the labels scenario's transactions (its labels follow from them)
    hot_stream_s: float  # counterparty_hot: a share of the stream on one counterparty, workers killed at hot_kill_at_s
    hot_share: float
    hot_kill_at_s: tuple[float, ...]
    cp_outage_stream_s: float  # counterparty_outage: the Bigtable emulator frozen at cp_outage_at_s for cp_outage_s
    cp_outage_at_s: float
    cp_outage_s: float
    redrive_after_s: float
    idle_s: float
    cap_s: float


# cap_s bounds each drain; generous because the machine running it may be shared. idle_s is what
# actually ends a stuck drain: longer than the 60 s after which Firestore releases the locks of a
# transaction whose client died (a killed worker's wallets wait that long, docs/enrichment.md).
FULL = Profile("full", duplicates_tx=400, poison_messages=1200, poison_fraction=0.05,
               scoring_stream_s=60, scoring_outage_at_s=15, scoring_outage_s=20,
               store_stream_s=40, store_outage_at_s=10, store_outage_s=10,
               bad_model_tx=150, burst_factor=10, burst_s=10,
               kill_stream_s=60, kill_at_s=(8, 18, 28, 38, 48), flaky_stream_s=60, flaky_share=0.2,
               promotion_stream_s=60, promote_at_s=10, rollback_at_s=35, labels_tx=400,
               hot_stream_s=60, hot_share=0.3, hot_kill_at_s=(10, 22, 34, 46),
               cp_outage_stream_s=60, cp_outage_at_s=15, cp_outage_s=30,
               redrive_after_s=8, idle_s=90, cap_s=900)
QUICK = Profile("quick", duplicates_tx=40, poison_messages=240, poison_fraction=0.05,
                scoring_stream_s=20, scoring_outage_at_s=4, scoring_outage_s=10,
                store_stream_s=12, store_outage_at_s=3, store_outage_s=5,
                bad_model_tx=25, burst_factor=10, burst_s=2,
                kill_stream_s=16, kill_at_s=(3, 8, 13), flaky_stream_s=12, flaky_share=0.2,
                promotion_stream_s=36, promote_at_s=4, rollback_at_s=20, labels_tx=120,
                hot_stream_s=16, hot_share=0.3, hot_kill_at_s=(3, 8, 13),
                cp_outage_stream_s=24, cp_outage_at_s=4, cp_outage_s=15,
                redrive_after_s=6, idle_s=90, cap_s=240)


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

    # delivery ------------------------------------------------------------------------------
    @property
    def _dispatcher(self) -> Any:
        return self.stack.dispatcher

    @property
    def ordering(self) -> bool:
        return bool(self.stack.delivery_summary().get("ordering"))

    @property
    def can_inject_faults(self) -> bool:
        return self._dispatcher is not None

    def set_faults(self, plan: Faults | None) -> None:
        self._dispatcher.faults = plan

    def push_stats(self) -> dict[str, Any]:
        return self._dispatcher.stats.as_dict() if self._dispatcher is not None else {}

    def messages(self, scenario: str, count: int, seed: int) -> list[Outgoing]:
        """`count` simulated transactions with ids, wallets, counterparties and devices of the scenario's own."""
        from txguard.local.stage import own_wallets
        from txguard.publisher import make_stream

        return own_entities(own_wallets(make_stream(count, "fraud", seed=seed, id_prefix=scenario), f"{scenario}-"),
                            f"{scenario}-")

    # publishing ----------------------------------------------------------------------------
    def publish(self, ledger: Ledger, messages: list[Outgoing], rate: float,
                events: Sequence[feed.Event] = ()) -> dict[str, Any]:
        """Publish at `rate` tx/s; run each `(at_s, label, action)` at its time (progress shows the label)."""
        from txguard.publisher import Pacer

        def announced(label: str, action: Callable[[], None]) -> Callable[[], None]:
            return lambda: (self.progress.phase(ledger, label), action())[1]

        published = feed.publish(self.stack.options.project, ledger, messages, Pacer(rate=rate),
                                 tick=lambda phase, _s: self.progress.update(ledger, phase),
                                 events=[(at, label, announced(label, action)) for at, label, action in events],
                                 interval_s=0.2)
        return {"publish_s": round(published.stats.send_seconds, 2), "publish_rate_tps": published.rate_tps,
                "timeline": published.timeline}

    # draining ------------------------------------------------------------------------------
    def redrive(self) -> int:
        if self.mode == "embedded":
            parked = self.router.take_dead_letters()
            for data, attributes in parked:
                self.stack.broker.publish(names.TRANSACTIONS_TOPIC, data, attributes)
                self.router.redriven(data)
            return len(parked)
        from txguard.ops.redrive import redrive

        stats = redrive(self.stack.options.project, pull_timeout_s=2.0, on_message=self.router.on_redriven)
        return stats.republished

    def drain(self, ledger: Ledger) -> feed.Drained:
        p = self.profile

        def redrive() -> int:
            self.progress.phase(ledger, "redriving the dead-letter subscription")
            return self.redrive()

        return feed.drain(ledger, p.idle_s, p.cap_s, tick=lambda phase, _s: self.progress.update(ledger, phase),
                          on_idle=redrive, act_after_s=p.redrive_after_s)

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

    # state -------------------------------------------------------------------------------------
    def late_lines(self, prefix: str) -> list[LateLine]:
        """The late updates the enrichment and label functions logged at the scenario's entities."""
        from txguard.ops.late_updates import read_lines

        paths = [fn.log_path for name in ("enrich", "label") if (fn := self.stack.functions.get(name)) is not None]
        return read_lines(paths, f"{prefix}-")

    def state(self, messages: list[Outgoing], ledger: Ledger, labels: Iterable[Any] = (),
              markers: bool = False) -> dict[str, Any]:
        """The scenario's state against the offline replay: wallets (double counting), each transaction's
        wallet and counterparty features, the counterparty/device/label aggregates, open leases and,
        with `markers`, the counterparty markers left behind (Bigtable: two reads per transaction)."""
        from txguard.contract.models import TRANSACTION_ADAPTER

        txs = [TRANSACTION_ADAPTER.validate_json(m.data) for m in messages if m.expected_valid]
        labels = list(labels)
        prefix = next((m.transaction_id.split("-", 1)[0] for m in messages if m.transaction_id), "")
        history, counterparties = self.stack.history_store(), self.stack.counterparty_store()
        try:
            records = {tx.transaction_id: history.processed(tx.transaction_id) for tx in txs}
            wallets = check(txs, history.wallet_state)
            features = check_features(txs, records.get, ledger.late_ids())
            late = self.late_lines(prefix)
            cp = counterparty_check.check_counterparty_features(txs, labels, records.get, late)
            aggregates = counterparty_check.check_aggregates(txs, labels, counterparties.entity_cells)
            out: dict[str, Any] = {"history": wallets, "features": features, **cp.as_dict(), **aggregates.as_dict(),
                                   "open_leases": counterparty_check.open_leases(records.values()),
                                   "late_update_delay_s": _delays(late, ledger)}
            if markers and self.mode == "emulators":
                out["markers_left"] = sum(counterparties.pending_markers(tx) for tx in txs)
            return out
        finally:
            history.close()
            counterparties.close()


def _delays(late: list[LateLine], ledger: Ledger) -> dict[str, float | None]:
    """Wall-clock seconds from a late transaction's first publish to its late line: how long a failure held
    the update back (event time runs faster than the wall clock in these streams: `lag_s` says how far)."""
    from txguard.local.ledger import percentile

    values = []
    for line in distinct(late):
        sent = ledger.sent_at_ms(line.transaction_id) if line.label_id is None else None
        if sent and line.logged_at is not None:
            values.append(line.logged_at - sent / 1000)
    return {"p50": _r(percentile(values, 50)), "max": _r(max(values) if values else None)}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def own_entities(messages: list[Outgoing], prefix: str) -> list[Outgoing]:
    """The same transactions on counterparties and devices of the scenario's own: its counterparty
    aggregates start at zero and no other scenario's transaction reads or changes them."""
    out = []
    for m in messages:
        if not m.expected_valid:
            out.append(m)
            continue
        doc = json.loads(m.data)
        doc["counterparty_id"] = f"{prefix}{doc['counterparty_id']}"
        if doc.get("device_id"):
            doc["device_id"] = f"{prefix}{doc['device_id']}"
        out.append(replace(m, data=json.dumps(doc, separators=(",", ":")).encode()))
    return out
