"""The poison corpus: valid transactions made malformed in every way a producer gets it wrong.

Each kind yields bytes that shared/txguard/enrichment/envelope.py must reject (`InvalidEventError`) so that the
pipeline parks them on `invalid` with a reason and acks them. Every poison message is unique
(it carries its own `bad-...` transaction id, or unique bytes), so the ledger can match what
comes out on `invalid` to what went in, by content.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from txguard.enrichment.envelope import MAX_PAYLOAD_BYTES
from txguard.publisher import Outgoing


def _dump(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _not_json(doc: dict[str, object]) -> bytes:
    return _dump(doc)[:-9]  # truncated mid-document


def _not_utf8(doc: dict[str, object]) -> bytes:
    return _dump(doc).replace(b'"wallet_id":"', b'"wallet_id":"\xff\xfe', 1)


def _missing_field(doc: dict[str, object]) -> bytes:
    doc.pop("amount", None)
    return _dump(doc)


def _extra_field(doc: dict[str, object]) -> bytes:
    doc["card_number"] = "4111111111111111"
    return _dump(doc)


def _wrong_type(doc: dict[str, object]) -> bytes:
    doc["amount"] = {"value": doc.get("amount")}
    return _dump(doc)


def _nan(doc: dict[str, object]) -> bytes:
    return _dump(doc).replace(f'"amount":{json.dumps(doc["amount"])}'.encode(), b'"amount":NaN', 1)


def _infinity(doc: dict[str, object]) -> bytes:
    return _dump(doc).replace(f'"amount":{json.dumps(doc["amount"])}'.encode(), b'"amount":Infinity', 1)


def _negative_amount(doc: dict[str, object]) -> bytes:
    doc["amount"] = -abs(float(doc["amount"]))  # type: ignore[arg-type]
    return _dump(doc)


def _huge_amount(doc: dict[str, object]) -> bytes:
    doc["amount"] = 1e15
    return _dump(doc)


def _far_future(doc: dict[str, object]) -> bytes:
    doc["timestamp"] = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
    return _dump(doc)


def _oversized(doc: dict[str, object]) -> bytes:
    doc["padding"] = "x" * (MAX_PAYLOAD_BYTES + 1024)
    return _dump(doc)


def _wrong_root(doc: dict[str, object]) -> bytes:
    return _dump({"transactions": [doc]})


KINDS: dict[str, Callable[[dict[str, object]], bytes]] = {
    "not_json": _not_json,
    "not_utf8": _not_utf8,
    "missing_field": _missing_field,
    "extra_field": _extra_field,
    "wrong_type": _wrong_type,
    "nan_amount": _nan,
    "infinity_amount": _infinity,
    "negative_amount": _negative_amount,
    "huge_amount": _huge_amount,
    "far_future_timestamp": _far_future,
    "oversized": _oversized,
    "wrong_root": _wrong_root,
}


def make_poison(message: Outgoing, kind: str, serial: int) -> Outgoing:
    """A malformed copy of a valid `message` (same wallet and time, a fresh `bad-` id, no label)."""
    doc = json.loads(message.data)
    doc["transaction_id"] = f"bad-{kind}-{serial:06d}"
    return replace(message, data=KINDS[kind](doc), transaction_id=None, is_fraud=None, scenario=None,
                   corruption=kind, expected_valid=False)


def mix(messages: Sequence[Outgoing], fraction: float, seed: int = 0) -> list[Outgoing]:
    """`messages` with about `fraction` of them replaced by poison, the kinds taken in turn
    (so every kind appears as soon as there are as many poison messages as kinds)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError("fraction must be in [0, 1)")
    rng = random.Random(seed)
    target = round(len(messages) * fraction)
    picked = set(rng.sample(range(len(messages)), target)) if target else set()
    kinds = list(KINDS)
    out: list[Outgoing] = []
    serial = 0
    for i, m in enumerate(messages):
        if i in picked:
            out.append(make_poison(m, kinds[serial % len(kinds)], serial))
            serial += 1
        else:
            out.append(m)
    return out
