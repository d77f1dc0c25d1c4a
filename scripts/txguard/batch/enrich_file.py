"""Enrich a file of Transactions (JSONL or CSV) into the EnrichedTransactions `score-file` reads.

The offline twin of the enrichment function: the transactions (and label events, if given) are
replayed in time order with the serving feature code (`txguard.features.timeline.replay`), so each
transaction gets the wallet and counterparty features known just before it, exactly as the
pipeline would have computed them had the file arrived in that order. Label columns (`is_fraud`, `scenario`) are dropped. A row the contract
rejects stops the run with its line and field, before anything is written; so does a file without
rows. Local paths or gs:// objects.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from txguard.batch.storage import open_binary, staged
from txguard.contract.errors import DataFileError
from txguard.contract.models import TRANSACTION_ADAPTER, LabelEvent, Transaction
from txguard.features.timeline import enriched_of, replay

LABEL_COLUMNS = ("is_fraud", "scenario", "label_time")


def _rows(path: str) -> Iterator[tuple[int, object]]:
    if path.lower().endswith(".csv"):
        with open_binary(path, "r") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                yield reader.line_num, {k: v for k, v in row.items() if k is not None and v not in (None, "")}
        return
    with open_binary(path, "r") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except ValueError as exc:
                    raise DataFileError(f"{path}: line {number}: not JSON ({exc})") from None


def read_transactions(path: str | Path) -> list[Transaction]:
    """Every row as a validated Transaction (labels dropped); DataFileError names the first bad one."""
    path = str(path)
    out = []
    for number, doc in _rows(path):
        if not isinstance(doc, dict):
            raise DataFileError(f"{path}: line {number}: not a JSON object")
        for key in LABEL_COLUMNS:
            doc.pop(key, None)
        try:
            out.append(TRANSACTION_ADAPTER.validate_python(doc))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "(row)"
            raise DataFileError(f"{path}: line {number}: field '{where}': {err['msg']}") from None
    if not out:
        raise DataFileError(f"{path} holds no transactions, the file is empty or a header only")
    return out


def enrich_file(src: str | Path, dst: str | Path, labels: list[LabelEvent] | None = None) -> dict[str, int]:
    """Write one EnrichedTransaction per line to `dst`, in time order; returns counts. `labels`
    (known later: chargebacks, verdicts) are replayed when they became known."""
    transactions = sorted(read_transactions(src), key=lambda t: t.timestamp)
    wallets: set[str] = set()
    with staged(str(dst)) as out:
        for tx, row in replay(transactions, labels or ()):
            wallets.add(tx.wallet_id)
            out.write(enriched_of(tx, row).model_dump_json().encode())
            out.write(b"\n")
    return {"transactions": len(transactions), "wallets": len(wallets), "labels": len(labels or ())}
