"""What became of every message of one scenario: decided, invalid, dead-lettered, redriven, lost.

The consumers of the local stack feed it (`on_decision`, `on_invalid`, `on_dead_letter`: the
Tracker's interface, so `LocalStack` can use it as its tracker). Unlike the Tracker it counts per
*transaction*, not per message: a transaction published twice (distinct Pub/Sub messages, one
transaction id) is decided once if it has at least one decision, and its decision copies must be
byte-identical. Poison messages have no transaction id and are matched by content.

`lost` = a transaction (or poison message) whose publish was confirmed and that has no outcome
when the scenario ends: not decided, not on `invalid`, not waiting on the dead-letter topic.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from txguard.contract import names
from txguard.publisher import Outgoing


def content_key(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class _Item:
    """One transaction (all its copies) or one poison message."""

    valid: bool
    kind: str | None = None  # poison kind
    copies: int = 0  # messages sent
    confirmed: int = 0
    failed: int = 0
    decisions: list[bytes] = field(default_factory=list)
    invalid_reasons: list[str] = field(default_factory=list)
    dead_lettered: int = 0
    redriven: int = 0


class Ledger:
    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self._lock = threading.Lock()
        self._items: dict[str, _Item] = {}
        self._by_content: dict[str, str] = {}
        self.messages_sent = 0
        self.invalid_without_reason = 0

    # publisher side ------------------------------------------------------------------------
    @staticmethod
    def _key(message: Outgoing) -> str:
        return message.transaction_id if message.transaction_id else "poison:" + content_key(message.data)

    def sent(self, message: Outgoing, _published_at_ms: int = 0) -> None:
        key = self._key(message)
        with self._lock:
            self.messages_sent += 1
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = _Item(valid=message.expected_valid, kind=message.corruption)
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

    # consumer side (the Tracker's interface) ---------------------------------------------------
    # Each returns whether the output belongs to this ledger (the router counts the rest).
    def on_decision(self, data: bytes, attributes: dict[str, str], _now_ms: int | None = None) -> bool:
        try:
            tx_id = str(json.loads(data)["transaction_id"])
        except (ValueError, KeyError, TypeError):
            tx_id = attributes.get(names.ATTR_TRANSACTION_ID, "")
        with self._lock:
            item = self._items.get(tx_id)
            if item is None:
                return False
            item.decisions.append(bytes(data))
            return True

    def on_invalid(self, data: bytes, attributes: dict[str, str], _now_ms: int | None = None) -> bool:
        with self._lock:
            key = self._by_content.get(content_key(data))
            if key is None:
                return False
            reason = attributes.get(names.ATTR_REASON, "")
            if not reason:
                self.invalid_without_reason += 1
            self._items[key].invalid_reasons.append(reason)
            return True

    def on_dead_letter(self, data: bytes, attributes: dict[str, str], _now_ms: int | None = None) -> bool:
        with self._lock:
            key = self._by_content.get(content_key(data))
            if key is None:
                return False
            self._items[key].dead_lettered += 1
            return True

    def on_redriven(self, data: bytes) -> bool:
        with self._lock:
            key = self._by_content.get(content_key(data))
            if key is None:
                return False
            self._items[key].redriven += 1
            return True

    # reading -------------------------------------------------------------------------------
    def pending(self) -> int:
        """Transactions / poison messages without an outcome yet (not dead-lettered either)."""
        with self._lock:
            return sum(1 for i in self._items.values() if not self._settled(i) and not self._parked(i))

    def outcomes(self) -> int:
        with self._lock:
            return sum(len(i.decisions) + len(i.invalid_reasons) + i.dead_lettered for i in self._items.values())

    @staticmethod
    def _settled(item: _Item) -> bool:
        return bool(item.decisions or item.invalid_reasons) or (item.copies > 0 and item.failed == item.copies)

    @staticmethod
    def _parked(item: _Item) -> bool:
        """On the dead-letter topic and not (yet) redriven: accounted for, not decided."""
        return item.dead_lettered > item.redriven

    def valid_ids(self) -> list[str]:
        with self._lock:
            return [k for k, i in self._items.items() if i.valid]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            items = list(self._items.values())
            valid = [i for i in items if i.valid]
            poison = [i for i in items if not i.valid]
            decided = [i for i in valid if i.decisions]
            inconsistent = sum(1 for i in decided if len(set(i.decisions)) > 1)
            invalid_kinds = Counter(i.kind or "?" for i in poison if i.invalid_reasons)
            lost = sum(1 for i in items if i.confirmed and not self._settled(i) and not self._parked(i))
            return {
                "sent": self.messages_sent,
                "transactions": len(valid),
                "poison": len(poison),
                "publish_failed": sum(i.failed for i in items),
                "decided": len(decided),
                "decision_copies": sum(len(i.decisions) for i in decided),
                "inconsistent_decisions": inconsistent,
                "invalid": sum(1 for i in items if i.invalid_reasons),
                "valid_on_invalid": sum(1 for i in valid if i.invalid_reasons),
                "poison_decided": sum(1 for i in poison if i.decisions),
                "invalid_without_reason": self.invalid_without_reason,
                "invalid_kinds": dict(sorted(invalid_kinds.items())),
                "dead_lettered": sum(1 for i in items if i.dead_lettered),
                "redriven": sum(1 for i in items if i.redriven),
                "still_dead_lettered": sum(1 for i in items if self._parked(i) and not self._settled(i)),
                "lost": lost,
            }
