"""The labels of a stream, in its ledger: published, applied by the label function, parked, or lost.

A stream's `Ledger` (txguard.local.ledger) holds one `LabelBook`: the label publisher says what it
sent (`sent`, `confirmed`), the label function's log says what it did with each label id
(`on_status`: `applied`, `unchanged`, `duplicate` are acknowledged, the label is in its
transaction's ledger; `held` is acknowledged and kept for review, nothing counted), and malformed or refused labels come back on `invalid`, dead-lettered ones
on `labels-dead-letter`, both matched by their bytes. Counts are per label (all copies of one
label id, or one malformed message), like the ledger's per transaction:

- `labels_applied`: labels the label function acknowledged as recorded (whatever they changed);
- `labels_held`: labels it held for review (over a limit) and never applied;
- `labels_lost`: published, confirmed, and neither applied, nor on `invalid`, nor dead-lettered.
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

# txguard.enrichment.label_applier.LabelStatus values that mean "recorded, acked" (the others park or retry).
ACKED = frozenset({"applied", "unchanged", "duplicate"})
HELD = "held"  # acked too, but kept for review: nothing counted until released (txguard labels held)


def _content(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def label_id_of(message: Outgoing) -> str | None:
    """The label id of a label meant to be valid (None for a malformed one: matched by content)."""
    if not message.expected_valid:
        return None
    try:
        return str(json.loads(message.data)["label_id"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class _Label:
    message: Outgoing
    label_id: str | None
    copies: int = 0
    confirmed: int = 0
    failed: int = 0
    statuses: list[str] = field(default_factory=list)  # from the label function's log
    invalid_reasons: list[str] = field(default_factory=list)
    invalid_kinds: list[str] = field(default_factory=list)  # error_kind of each copy on `invalid`
    dead_lettered: int = 0

    @property
    def applied(self) -> bool:
        return any(s in ACKED for s in self.statuses)

    @property
    def held(self) -> bool:
        return HELD in self.statuses and not self.applied

    @property
    def settled(self) -> bool:
        return (self.applied or self.held or bool(self.invalid_reasons)
                or (self.copies > 0 and self.failed == self.copies))


class LabelBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, _Label] = {}
        self._by_content: dict[str, str] = {}
        self.messages_sent = 0

    @staticmethod
    def _key(message: Outgoing) -> str:
        label_id = label_id_of(message)
        return f"label:{label_id}" if label_id is not None else "bad-label:" + _content(message.data)

    def sent(self, message: Outgoing) -> None:
        key = self._key(message)
        with self._lock:
            self.messages_sent += 1
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = _Label(message, label_id_of(message))
            item.copies += 1
            self._by_content[_content(message.data)] = key

    def confirmed(self, message: Outgoing, exc: BaseException | None) -> None:
        with self._lock:
            item = self._items.get(self._key(message))
            if item is not None:
                if exc is None:
                    item.confirmed += 1
                else:
                    item.failed += 1

    def on_status(self, label_id: str, status: str) -> bool:
        """A label function log line: `status` of `label_id`. Parking statuses arrive on `invalid` instead."""
        with self._lock:
            item = self._items.get(f"label:{label_id}")
            if item is None:
                return False
            if status in ACKED or status == HELD:
                item.statuses.append(status)
            return True

    def on_invalid(self, data: bytes, attributes: dict[str, str]) -> bool:
        with self._lock:
            item = self._by_data(data)
            if item is None:
                return False
            item.invalid_reasons.append(attributes.get(names.ATTR_REASON, ""))
            item.invalid_kinds.append(attributes.get(names.ATTR_ERROR_KIND, ""))
            return True

    def on_dead_letter(self, data: bytes) -> bool:
        with self._lock:
            item = self._by_data(data)
            if item is None:
                return False
            item.dead_lettered += 1
            return True

    def _by_data(self, data: bytes) -> _Label | None:
        key = self._by_content.get(_content(data))
        return None if key is None else self._items[key]

    # reading -------------------------------------------------------------------------------
    def pending(self) -> int:
        with self._lock:
            return sum(1 for i in self._items.values() if not i.settled and not i.dead_lettered)

    def outcomes(self) -> int:
        with self._lock:
            return sum(len(i.statuses) + len(i.invalid_reasons) + i.dead_lettered for i in self._items.values())

    def settled(self) -> bool:
        with self._lock:
            return all((i.settled or i.dead_lettered) and i.confirmed + i.failed >= i.copies
                       for i in self._items.values())

    def invalid_kinds(self) -> dict[str, list[str]]:
        """The `error_kind` of each label on `invalid`, by label id (labels with an id only)."""
        with self._lock:
            return {i.label_id: list(i.invalid_kinds) for i in self._items.values() if i.label_id and i.invalid_kinds}

    def statuses(self) -> dict[str, list[str]]:
        """The label function's statuses, by label id (applied labels only)."""
        with self._lock:
            return {i.label_id: list(i.statuses) for i in self._items.values() if i.label_id and i.statuses}

    def summary(self) -> dict[str, Any]:
        with self._lock:
            items = list(self._items.values())
            sent = self.messages_sent
        valid = [i for i in items if i.label_id is not None]
        return {
            "labels_sent": sent,
            "labels_published": sum(1 for i in items if i.confirmed),
            "labels_applied": sum(1 for i in valid if i.applied),
            "labels_held": sum(1 for i in valid if i.held),
            "labels_invalid": sum(1 for i in items if i.invalid_reasons),
            "labels_invalid_without_reason": sum(1 for i in items if i.invalid_reasons and not all(i.invalid_reasons)),
            "labels_dead_lettered": sum(1 for i in items if i.dead_lettered),
            "labels_lost": sum(1 for i in items if i.confirmed and not i.settled and not i.dead_lettered),
            "label_statuses": dict(sorted(Counter(s for i in items for s in i.statuses).items())),
            "labels_valid_on_invalid": sum(1 for i in valid if i.invalid_reasons),
        }
