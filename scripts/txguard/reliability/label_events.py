"""The label set of the `labels` scenario: what real label feeds get wrong, built from its transactions.

Pure (no stack): `corpus` turns the scenario's transactions into label messages, each an
`Outgoing` whose `corruption` names what it exercises, and says which transactions are held back
(published only after their labels). Every valid label became known in the last hours before
`now` (from six hours to about three hours before, in the transactions' order), after its
transaction, so all of them land in today's or yesterday's buckets, which a snapshot reads in
full. The labels are published after the transactions: those that happened after a label became
known (the last hours of the stream) read their counterparty without it, as the replay would not,
and the label function logs each such label as a late update (txguard.enrichment.counterparty.lateness).
Each label comes from a source its route carries (txguard.contract.names.LabelRoute): analysts `analyst:a0`..`a3`, processors `processor:p0`..`p3`, spread so that no source nears the
label limits (txguard.enrichment.label_limits); `label_poisoning` is the scenario that goes past them.

| kind | what | expected |
|---|---|---|
| `chargeback` | a fraud verdict (a quarter of the transactions) | counted once |
| `analyst` then `chargeback` | two fraud verdicts of one transaction | counted once (the earliest) |
| `legit` then `chargeback` | an analyst clears it, a chargeback comes later | counted from the chargeback |
| `reversal` | a chargeback withdrawn; some published before the chargeback | not counted |
| `duplicate` | a third of the labels published twice | applied once, the copy `duplicate` |
| `not_seen_yet` | labels of transactions published after them | retried until the transaction is applied, then counted |
| `unknown_transaction` | a label of a transaction (and counterparty) nobody ever saw | retried, then on `invalid` (`unknown_transaction`) |
| malformed kinds (`MALFORMED`) | not JSON, a missing field, known before its transaction, ... | on `invalid` with the reason |
| `conflict` | a label id applied before, now with other content (phase 2) | on `invalid` (rejected) |
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from txguard.contract.models import LabelEvent, LabelKind, Transaction
from txguard.publisher import Outgoing
from txguard.publisher.label_sources import from_label

MALFORMED = ("not_json", "missing_field", "known_before_transaction", "verdict_on_reversal",
             "reversal_without_target", "unknown_kind")
HELD_BACK_EVERY = 10  # about one transaction in ten (the last of its wallet) is published after its labels
GHOSTS = 3  # labels of transactions (and counterparties) never published
SOURCES = 4  # analysts and processors the labels come from


@dataclass
class Corpus:
    first_wave: list[Outgoing] = field(default_factory=list)  # published after the first transactions
    conflicts: list[Outgoing] = field(default_factory=list)  # phase 2, once the first wave is applied
    held_back: set[str] = field(default_factory=set)  # transaction ids published after their labels
    valid: list[LabelEvent] = field(default_factory=list)  # every valid label (copies once), for the replay

    @property
    def malformed(self) -> int:
        return sum(1 for m in self.first_wave if not m.expected_valid) + len(self.conflicts)


def source_for(kind: LabelKind, n: int) -> str:
    """One of the analysts (their verdicts) or processors (chargebacks, reversals) the labels come from."""
    return f"analyst:a{n % SOURCES}" if kind is LabelKind.ANALYST else f"processor:p{n % SOURCES}"


def _label(tx: Transaction, suffix: str, kind: LabelKind, known: datetime, n: int = 0, **extra: object) -> LabelEvent:
    return LabelEvent(label_id=f"{tx.transaction_id}:{suffix}", transaction_id=tx.transaction_id,
                      wallet_id=tx.wallet_id, counterparty_id=tx.counterparty_id, device_id=tx.device_id,
                      transaction_time=tx.timestamp, known_at=max(known, tx.timestamp), kind=kind,
                      source=source_for(kind, n), **extra)


def _message(label: LabelEvent, what: str) -> Outgoing:
    return replace(from_label(label), corruption=what)


def _bad(data: bytes, what: str) -> Outgoing:
    return Outgoing(data, "", 0.0, corruption=what, expected_valid=False)


def corpus(transactions: list[Transaction], now: datetime, prefix: str) -> Corpus:
    out = Corpus()

    def add(label: LabelEvent, what: str, copies: int = 1) -> None:
        out.valid.append(label)
        out.first_wave.extend(_message(label, what if n == 0 else "duplicate") for n in range(copies))

    last_of_wallet = {tx.wallet_id: tx.transaction_id for tx in sorted(transactions, key=lambda t: t.timestamp)}
    for i, tx in enumerate(transactions):
        at = now - timedelta(hours=6) + timedelta(seconds=30 * i)  # known hours ago, in order
        n = zlib.crc32(tx.transaction_id.encode())  # which analyst or processor: spread evenly, not by i
        copies = 2 if i % 3 == 0 else 1
        # Held back: published after its labels, and last of its wallet (so it is not late either).
        if i % HELD_BACK_EVERY in (6, 7) and last_of_wallet[tx.wallet_id] == tx.transaction_id:
            out.held_back.add(tx.transaction_id)
        what = "not_seen_yet" if tx.transaction_id in out.held_back else None
        if i % 8 == 0:
            add(_label(tx, "an", LabelKind.ANALYST, at, n, is_fraud=True), what or "analyst", copies)
        if i % 4 == 0:
            add(_label(tx, "cb", LabelKind.CHARGEBACK, at + timedelta(seconds=30), n, is_fraud=True),
                what or "chargeback", copies)
        if i % 10 == 5:
            add(_label(tx, "ok", LabelKind.ANALYST, at, n, is_fraud=False), what or "legit")
            if i % 20 == 5:
                add(_label(tx, "cb", LabelKind.CHARGEBACK, at + timedelta(seconds=40), n, is_fraud=True),
                    what or "chargeback_after_legit")
        if i % 12 == 2:
            chargeback = _label(tx, "cb", LabelKind.CHARGEBACK, at, n, is_fraud=True)
            reversal = _label(tx, "rv", LabelKind.REVERSAL, at + timedelta(seconds=20), n,
                              reverses=chargeback.label_id)
            pair = [(reversal, "reversal_first"), (chargeback, "chargeback")] if i % 24 == 2 else [
                (chargeback, "chargeback"), (reversal, "reversal")]
            for label, kind in pair:
                add(label, what or kind, copies)
    template = transactions[0]
    for k in range(GHOSTS):
        ghost = template.model_copy(update={"transaction_id": f"{prefix}-ghost-{k}", "wallet_id": f"{prefix}-ghost-w{k}",
                                            "counterparty_id": f"{prefix}-never-seen-shop-{k}", "device_id": None})
        # Valid as a label, refused as a claim: txguard never applied its transaction (retried, then parked).
        ghost_label = _label(ghost, "cb", LabelKind.CHARGEBACK, now - timedelta(minutes=5), k, is_fraud=True)
        out.first_wave.append(replace(from_label(ghost_label), corruption="unknown_transaction", expected_valid=False))
    out.first_wave += _malformed(template, now)
    for label in [lb for lb in out.valid if lb.kind is LabelKind.CHARGEBACK][:2]:
        other = label.model_copy(update={"note": "the same label id, other content"})
        out.conflicts.append(replace(from_label(other), corruption="conflict", expected_valid=False))
    return out


def _malformed(tx: Transaction, now: datetime) -> list[Outgoing]:
    good = json.loads(_label(tx, "bad", LabelKind.CHARGEBACK, now, is_fraud=True).model_dump_json())

    def doc(**changes: object) -> bytes:
        body = {**good, "label_id": f"{tx.transaction_id}:bad-{len(changes)}-{sorted(changes)[0]}", **changes}
        return json.dumps({k: v for k, v in body.items() if v is not _DROP}, separators=(",", ":")).encode()

    before = (tx.timestamp - timedelta(days=1)).isoformat()
    return [
        _bad(b'{"label_id": "' + tx.transaction_id.encode() + b':trunc", "kind": "charge', "not_json"),
        _bad(doc(counterparty_id=_DROP), "missing_field"),
        _bad(doc(known_at=before), "known_before_transaction"),
        _bad(doc(kind="reversal", reverses=f"{tx.transaction_id}:cb", is_fraud=True), "verdict_on_reversal"),
        _bad(doc(kind="reversal", is_fraud=_DROP), "reversal_without_target"),
        _bad(doc(kind="refund"), "unknown_kind"),
    ]


_DROP = object()
