"""What the publisher puts on the wire, and the two ways it alters a stream on purpose.

- `shift_to_end_at`: a simulated stream published live must not carry future timestamps (the
  contract rejects them) nor months-old ones (features would see a dormant wallet): the whole
  stream is shifted so that its last event is "now", keeping the relative spacing.
- `corrupt`: a fraction of messages can be made invalid the ways real producers get it wrong
  (not JSON, missing field, unknown currency, negative amount, future timestamp, extra field),
  so the validation path and the `invalid` topic are exercised; they carry no transaction id.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from txguard.simulator.core import LabelledTransaction


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish, with what the publisher knows about it (labels, validity)."""

    data: bytes
    ordering_key: str
    event_time: float  # epoch seconds of the transaction (pacing by --speed)
    transaction_id: str | None = None
    is_fraud: int | None = None
    scenario: str | None = None
    corruption: str | None = None  # set when the message was made invalid on purpose
    expected_valid: bool = True
    line: int | None = None  # where a replayed row came from (1-based line of its file)
    problem: str | None = None  # why the contract rejects it (replayed rows only)


def from_labelled(item: LabelledTransaction) -> Outgoing:
    tx = item.tx
    return Outgoing(
        data=tx.model_dump_json().encode(),
        ordering_key=tx.wallet_id,
        event_time=tx.timestamp.timestamp(),
        transaction_id=tx.transaction_id,
        is_fraud=item.is_fraud,
        scenario=item.scenario,
    )


def shift_to_end_at(items: Sequence[LabelledTransaction], end: datetime | None = None) -> list[LabelledTransaction]:
    """The same stream, every timestamp moved by one offset so that the last one is `end` (now)."""
    if not items:
        return []
    end = end or datetime.now(UTC)
    last = max(item.tx.timestamp for item in items)
    offset: timedelta = end - last
    return [
        LabelledTransaction(
            item.tx.model_copy(update={"timestamp": item.tx.timestamp + offset}), item.is_fraud, item.scenario
        )
        for item in items
    ]


CORRUPTIONS: tuple[str, ...] = (
    "not_json",
    "missing_field",
    "bad_currency",
    "negative_amount",
    "future_timestamp",
    "extra_field",
)


def _mutate(doc: dict[str, object], kind: str) -> bytes:
    if kind == "not_json":
        return json.dumps(doc).encode()[:-7]  # truncated document
    if kind == "missing_field":
        doc.pop("amount", None)
    elif kind == "bad_currency":
        doc["currency"] = "XXZ"
    elif kind == "negative_amount":
        doc["amount"] = -abs(float(doc.get("amount", 1.0)))  # type: ignore[arg-type]
    elif kind == "future_timestamp":
        doc["timestamp"] = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    elif kind == "extra_field":
        doc["card_number"] = "4111111111111111"
    else:
        raise ValueError(f"unknown corruption {kind!r}")
    return json.dumps(doc, separators=(",", ":")).encode()


def corrupt(message: Outgoing, rng: random.Random, kind: str | None = None) -> Outgoing:
    """An invalid copy of `message` (same ordering key and time, no transaction id to decide)."""
    kind = kind or rng.choice(CORRUPTIONS)
    doc = json.loads(message.data)
    # A fresh id so an invalid copy never collides with a valid transaction's idempotency key.
    doc["transaction_id"] = f"bad-{rng.getrandbits(48):012x}"
    return replace(
        message,
        data=_mutate(doc, kind),
        transaction_id=None,
        is_fraud=None,
        scenario=None,
        corruption=kind,
        expected_valid=False,
    )


def payload_problem(data: bytes) -> str | None:
    """Why the contract would reject these bytes (naming the field), or None if it accepts them.

    The publisher checks replayed rows with the enrichment function's own validation, so a user
    learns about a bad row before publishing it, not from the `invalid` topic afterwards.
    """
    from txguard.contract.models import TRANSACTION_ADAPTER

    return contract_problem(TRANSACTION_ADAPTER, data)


def contract_problem(adapter: Any, data: bytes) -> str | None:
    """Why `adapter` (a pydantic TypeAdapter of the contract) rejects `data`: the first field and
    its message, and how many more problems there are; None if it accepts them."""
    from pydantic import ValidationError

    try:
        adapter.validate_json(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"]) or "(row)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"field '{where}': {first['msg']}{more}"
    return None


def is_valid_payload(data: bytes) -> bool:
    """Would the contract accept these bytes?"""
    return payload_problem(data) is None

