"""What every scenario shares: the profile (how long, how many), the router, publish and drain.

One `LocalStack` serves the whole run. Its `Router` (txguard.local.ledger) hands each output
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
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from txguard.contract import names
from txguard.local import feed
from txguard.local.ledger import Ledger
from txguard.local.push import Faults
from txguard.local.router import Router
from txguard.publisher import Outgoing
from txguard.reliability.history_check import FeatureCheck, HistoryCheck, check, check_features


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
               redrive_after_s=8, idle_s=90, cap_s=900)
QUICK = Profile("quick", duplicates_tx=40, poison_messages=240, poison_fraction=0.05,
                scoring_stream_s=20, scoring_outage_at_s=4, scoring_outage_s=10,
                store_stream_s=12, store_outage_at_s=3, store_outage_s=5,
                bad_model_tx=25, burst_factor=10, burst_s=2,
                kill_stream_s=16, kill_at_s=(3, 8, 13), flaky_stream_s=12, flaky_share=0.2,
                promotion_stream_s=36, promote_at_s=4, rollback_at_s=20, labels_tx=120,
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
        """`count` simulated transactions with ids and wallets of the scenario's own."""
        from txguard.local.stage import own_wallets
        from txguard.publisher import make_stream

        return own_wallets(make_stream(count, "fraud", seed=seed, id_prefix=scenario), f"{scenario}-")

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

    # history -------------------------------------------------------------------------------
    def history(self, messages: list[Outgoing], ledger: Ledger | None = None) -> tuple[HistoryCheck, FeatureCheck]:
        """The scenario's wallets in the store against the sequential replay of its transactions, and
        each transaction's stored features against its replayed ones (late flags from the ledger)."""
        from txguard.contract.models import TRANSACTION_ADAPTER

        txs = [TRANSACTION_ADAPTER.validate_json(m.data) for m in messages if m.expected_valid]
        store = self.stack.history_store()
        try:
            return (check(txs, store.wallet_state),
                    check_features(txs, store.processed, ledger.late_ids() if ledger is not None else ()))
        finally:
            store.close()
