"""Bigtable transaction index: one row per transaction in the `transaction_index` table.

Row key `{crc32(id) % 4096:03x}#{transaction id}`: the id itself (no hash collision can make two
transactions one), behind a 3-hex-digit spread so that sequential ids from one publisher do not all
land on one tablet. One cell, family `x` qualifier `r`, holding the 33-byte record, stamped with the
transaction's time: the family's garbage collection (max age TRANSACTION_INDEX_RETENTION_DAYS, one
version; infra/counterparty.py) drops a record that long after its transaction. A write is one
`MutateRow` (SetCell): idempotent, so a redelivery rewrites the same bytes.
"""

from __future__ import annotations

import zlib

from google.cloud.bigtable.data import BigtableDataClient, SetCell
from google.cloud.bigtable.data import row_filters as rf

from txguard.contract import names
from txguard.contract.models import Transaction
from txguard.enrichment.bigtable_store import UNAVAILABLE, BigtableStore, unavailable
from txguard.enrichment.transaction_index.protocol import IndexedTransaction

FAMILY = names.TRANSACTION_INDEX_FAMILY
QUALIFIER = b"r"
SPREAD = 4096
_LATEST = rf.RowFilterChain([rf.FamilyNameRegexFilter(FAMILY), rf.CellsColumnLimitFilter(1)])


def row_key(transaction_id: str) -> bytes:
    return f"{zlib.crc32(transaction_id.encode()) % SPREAD:03x}#{transaction_id}".encode()


class BigtableTransactionIndex(BigtableStore):
    def __init__(self, client: BigtableDataClient | None = None, *, project: str | None = None,
                 instance: str = names.BIGTABLE_INSTANCE, table: str = names.TRANSACTION_INDEX_TABLE,
                 timeout_s: float = 10.0) -> None:
        super().__init__(client, project=project, instance=instance, table=table, timeout_s=timeout_s)

    def record(self, tx: Transaction) -> None:
        entry = IndexedTransaction.of(tx)
        # Stamped with the transaction's time (ms granularity, as Bigtable requires): GC counts from it.
        cell = SetCell(FAMILY, QUALIFIER, entry.encode(), entry.ts_ms * 1000)
        try:
            self.table.mutate_row(row_key(entry.transaction_id), [cell])
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    def lookup(self, transaction_id: str) -> IndexedTransaction | None:
        try:
            row = self.table.read_row(row_key(transaction_id), row_filter=_LATEST)
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        if row is None:
            return None
        cells = [c for c in row if c.family == FAMILY and c.qualifier == QUALIFIER]
        return IndexedTransaction.decode(transaction_id, cells[0].value) if cells else None

