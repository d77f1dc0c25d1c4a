"""What became of every published message: decided, invalid, dead-lettered, or still nowhere.

Fed from both ends: the publisher says what it sent (and when), the consumers say what came out
(`decisions`, `invalid`, the dead-letter inspection subscription). Decisions are matched by
transaction id; invalid and dead-lettered messages carry the original bytes, so they are matched
by content. Redelivered outputs (at-least-once) are counted once, as duplicates.

`lost` = published, confirmed by Pub/Sub, and no outcome when the drain ends.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from txguard.publisher import Outgoing

POSITIVE = frozenset({"block", "review"})
Select = Callable[[Outgoing], bool] | None  # a subset of the sent messages (one bench stage)


def _key(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass
class _Sent:
    message: Outgoing
    published_at_ms: int
    confirmed: bool = False
    failed: bool = False
    outcome: str | None = None  # "decided" | "invalid" | "dead_lettered"
    decision: str | None = None
    latency_ms: float | None = None  # published -> decision received


class Tracker:
    def __init__(self, window: int = 200) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, _Sent] = {}
        self._by_data: dict[bytes, _Sent] = {}
        self._sent: list[_Sent] = []
        self._recent: deque[float] = deque(maxlen=window)
        self.duplicates = 0
        self.unmatched: Counter[str] = Counter()
        self.invalid_kinds: Counter[str] = Counter()
        self.decision_timings: list[dict[str, float]] = []
        self.started = time.monotonic()

    # publisher side ------------------------------------------------------------------------
    def sent(self, message: Outgoing, published_at_ms: int) -> None:
        record = _Sent(message, published_at_ms)
        with self._lock:
            self._sent.append(record)
            if message.transaction_id:
                self._by_id[message.transaction_id] = record
            self._by_data[_key(message.data)] = record

    def confirmed(self, message: Outgoing, exc: BaseException | None) -> None:
        with self._lock:
            record = self._by_data.get(_key(message.data))
            if record is not None:
                record.confirmed = exc is None
                record.failed = exc is not None

    # consumer side -------------------------------------------------------------------------
    def _settle(self, record: _Sent | None, outcome: str, kind: str, now_ms: int) -> _Sent | None:
        if record is None:
            self.unmatched[kind] += 1
            return None
        if record.outcome is not None:
            self.duplicates += 1
            return None
        record.outcome = outcome
        latency = now_ms - record.published_at_ms
        if outcome == "decided":
            record.latency_ms = latency
            self._recent.append(latency)
        return record

    def on_decision(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> None:
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        try:
            doc = json.loads(data)
            tx_id, outcome = str(doc["transaction_id"]), str(doc["outcome"])
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self.unmatched["malformed_decision"] += 1
            return
        with self._lock:
            record = self._settle(self._by_id.get(tx_id), "decided", "decision", now_ms)
            if record is not None:
                record.decision = outcome
                timings = doc.get("timings")
                if isinstance(timings, dict):
                    self.decision_timings.append({k: float(v) for k, v in timings.items()
                                                  if isinstance(v, int | float)})

    def on_invalid(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> None:
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        with self._lock:
            record = self._settle(self._by_data.get(_key(data)), "invalid", "invalid", now_ms)
            if record is not None:
                self.invalid_kinds[attributes.get("error_kind", "?")] += 1

    def on_dead_letter(self, data: bytes, attributes: dict[str, str], now_ms: int | None = None) -> None:
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        with self._lock:
            self._settle(self._by_data.get(_key(data)), "dead_lettered", "dead_letter", now_ms)

    # reading -------------------------------------------------------------------------------
    def _records(self, select: Select) -> list[_Sent]:
        return self._sent if select is None else [r for r in self._sent if select(r.message)]

    def latencies_ms(self, select: Select = None) -> list[float]:
        """Every decided transaction's publish -> decision latency (the bench e2e histogram)."""
        with self._lock:
            return [r.latency_ms for r in self._records(select) if r.latency_ms is not None]

    def counts(self, select: Select = None) -> dict[str, int]:
        with self._lock:
            records = self._records(select)
            outcomes = Counter(r.outcome for r in records)
            return {
                "sent": len(records),
                "published": sum(1 for r in records if r.confirmed),
                "publish_failed": sum(1 for r in records if r.failed),
                "decided": outcomes["decided"],
                "invalid": outcomes["invalid"],
                "dead_lettered": outcomes["dead_lettered"],
                "pending": sum(1 for r in records if r.confirmed and r.outcome is None),
            }

    def in_flight(self) -> int:
        """Sent and without an outcome yet (the backlog a bench watches)."""
        with self._lock:
            return sum(1 for r in self._sent if r.outcome is None and not r.failed)

    def settled(self) -> bool:
        """Every confirmed message has an outcome (and no publish is still unconfirmed)."""
        with self._lock:
            return all(r.outcome is not None or r.failed for r in self._sent) and all(
                r.confirmed or r.failed for r in self._sent
            )

    def recent_latency_ms(self) -> float | None:
        with self._lock:
            return percentile(list(self._recent), 50)

    def summary(self, select: Select = None) -> dict[str, object]:
        """Final figures: outcomes, quality against the simulator's labels, latency percentiles."""
        counts = self.counts(select)
        with self._lock:
            records = self._records(select)
            decisions = Counter(r.decision for r in records if r.decision)
            labelled = [r for r in records if r.decision and r.message.is_fraud is not None]
            tp = sum(1 for r in labelled if r.message.is_fraud and r.decision in POSITIVE)
            fp = sum(1 for r in labelled if not r.message.is_fraud and r.decision in POSITIVE)
            fn = sum(1 for r in labelled if r.message.is_fraud and r.decision not in POSITIVE)
            missed_by_scenario = Counter(r.message.scenario for r in labelled
                                         if r.message.is_fraud and r.decision not in POSITIVE)
            caught_by_scenario = Counter(r.message.scenario for r in labelled
                                         if r.message.is_fraud and r.decision in POSITIVE)
            unexpected_invalid = sum(1 for r in records if r.outcome == "invalid" and r.message.expected_valid)
            injected_invalid = sum(1 for r in records if not r.message.expected_valid and r.confirmed)
            latencies = [r.latency_ms for r in records if r.latency_ms is not None]
            duplicates = self.duplicates
            unmatched = dict(self.unmatched)
            invalid_kinds = dict(self.invalid_kinds)
        lat = {q: percentile(latencies, q) for q in (50, 95, 99)}
        return {
            **counts,
            "lost": counts["pending"],
            "decisions": {k: decisions.get(k, 0) for k in ("allow", "review", "block")},
            "fraud_labelled": tp + fn,
            "true_positives": tp,
            "false_positives": fp,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "caught_by_scenario": dict(caught_by_scenario),
            "missed_by_scenario": dict(missed_by_scenario),
            "invalid_injected": injected_invalid,
            "invalid_kinds": invalid_kinds,
            "unexpected_invalid": unexpected_invalid,
            "duplicates": duplicates,
            "unmatched": unmatched,
            "e2e_p50_ms": _ms(lat[50]),
            "e2e_p95_ms": _ms(lat[95]),
            "e2e_p99_ms": _ms(lat[99]),
            "e2e_max_ms": _ms(max(latencies) if latencies else None),
        }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)
