"""Late counterparty updates, and the decisions they missed (`txguard late-updates`).

The enrichment and label functions log one `late_update` line per counterparty, device or
wallet-label update that was applied after reads that should have included it
(txguard.enrichment.counterparty.lateness). Each line carries the window of event times whose
reads may have missed it, [visible_from, read_through). Here:

- `read_lines` reads those lines from a local function log or a Cloud Logging export
  (`gcloud logging read 'jsonPayload.event="late_update"' --format=json`);
- `decisions_in_window` lists the decisions at the entity within the window (the history store's
  processed records, `HistoryStore.processed_at`) and, with a counterparty store, recomputes each
  one's counterparty features from the store as it is now: `missed` says the stored ones differ,
  i.e. the decision was made without an update that has landed since. A decision to revisit is a
  `missed` one, first of all an `allow` at a counterparty whose frauds it did not count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from txguard.contract.logs import LATE_UPDATE_EVENT
from txguard.contract.models import Transaction
from txguard.enrichment.history.record import load_decision
from txguard.features.counterparty_windows import counterparty_features


@dataclass(frozen=True)
class LateLine:
    """One `late_update` log line of the enrichment or label function."""

    kind: str  # counterparty, device, wallet
    entity_id: str
    entity: str  # the store's key (`c...`, `d...`, `w...`)
    transaction_id: str
    label_id: str | None
    event_time: float
    visible_from: float
    read_through: float
    lag_s: float
    logged_at: float | None  # the line's wall-clock time (an export may keep it outside the payload only)

    def explains(self, kind: str, entity_id: str | None, t: float) -> bool:
        """Whether a read of `entity_id` at event time `t` may have missed this update."""
        return self.kind == kind and self.entity_id == entity_id and self.visible_from <= t < self.read_through

    def as_dict(self) -> dict[str, Any]:
        return {"entity": self.kind, "entity_id": self.entity_id, "transaction_id": self.transaction_id,
                "label_id": self.label_id, "event_time": _iso(self.event_time), "visible_from": _iso(self.visible_from),
                "read_through": _iso(self.read_through), "lag_s": self.lag_s}


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _iso(t: float) -> str:
    from datetime import UTC

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse(entry: Mapping[str, Any]) -> LateLine | None:
    """A `late_update` line (its fields at the top level or under `jsonPayload`), None for any other."""
    payload = entry.get("jsonPayload", entry)
    if payload.get("event") != LATE_UPDATE_EVENT:
        return None
    kind = str(payload.get("entity"))
    stamp = payload.get("time") or entry.get("timestamp")
    try:
        return LateLine(kind, str(payload[f"{kind}_id"]), str(payload["entity_key"]), str(payload["transaction_id"]),
                        payload.get("label_id"), epoch(payload["event_time"]), epoch(payload["visible_from"]),
                        epoch(payload["read_through"]), float(payload["lag_s"]), epoch(stamp) if stamp else None)
    except (KeyError, TypeError, ValueError):
        return None


def read_lines(paths: Iterable[str | Path], prefix: str = "") -> list[LateLine]:
    """The late updates in log files (missing files are skipped), at entities whose id starts with `prefix`."""
    from txguard.ops import logfile

    out = []
    for path in paths:
        if not Path(path).is_file():
            continue
        for entry in logfile.events(path=path, event=LATE_UPDATE_EVENT):
            line = parse(entry)
            if line is not None and line.entity_id.startswith(prefix):
                out.append(line)
    return out


def distinct(lines: Iterable[LateLine]) -> list[LateLine]:
    """One line per (update, entity): a redelivery that took an update over reports it again."""
    seen: dict[tuple[str, str, str, str | None], LateLine] = {}
    for line in lines:
        seen.setdefault((line.kind, line.entity_id, line.transaction_id, line.label_id), line)
    return list(seen.values())


@dataclass(frozen=True)
class Affected:
    """A decision at the late update's entity, within its window."""

    transaction_id: str
    event_time: float
    outcome: str | None
    score: float | None
    missed: bool | None  # its counterparty features differ from a read now (None: not recomputed)

    def as_dict(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "event_time": _iso(self.event_time), "outcome": self.outcome,
                "score": self.score, "missed": self.missed}


def decisions_in_window(history: Any, line: LateLine, counterparties: Any = None,
                        limit: int = 1000) -> list[Affected]:
    """The decisions at `line`'s entity with an event time in its window; with `counterparties` (a
    counterparty store, read only), whether each one's counterparty features differ from a read now."""
    out = []
    for record in history.processed_at(line.entity, line.visible_from, line.read_through, limit):
        decision = load_decision(record.get("decision"))
        missed = None
        stored = (record.get("counterparty") or {}).get("features")
        if counterparties is not None and record.get("transaction") and stored is not None:
            tx = Transaction.model_validate(record["transaction"])
            missed = counterparty_features(counterparties.snapshot(tx), tx).model_dump(mode="json") != stored
        out.append(Affected(str(record["transaction_id"]), float(record.get("event_time") or 0.0),
                            decision.outcome.value if decision else None, decision.score if decision else None,
                            missed))
    return out
