"""Label review state in the counterparty table: rate buckets (family `q`) and held labels (family `h`).

- A key's counts live in row `r#{key}`, one column per minute (`%010d` of epoch minutes: qualifiers
  sort by time, so a window is one column range). `count` is one ReadModifyWriteRow increment of the
  minute's cell (atomic, returns the new value) and one read of the window's columns. The family's
  GC drops cells older than LABEL_RATES_RETENTION_DAYS.
- A held label is row `h#{label_id}`, one cell holding its JSON (`HeldLabel.to_json`), kept until
  `drop` (or the family's GC, LABEL_HELD_RETENTION_DAYS). Listing scans the `h#` range.
"""

from __future__ import annotations

from google.cloud.bigtable.data import BigtableDataClient, DeleteAllFromRow, ReadRowsQuery, RowRange, SetCell
from google.cloud.bigtable.data import row_filters as rf
from google.cloud.bigtable.data.read_modify_write_rules import IncrementRule

from txguard.contract import names
from txguard.enrichment.bigtable_store import UNAVAILABLE, BigtableStore, unavailable
from txguard.enrichment.label_review.protocol import HeldLabel

RATES = names.LABEL_RATES_FAMILY
HELD = names.LABEL_HELD_FAMILY
DOC = b"doc"


def _int(value: bytes) -> int:
    return int.from_bytes(value, "big", signed=True)


def minute_column(minute: int) -> bytes:
    return f"{minute:010d}".encode()


class BigtableLabelReview(BigtableStore):
    def __init__(self, client: BigtableDataClient | None = None, *, project: str | None = None,
                 instance: str = names.BIGTABLE_INSTANCE, table: str = names.COUNTERPARTY_TABLE,
                 timeout_s: float = 10.0) -> None:
        super().__init__(client, project=project, instance=instance, table=table, timeout_s=timeout_s)

    def count(self, key: str, minute: int, window_minutes: int) -> int:
        row_key = f"r#{key}".encode()
        earlier = rf.RowFilterChain([
            rf.ColumnRangeFilter(RATES, minute_column(minute - window_minutes + 1), minute_column(minute),
                                 inclusive_end=False),
            rf.CellsColumnLimitFilter(1)])
        try:
            # The increment returns this minute's new value: each concurrent label gets its own.
            now = self.table.read_modify_write_row(row_key, IncrementRule(RATES, minute_column(minute), 1))
            before = self.table.read_row(row_key, row_filter=earlier) if window_minutes > 1 else None
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        this_minute = sum(_int(c.value) for c in now if c.qualifier == minute_column(minute))
        return this_minute + (sum(_int(c.value) for c in before) if before else 0)

    def hold(self, held: HeldLabel) -> None:
        try:
            self.table.mutate_row(f"h#{held.label.label_id}".encode(),
                                  [SetCell(HELD, DOC, held.to_json().encode(), int(held.held_at * 1000) * 1000)])
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    def held(self) -> list[HeldLabel]:
        query = ReadRowsQuery(row_ranges=[RowRange(b"h#", b"h$")],
                              row_filter=rf.RowFilterChain([rf.FamilyNameRegexFilter(HELD),
                                                            rf.CellsColumnLimitFilter(1)]))
        try:
            rows = self.table.read_rows(query)
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        out = [HeldLabel.from_json(cell.value) for row in rows for cell in row if cell.qualifier == DOC]
        return sorted(out, key=lambda h: (h.held_at, h.label.label_id))

    def drop(self, label_id: str) -> None:
        try:
            self.table.mutate_row(f"h#{label_id}".encode(), [DeleteAllFromRow()])
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc

