"""One indexed transaction, its 33-byte encoding, and what a store of them must do.

A record keeps exactly what a label names and nothing a label does not need: the wallet, the
counterparty and the device as 8-byte digests (enough to compare with what a label says; the ids
themselves stay in the history and the decisions), and the transaction time to the millisecond.
Stores (Bigtable in Google Cloud, the SQLite file embedded) hold the same bytes under the same
transaction id, so both answer every lookup the same way (tests/integration/test_label_stores.py).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from txguard.contract.models import LabelEvent, Transaction

FORMAT_VERSION = 1
_LAYOUT = struct.Struct(">B8s8s8sq")  # version, wallet, counterparty, device (zeros: none), time (epoch ms)
RECORD_BYTES = _LAYOUT.size  # 33
_NO_DEVICE = bytes(8)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def digest(ident: str) -> bytes:
    return hashlib.blake2b(ident.encode(), digest_size=8).digest()


def epoch_ms(when: datetime) -> int:
    """Milliseconds, floored: what a record keeps of a timestamp, and what a label's time is compared at.
    Integer arithmetic: a float product (`timestamp() * 1000`) can land just below a whole millisecond."""
    return (when - _EPOCH) // _MS


@dataclass(frozen=True)
class IndexedTransaction:
    transaction_id: str
    wallet: bytes
    counterparty: bytes
    device: bytes | None
    ts_ms: int

    @classmethod
    def of(cls, tx: Transaction) -> IndexedTransaction:
        return cls(tx.transaction_id, digest(tx.wallet_id), digest(tx.counterparty_id),
                   digest(tx.device_id) if tx.device_id else None, epoch_ms(tx.timestamp))

    def encode(self) -> bytes:
        return _LAYOUT.pack(FORMAT_VERSION, self.wallet, self.counterparty, self.device or _NO_DEVICE, self.ts_ms)

    @classmethod
    def decode(cls, transaction_id: str, data: bytes) -> IndexedTransaction:
        version, wallet, counterparty, device, ts_ms = _LAYOUT.unpack(data)
        if version != FORMAT_VERSION:
            raise ValueError(f"transaction index record of {transaction_id} has format {version}, not {FORMAT_VERSION}")
        return cls(transaction_id, wallet, counterparty, None if device == _NO_DEVICE else device, ts_ms)

    def disagreements(self, label: LabelEvent) -> list[str]:
        """The fields of `label` that differ from what txguard saw (empty: the label describes this transaction)."""
        out = []
        if digest(label.wallet_id) != self.wallet:
            out.append("wallet_id")
        if digest(label.counterparty_id) != self.counterparty:
            out.append("counterparty_id")
        if (digest(label.device_id) if label.device_id else None) != self.device:
            out.append("device_id")
        if epoch_ms(label.transaction_time) != self.ts_ms:
            out.append("transaction_time")
        return out


@runtime_checkable
class TransactionIndex(Protocol):
    """Thread-safe: one instance per process, shared by the server's threads."""

    def record(self, tx: Transaction) -> None:
        """Keep what a label of `tx` will be checked against (idempotent: a redelivery writes the same bytes)."""
        ...

    def lookup(self, transaction_id: str) -> IndexedTransaction | None:
        """The record of a transaction txguard applied; None if it never saw it (or it has expired)."""
        ...

    def close(self) -> None: ...
