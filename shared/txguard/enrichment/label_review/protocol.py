"""What the label limits need from a store: windowed counts, and held labels kept until reviewed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from txguard.contract.models import LABEL_ADAPTER, LabelEvent


@dataclass(frozen=True)
class HeldLabel:
    """A label held for review: the label as sent (validated), the route it came by, why it is held."""

    label: LabelEvent
    route: str
    reason: str
    held_at: float  # epoch seconds

    def to_json(self) -> str:
        return json.dumps({"label": json.loads(self.label.model_dump_json()), "route": self.route,
                           "reason": self.reason, "held_at": self.held_at}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> HeldLabel:
        doc: dict[str, Any] = json.loads(text)
        return cls(LABEL_ADAPTER.validate_python(doc["label"]), str(doc["route"]), str(doc["reason"]),
                   float(doc["held_at"]))


@runtime_checkable
class LabelReviewStore(Protocol):
    """Thread-safe: one instance per process."""

    def count(self, key: str, minute: int, window_minutes: int) -> int:
        """Add one to `key`'s bucket of `minute` and return its total over the `window_minutes` ending there
        (this minute's count comes from the atomic increment itself: concurrent labels each get their own)."""
        ...

    def hold(self, held: HeldLabel) -> None:
        """Keep a held label (idempotent per label id: a redelivery holds it once)."""
        ...

    def held(self) -> list[HeldLabel]:
        """Every label held and not yet released or discarded, oldest first."""
        ...

    def drop(self, label_id: str) -> None:
        """Forget a held label (released and applied, or discarded)."""
        ...

    def close(self) -> None: ...
