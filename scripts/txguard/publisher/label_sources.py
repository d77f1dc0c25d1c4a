"""Label events for the `labels` topic: read from a file (each row checked first) or simulated.

A label file is JSONL or CSV of `LabelEvent` fields (`txguard simulate --labels-out` writes one).
Every row is validated with the contract the label function applies, so a bad row is reported
with its line number before anything is published. Simulated labels are those of a simulation
(`Simulation.label_events`) known by now: chargebacks days to weeks late, analyst verdicts
within hours, a few reversals.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from txguard.contract import names
from txguard.contract.models import LABEL_ADAPTER, LabelEvent
from txguard.publisher.messages import Outgoing, contract_problem
from txguard.publisher.sources import _rows


def label_problem(data: bytes) -> str | None:
    """Why the contract would reject these bytes as a LabelEvent (naming the field), or None."""
    return contract_problem(LABEL_ADAPTER, data)


def label_topic(data: bytes) -> str:
    """The topic a label message goes to: its kind's route (txguard.contract.names.LABEL_ROUTES: analysts'
    verdicts on `labels-analyst`, chargebacks and reversals on `labels`). Bytes that name no known kind go to
    the processor feed's topic, where the label function parks them with the reason."""
    try:
        kind = json.loads(data).get("kind")
        return names.label_route_of_kind(str(kind)).topic
    except (ValueError, AttributeError, KeyError):
        return names.LABELS_TOPIC


def from_label(label: LabelEvent, line: int | None = None) -> Outgoing:
    return Outgoing(data=label.model_dump_json().encode(), ordering_key="", event_time=label.known_at.timestamp(),
                    transaction_id=label.transaction_id, line=line)


def read_labels(path: str | Path) -> list[Outgoing]:
    """Every row of a label file as a message; a row the contract rejects carries its line and problem."""
    out: list[Outgoing] = []
    for line, doc in _rows(Path(path)):
        if isinstance(doc, bytes):
            out.append(Outgoing(doc, "", 0.0, expected_valid=False, line=line, problem="not a JSON object"))
            continue
        data = json.dumps(doc, separators=(",", ":"), default=str).encode()
        problem = label_problem(data)
        if problem is None:
            out.append(from_label(LABEL_ADAPTER.validate_json(data), line))
        else:
            out.append(Outgoing(data, "", 0.0, expected_valid=False, line=line, problem=problem))
    return out


def parse_labels(path: str | Path) -> list[LabelEvent]:
    """The LabelEvents of a file; `ValueError` naming the first bad row (line and field)."""
    labels = []
    for message in read_labels(path):
        if message.problem is not None:
            raise ValueError(f"{path}: line {message.line}: {message.problem}")
        labels.append(LABEL_ADAPTER.validate_json(message.data))
    return labels


def simulated_labels(days: int, wallets: int, seed: int, start: datetime, until: datetime | None = None) -> list[Outgoing]:
    """The labels of a simulation known by `until` (default now), in the order they became known."""
    from txguard.simulator.core import Simulation

    sim = Simulation(days=days, wallets=wallets, seed=seed, start=start)
    return [from_label(label) for label in sim.label_events(until or datetime.now(UTC))]
