"""What the label function did with labels just published: applied, unchanged, duplicate, held,
parked.

`txguard label --wait` publishes, then reads the label function's log (one JSON line per delivery:
`label_id`, `status`; txguard.enrichment.label_applier) from where it ended before the publish,
until every published label id has a final status or the wait is over. `local up --keep` exports
the log's path as TXGUARD_LABEL_LOG.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from txguard.console.label_outcomes import FINAL, MEANING
from txguard.local.logtail import LogTail

__all__ = ["MEANING", "LabelOutcomes"]


@dataclass
class LabelOutcomes:
    """Each expected label id's final status, read from the label function's log."""

    path: Path
    expected: set[str] = field(default_factory=set)
    status: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    _tail: LogTail | None = None

    def start(self) -> LabelOutcomes:
        """Mark where the log ends now: only deliveries after this point count."""
        self._tail = LogTail(self.path, self._line, from_end=True)
        return self

    def expect(self, label_ids: Iterable[str]) -> None:
        self.expected.update(label_ids)

    def _line(self, entry: dict[str, Any]) -> None:
        label_id, status = entry.get("label_id"), entry.get("status")
        if label_id in self.expected and status in FINAL:
            self.status[str(label_id)] = FINAL[str(status)]
            if entry.get("reason"):
                self.reasons[str(label_id)] = str(entry["reason"])

    def wait(self, timeout_s: float, interval_s: float = 0.2) -> dict[str, int]:
        assert self._tail is not None, "start() before publishing"
        deadline = time.monotonic() + timeout_s
        while True:
            self._tail.poll()
            if self.expected <= self.status.keys() or time.monotonic() >= deadline:
                return self.counts()
            time.sleep(interval_s)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys([*dict.fromkeys(FINAL.values()), "pending"], 0)
        for label_id in self.expected:
            out[self.status.get(label_id, "pending")] += 1
        return out
