"""Bigtable counterparty store: aggregate cells (AddToCell) in sharded (entity, day) rows.

Row `{entity}#{day:06d}#{shard:02d}` holds one entity's counters for one day, family `a` (an
aggregate family, Sum of int64: AddToCell adds without reading, so a hot counterparty's writes
never wait on each other's reads). A transaction writes the row of its shard
(hash(transaction id) % shards): a popular counterparty's writes spread over `shards` rows and
a read scans `{entity}#{day-30}` .. `{entity}#{day+1}`, all shards at once, in one range.

Exactly once: a transaction's increments and its marker (family `m`) are one CheckAndMutateRow
on one row: applied only if the marker is absent. `settle_transaction` deletes the marker once
the history store's processed record says applied. A label goes through its transaction's ledger
row `t{hash}` (family `l`, optimistic concurrency on a version cell), then its increments are
applied with a kept marker. Figures, sizing and the Firestore alternative: docs/counterparty.md.

Round trips: the snapshot's two reads (older days' totals, the last two days' counters) and a
transaction's conditional mutations (one per row: counterparty, device, wallet) do not depend on
each other, so each group is sent at once (`Overlap.all`): the snapshot is the read mark, then one
wait; an update is one wait, then the read marks' ReadRows. Each row's increments still land with
their marker or not at all; a failed row leaves the others as a sequential loop would have, and its
redelivery applies what is missing.

Read marks (family `r`, lateness.py): `read_before` first writes, in the day row of the reading
transaction's shard, one empty cell stamped with the start of its 5-minute slot (one blind
MutateRows for the 4-5 entities it reads, the payer's inflow and the payee's labels included; a later read of the same slot overwrites the same version, so a
row holds at most 288 versions a day, and GC keeps one). After applying an update, one ReadRows
of the newest version per row over the days it is visible in gives the latest slot read there.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from typing import Any

from google.cloud.bigtable.data import (
    AddToCell,
    BigtableDataClient,
    DeleteRangeFromColumn,
    ReadRowsQuery,
    RowMutationEntry,
    RowRange,
    SetCell,
)
from google.cloud.bigtable.data import row_filters as rf

from txguard.contract import names
from txguard.contract.errors import StoreUnavailableError
from txguard.contract.models import LabelEvent, Transaction
from txguard.enrichment.bigtable_store import UNAVAILABLE, BigtableStore, unavailable
from txguard.enrichment.counterparty.lateness import Update, find_late
from txguard.enrichment.counterparty.protocol import (
    Applied,
    LabelApplied,
    by_row,
    label_marker,
    transaction_marker,
)
from txguard.enrichment.overlap import Overlap
from txguard.features.counterparty import (
    WINDOW_DAYS,
    EntityKeys,
    Increment,
    Snapshot,
    View,
    day_of,
    read_days,
    slot_start,
    transaction_increments,
)
from txguard.features.label_ledger import LabelOutcome, transition
from txguard.features.wallet import DAY

COUNTERS = names.COUNTERPARTY_COUNTERS_FAMILY
MARKERS = names.COUNTERPARTY_MARKERS_FAMILY
LEDGER = names.COUNTERPARTY_LEDGER_FAMILY
READS = names.COUNTERPARTY_READS_FAMILY
_READ_QUALIFIER = b"t"
LEDGER_ATTEMPTS = 20
# Day totals ("dn", "da", "dw", "df") and wallet slots ("g00".."g63") sort between "d" and "h"
# (tests/unit/enrichment/test_counterparty_bigtable_layout.py).
_DAY_TOTALS = rf.ColumnRangeFilter(COUNTERS, b"d", b"h", inclusive_end=False)
_ALL_COUNTERS = rf.ColumnRangeFilter(COUNTERS)
_LEDGER_LATEST = rf.RowFilterChain([rf.FamilyNameRegexFilter(LEDGER), rf.CellsColumnLimitFilter(1)])
_LATEST_READ = rf.RowFilterChain([rf.ColumnRangeFilter(READS, _READ_QUALIFIER, _READ_QUALIFIER),
                                  rf.CellsColumnLimitFilter(1)])


def row_key(entity: str, day: int, shard: int) -> bytes:
    return f"{entity}#{day:06d}#{shard:02d}".encode()


def ledger_key(transaction_id: str) -> bytes:
    return b"t" + hashlib.blake2b(transaction_id.encode(), digest_size=8).hexdigest().encode()


def shard_of(ident: str, shards: int) -> int:
    return zlib.crc32(ident.encode()) % shards


def _micros(day: int) -> int:
    """Cells of a day row are stamped with the day's start: the family's max-age GC drops them."""
    return int(day * DAY) * 1_000_000


def _int(value: bytes) -> int:
    return int.from_bytes(value, "big", signed=True)


def _exactly(family: str, qualifier: bytes) -> rf.RowFilter:
    return rf.ColumnRangeFilter(family, qualifier, qualifier)


class BigtableCounterpartyStore(BigtableStore):
    def __init__(self, client: BigtableDataClient | None = None, *, project: str | None = None,
                 instance: str = names.BIGTABLE_INSTANCE, table: str = names.COUNTERPARTY_TABLE,
                 shards: int = 4, timeout_s: float = 10.0) -> None:
        super().__init__(client, project=project, instance=instance, table=table, timeout_s=timeout_s)
        self.shards = shards
        self.overlap = Overlap()  # a call's independent RPCs at once

    def close(self) -> None:
        self.overlap.close()
        super().close()

    # reads ------------------------------------------------------------------------------------
    def read_before(self, tx: Transaction) -> Snapshot:
        self._mark_read(tx)
        return self.snapshot(tx)

    def _mark_read(self, tx: Transaction) -> None:
        """Record that `tx`'s entities are read through its 5-minute slot, before reading them."""
        t = tx.timestamp.timestamp()
        day, shard = day_of(t), shard_of(tx.transaction_id, self.shards)
        mark = SetCell(READS, _READ_QUALIFIER, b"", int(slot_start(t)) * 1_000_000)
        keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
        try:
            self.table.bulk_mutate_rows([RowMutationEntry(row_key(e, day, shard), [mark]) for e in keys.read()])
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    def _read_slots(self, update: Update) -> dict[str, float]:
        """Per entity of `update`, the latest slot read over the days in which the update is visible."""
        visible = update.visible_from()
        if not visible:
            return {}
        ranges = []
        for entity, t in visible.items():
            first = day_of(t)
            ranges.append(RowRange(f"{entity}#{first:06d}".encode(), f"{entity}#{first + WINDOW_DAYS + 1:06d}".encode()))
        try:
            rows = self.table.read_rows(ReadRowsQuery(row_ranges=ranges, row_filter=_LATEST_READ))
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        slots: dict[str, float] = {}
        for row in rows:
            entity = row.row_key.decode().split("#", 1)[0]
            for cell in row:
                slots[entity] = max(slots.get(entity, 0.0), cell.timestamp_micros / 1_000_000)
        return slots

    def snapshot(self, tx: Transaction) -> Snapshot:
        keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
        days = read_days(tx.timestamp.timestamp())
        entities = list(keys.read())
        recent = days.stop - 2  # yesterday and today: every column; older days: day totals only
        older = [RowRange(f"{e}#{days.start:06d}".encode(), f"{e}#{recent:06d}".encode()) for e in entities]
        latest = [RowRange(f"{e}#{recent:06d}".encode(), f"{e}#{days.stop:06d}".encode()) for e in entities]
        # Column ranges, not regular expressions: qualifiers are sorted, so the day totals and wallet
        # slots ("d..", "g..") are one seek per row (on the emulator 4 ms instead of 41 for a busy
        # counterparty's 31 days: docs/counterparty.md).
        try:
            older_rows, latest_rows = self.overlap.all([
                lambda: self.table.read_rows(ReadRowsQuery(row_ranges=older, row_filter=_DAY_TOTALS)),
                lambda: self.table.read_rows(ReadRowsQuery(row_ranges=latest, row_filter=_ALL_COUNTERS))])
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        rows = older_rows + latest_rows
        views: dict[str, dict[int, dict[str, int]]] = {e: {} for e in entities}
        for row in rows:
            entity, day, _shard = row.row_key.decode().split("#")
            cells = {cell.qualifier.decode(): _int(cell.value) for cell in row if cell.family == COUNTERS}
            target = views[entity].setdefault(int(day), {})
            for col, value in cells.items():
                target[col] = target.get(col, 0) + value
        return Snapshot.of(keys, views)

    # transactions -----------------------------------------------------------------------------
    def apply_transaction(self, tx: Transaction, new_for_cp: bool, new_for_device: bool) -> Applied:
        marker = transaction_marker(tx.transaction_id)
        shard = shard_of(tx.transaction_id, self.shards)
        update = Update.of_transaction(tx, transaction_increments(tx, new_for_cp, new_for_device))
        added = self._apply(update.increments, marker, shard)
        return Applied(added, find_late(update, self._read_slots(update)))

    def settle_transaction(self, tx: Transaction) -> None:
        marker = transaction_marker(tx.transaction_id).encode()
        shard = shard_of(tx.transaction_id, self.shards)
        day = day_of(tx.timestamp.timestamp())
        keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
        entries = [RowMutationEntry(row_key(e, day, shard), [DeleteRangeFromColumn(MARKERS, marker)])
                   for e in (keys.counterparty, keys.device) if e]
        try:
            self.table.bulk_mutate_rows(entries)
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    def _apply(self, increments: list[Increment] | tuple[Increment, ...], marker: str, shard: int) -> bool:
        """One CheckAndMutateRow per row: the increments land only where the marker is absent."""
        qualifier = marker.encode()

        def conditional(entity: str, day: int, cells: dict[str, int]) -> bool:
            """True when the row already held the marker (nothing written)."""
            ts = _micros(day)
            mutations: list[Any] = [SetCell(MARKERS, qualifier, b"1", ts)]
            mutations += [AddToCell(COUNTERS, col.encode(), value, ts) for col, value in cells.items()]
            return self.table.check_and_mutate_row(row_key(entity, day, shard), _exactly(MARKERS, qualifier),
                                                   false_case_mutations=mutations)

        rows = [(entity, day, cells) for (entity, day), cells in by_row(increments).items() if cells]
        try:
            matched = self.overlap.all([lambda row=row: conditional(*row) for row in rows])
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        return not all(matched)

    # labels -----------------------------------------------------------------------------------
    def apply_label(self, label: LabelEvent) -> LabelApplied:
        outcome = self._record_label(label)
        # Applied for a duplicate too: a crash after the ledger write left them to a redelivery.
        added = self._apply(outcome.increments, label_marker(label.label_id), shard_of(label.label_id, self.shards))
        if outcome.duplicate and not added:
            return LabelApplied(outcome)
        update = Update.of_label(label, outcome.increments)
        return LabelApplied(outcome, find_late(update, self._read_slots(update)))

    def knows_label(self, label: LabelEvent) -> bool:
        try:
            row = self.table.read_row(ledger_key(label.transaction_id), row_filter=rf.RowFilterChain(
                [_exactly(LEDGER, b"doc"), rf.CellsColumnLimitFilter(1)]))
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        cells = [c.value for c in row] if row else []
        return bool(cells) and label.label_id in json.loads(cells[0])["labels"]

    def _record_label(self, label: LabelEvent) -> LabelOutcome:
        """Read the ledger, compute the transition, write it if the version did not move (retry if it did).

        Ledger cells are stamped with the time of the write, each later than the newest one read (so the
        newest version is the latest write whatever the writers' clocks), and read one version per
        column: the family's garbage collection keeps one version for LABEL_LEDGER_RETENTION_DAYS after
        the last write (a cell stamped 0 would be older than that at once)."""
        key = ledger_key(label.transaction_id)
        version_col = b"v"
        try:
            for _ in range(LEDGER_ATTEMPTS):
                row = self.table.read_row(key, row_filter=_LEDGER_LATEST)
                cells = {c.qualifier: c for c in row} if row else {}
                version = _int(cells[version_col].value) if version_col in cells else None
                doc = json.loads(cells[b"doc"].value) if b"doc" in cells else None
                ledger, outcome = transition(doc, label)
                if outcome.duplicate:
                    return outcome
                newest = max((c.timestamp_micros for c in cells.values()), default=0)
                stamp = max(int(time.time() * 1000) * 1000, newest + 1000)  # ms granularity, strictly later
                nxt = (0 if version is None else version + 1).to_bytes(8, "big", signed=True)
                writes = [SetCell(LEDGER, b"doc", json.dumps(ledger, separators=(",", ":")).encode(), stamp),
                          SetCell(LEDGER, version_col, nxt, stamp)]
                if version is None:  # create: only if nobody created it meanwhile
                    matched = self.table.check_and_mutate_row(key, _exactly(LEDGER, version_col),
                                                              false_case_mutations=writes)
                    if not matched:
                        return outcome
                else:
                    current = version.to_bytes(8, "big", signed=True)
                    predicate = rf.RowFilterChain([_exactly(LEDGER, version_col), rf.CellsColumnLimitFilter(1),
                                                   rf.ValueRangeFilter(current, current)])
                    if self.table.check_and_mutate_row(key, predicate, true_case_mutations=writes):
                        return outcome
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        raise StoreUnavailableError(f"bigtable: label ledger of {label.transaction_id} kept changing "
                                    f"({LEDGER_ATTEMPTS} attempts)")

    def entity_cells(self, entity: str) -> View:
        try:
            rows = self.table.read_rows(ReadRowsQuery(row_ranges=[RowRange(f"{entity}#".encode(), f"{entity}$".encode())],
                                                      row_filter=_ALL_COUNTERS))
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        days: dict[int, dict[str, int]] = {}
        for row in rows:
            cells = days.setdefault(int(row.row_key.decode().split("#")[1]), {})
            for cell in row:
                col = cell.qualifier.decode()
                cells[col] = cells.get(col, 0) + _int(cell.value)
        return days

    def pending_markers(self, tx: Transaction) -> int:
        """Markers of `tx` still present (tests and inspection)."""
        marker = transaction_marker(tx.transaction_id).encode()
        keys = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id)
        day, shard = day_of(tx.timestamp.timestamp()), shard_of(tx.transaction_id, self.shards)
        found = 0
        for e in (keys.counterparty, keys.device):
            if e and self.table.read_row(row_key(e, day, shard), row_filter=_exactly(MARKERS, marker)):
                found += 1
        return found

