"""The Bigtable layout's invariants that reads rely on (no emulator needed)."""

from __future__ import annotations

from txguard.enrichment.counterparty.bigtable import ledger_key, row_key, shard_of
from txguard.features.counterparty import DAY_COLUMNS, HOUR_COLUMNS, SLOT_COLUMNS, WALLET_SLOT_COLUMNS


def test_day_totals_and_wallet_slots_are_one_column_range() -> None:
    """Older days are read with the column range [d, h): exactly the day totals and wallet slots."""
    in_range = [*DAY_COLUMNS.values(), *WALLET_SLOT_COLUMNS]
    assert all("d" <= c < "h" for c in in_range)
    detail = [c for cols in (*HOUR_COLUMNS, *SLOT_COLUMNS) for c in cols.values()]
    assert not [c for c in detail if "d" <= c < "h"]


def test_rows_of_an_entity_sort_by_day_then_shard() -> None:
    keys = [row_key("c0123", day, shard) for day in (20500, 20501, 20530) for shard in (0, 1, 7)]
    assert keys == sorted(keys)
    assert row_key("c0123", 20530, 7) < b"c0123#020531"  # the exclusive end of a range ends a day
    assert shard_of("tx-1", 4) == shard_of("tx-1", 4) and 0 <= shard_of("tx-2", 4) < 4
    assert ledger_key("tx-1") != ledger_key("tx-2") and ledger_key("tx-1").startswith(b"t")
