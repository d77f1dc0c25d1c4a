"""Build the transaction index the settings name: Bigtable next to the counterparty table, or SQLite."""

from __future__ import annotations

from typing import Any

from txguard.contract.settings import CounterpartySettings
from txguard.enrichment.transaction_index.protocol import TransactionIndex


def create_transaction_index(settings: CounterpartySettings, client: Any = None) -> TransactionIndex:
    """`client`: a BigtableDataClient to share (the counterparty store's), so a function opens one."""
    if settings.counterparty_store == "bigtable":
        from txguard.enrichment.transaction_index.bigtable import BigtableTransactionIndex

        return BigtableTransactionIndex(client, project=settings.google_cloud_project,
                                        instance=settings.bigtable_instance, table=settings.transaction_index_table)
    from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex

    return SqliteTransactionIndex(settings.sqlite_path)
