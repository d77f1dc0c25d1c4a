"""What became of every published transaction: decided, invalid, dead-lettered, redriven, or lost.

One ledger per stream (the demo stream of `txguard local up`, a `bench e2e` stage, a
`txguard reliability` scenario). The publisher says what it sent and when (`sent`,
`confirmed`); the stack's consumers say what came out (`on_decision`, `on_invalid`,
`on_dead_letter`, `on_redriven`). It counts per *transaction*, not per message: a transaction
published twice (two Pub/Sub messages, one transaction id) is decided once if it has at least one
decision, and its decision copies must be byte-identical. Decisions are matched by transaction
id; invalid and dead-lettered messages carry the original bytes and are matched by content, so
invalid-on-purpose ("poison") messages, which have no transaction id, are too.

`lost` = published, confirmed by Pub/Sub, and without any outcome when the stream ends: not
decided, not on `invalid`, not waiting on the dead-letter topic. Latency runs from the first
publish to the first decision received; quality compares decisions with the simulator's labels.

Labels published during the stream are accounted in the same ledger, per label
(`txguard.local.label_book.LabelBook`, its `labels_*` figures in the summary).

The stack holds a `txguard.local.router.Router` that hands every output to the ledger that
knows it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from txguard.contract import names
from txguard.local.label_book import LabelBook
from txguard.publisher import Outgoing

POSITIVE = frozenset({"block", "review"})


def content_key(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def _now_ms(now_ms: int | None) -> int:
    return now_ms if now_ms is not None else int(time.time() * 1000)


@dataclass
class _Item:
    """One transaction (all its copies) or one poison message."""

    message: Outgoing  # the first copy sent
    published_at_ms: int
    copies: int = 0
    confirmed: int = 0
    failed: int = 0
    decisions: list[bytes] = field(default_factory=list)
    outcome: str | None = None  # allow | review | block, of the first decision
    late: bool = False  # a decision said a later transaction of the wallet was decided first
    rules: tuple[str, ...] = ()  # the rules that fired, of the first decision
    rule_set: str | None = None  # the rule set that decided it
    latency_ms: float | None = None  # first publish -> first decision received
    invalid_reasons: list[str] = field(default_factory=list)
    invalid_kinds: list[str] = field(default_factory=list)  # the function's error_kind attribute
    dead_lettered: int = 0
    redriven: int = 0

    @property
    def valid(self) -> bool:
        return self.message.expected_valid

    @property
    def settled(self) -> bool:
        """Has an outcome (or never reached Pub/Sub at all)."""
        return bool(self.decisions or self.invalid_reasons) or (self.copies > 0 and self.failed == self.copies)

    @property
    def parked(self) -> bool:
        """On the dead-letter topic and not (yet) redriven: accounted for, not decided."""
        return self.dead_lettered > self.redriven


class Ledger:
    def __init__(self, name: str, latency_window: int = 200) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._items: dict[str, _Item] = {}
        self._by_content: dict[str, str] = {}
        self._recent: deque[float] = deque(maxlen=latency_window)
        self.messages_sent = 0
        self.invalid_without_reason = 0
        self.labels = LabelBook()  # the labels published during the stream

    # publisher side ------------------------------------------------------------------------
    @staticmethod
    def _key(message: Outgoing) -> str:
        return message.transaction_id if message.transaction_id else "poison:" + content_key(message.data)

    def sent(self, message: Outgoing, published_at_ms: int = 0) -> None:
        key = self._key(message)
        with self._lock:
            self.messages_sent += 1
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = _Item(message, published_at_ms)
            item.copies += 1
            self._by_content[content_key(message.data)] = key

    def confirmed(self, message: Outgoing, exc: BaseException | None) -> None:
        with self._lock:
            item = self._items.get(self._key(message))
            if item is None:
                return
            if exc is None:
                item.confirmed += 1
            else:
                item.failed += 1

    # consumer side: each returns whether the output belongs to this ledger ---------------------
    def on_decision(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> bool:
        try:
            doc = json.loads(data)
            tx_id = str(doc["transaction_id"])
        except (ValueError, KeyError, TypeError):
            doc, tx_id = {}, attributes.get(names.ATTR_TRANSACTION_ID, "")
        with self._lock:
            item = self._items.get(tx_id)
            if item is None:
                return False
            item.decisions.append(bytes(data))
            if item.outcome is None and isinstance(doc, dict) and "outcome" in doc:
                item.outcome = str(doc["outcome"])
                item.late = bool(doc.get("late", False))
                item.rules = tuple(str(h.get("rule")) for h in doc.get("rules") or () if isinstance(h, dict))
                item.rule_set = doc.get("rule_set")
                item.latency_ms = float(_now_ms(now_ms) - item.published_at_ms)
                self._recent.append(item.latency_ms)
            return True

    def on_invalid(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> bool:
        with self._lock:
            item = self._by_data(data)
            if item is None:
                return self.labels.on_invalid(data, attributes)
            reason = attributes.get(names.ATTR_REASON, "")
            if not reason:
                self.invalid_without_reason += 1
            item.invalid_reasons.append(reason)
            item.invalid_kinds.append(attributes.get(names.ATTR_ERROR_KIND, "?"))
            return True

    def on_dead_letter(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> bool:
        with self._lock:
            item = self._by_data(data)
            if item is None:
                return self.labels.on_dead_letter(data)
            item.dead_lettered += 1
            return True

    def on_label_status(self, label_id: str, status: str) -> bool:
        """A label function log line about one of this stream's labels."""
        return self.labels.on_status(label_id, status)

    def on_redriven(self, data: bytes) -> bool:
        """A dead letter was republished to `transactions`: pending again until decided."""
        with self._lock:
            item = self._by_data(data)
            if item is None:
                return False
            item.redriven += 1
            return True

    def _by_data(self, data: bytes) -> _Item | None:
        key = self._by_content.get(content_key(data))
        return None if key is None else self._items[key]

    # reading -------------------------------------------------------------------------------
    def pending(self) -> int:
        """Transactions (and poison messages) and labels without an outcome yet, nor parked as dead letters."""
        with self._lock:
            transactions = sum(1 for i in self._items.values() if not i.settled and not i.parked)
        return transactions + self.labels.pending()

    def outcomes(self) -> int:
        """Outputs received so far, labels' included (a drain watches it grow)."""
        with self._lock:
            found = sum(len(i.decisions) + len(i.invalid_reasons) + i.dead_lettered for i in self._items.values())
        return found + self.labels.outcomes()

    def settled(self) -> bool:
        """Every publish is confirmed (or failed) and every transaction and label has an outcome or is parked."""
        with self._lock:
            done = all((i.settled or i.parked) and i.confirmed + i.failed >= i.copies for i in self._items.values())
        return done and self.labels.settled()

    def sent_at_ms(self, transaction_id: str) -> int | None:
        """When the transaction was first published (None if not yet): a label is scheduled after it."""
        with self._lock:
            item = self._items.get(transaction_id)
            return None if item is None else item.published_at_ms

    def recent_latency_ms(self) -> float | None:
        with self._lock:
            return percentile(list(self._recent), 50)

    def valid_ids(self) -> list[str]:
        with self._lock:
            return [k for k, i in self._items.items() if i.valid]

    def latencies(self) -> dict[str, float]:
        """Publish -> first decision, in ms, by transaction id (decided ones only)."""
        with self._lock:
            return {k: i.latency_ms for k, i in self._items.items() if i.latency_ms is not None}

    def decisions(self) -> dict[str, list[bytes]]:
        """The decision copies received, by transaction id (decided ones only)."""
        with self._lock:
            return {k: list(i.decisions) for k, i in self._items.items() if i.decisions}

    def late_ids(self) -> set[str]:
        """Transactions whose decision was flagged late."""
        with self._lock:
            return {k for k, i in self._items.items() if i.late}

    def counts(self) -> dict[str, int]:
        """The figures of the live progress line."""
        with self._lock:
            items = list(self._items.values())
            return {
                "sent": self.messages_sent,
                "published": sum(i.confirmed for i in items),
                "publish_failed": sum(i.failed for i in items),
                "decided": sum(1 for i in items if i.decisions),
                "invalid": sum(1 for i in items if i.invalid_reasons),
                "dead_lettered": sum(1 for i in items if i.dead_lettered),
                "pending": sum(1 for i in items if i.confirmed and not i.settled and not i.parked),
            }

    def summary(self) -> dict[str, Any]:
        """Accounting (per transaction), quality against the labels, and latency percentiles."""
        counts = self.counts()
        with self._lock:
            items = list(self._items.values())
            invalid_without_reason = self.invalid_without_reason
        valid = [i for i in items if i.valid]
        poison = [i for i in items if not i.valid]
        decided = [i for i in valid if i.decisions]
        labelled = [i for i in decided if i.message.is_fraud is not None and i.outcome]
        caught = [i for i in labelled if i.message.is_fraud and i.outcome in POSITIVE]
        missed = [i for i in labelled if i.message.is_fraud and i.outcome not in POSITIVE]
        tp, fn = len(caught), len(missed)
        fp = sum(1 for i in labelled if not i.message.is_fraud and i.outcome in POSITIVE)
        outcomes = Counter(i.outcome for i in decided if i.outcome)
        latencies = [i.latency_ms for i in items if i.latency_ms is not None]
        lat = {q: percentile(latencies, q) for q in (50, 95, 99)}
        return {
            **counts,
            "transactions": len(valid),
            "poison": len(poison),
            "lost": counts["pending"],
            "decision_copies": sum(len(i.decisions) for i in decided),
            "duplicates": sum(max(0, len(i.decisions) - 1) + max(0, len(i.invalid_reasons) - 1) for i in items),
            "inconsistent_decisions": sum(1 for i in decided if len(set(i.decisions)) > 1),
            "late": sum(1 for i in decided if i.late),
            "valid_on_invalid": sum(1 for i in valid if i.invalid_reasons),
            "poison_decided": sum(1 for i in poison if i.decisions),
            "invalid_without_reason": invalid_without_reason,
            "invalid_kinds": dict(sorted(Counter(k for i in items for k in i.invalid_kinds[:1]).items())),
            "rejected_kinds": dict(sorted(Counter(i.message.corruption or "?" for i in poison
                                                  if i.invalid_reasons).items())),
            "redriven": sum(1 for i in items if i.redriven),
            "still_dead_lettered": sum(1 for i in items if i.parked and not i.settled),
            "decisions": {k: outcomes.get(k, 0) for k in ("allow", "review", "block")},
            "fraud_labelled": tp + fn,
            "true_positives": tp,
            "false_positives": fp,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "decisions_by_rule": dict(sorted(Counter(r for i in decided for r in i.rules).items())),
            "decisions_with_rules": sum(1 for i in decided if i.rules),
            "rule_sets": dict(sorted(Counter(str(i.rule_set) for i in decided if i.rule_set).items())),
            "frauds_hit_by_rules": dict(sorted(Counter(i.message.scenario for i in caught if i.rules).items())),
            "caught_by_scenario": dict(Counter(i.message.scenario for i in caught)),
            "missed_by_scenario": dict(Counter(i.message.scenario for i in missed)),
            "e2e_p50_ms": _ms(lat[50]),
            "e2e_p95_ms": _ms(lat[95]),
            "e2e_p99_ms": _ms(lat[99]),
            "e2e_max_ms": _ms(max(latencies) if latencies else None),
            **self.labels.summary(),
        }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)
