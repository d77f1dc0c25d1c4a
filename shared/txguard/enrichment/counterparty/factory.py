"""Build the counterparty store `COUNTERPARTY_STORE` names (Bigtable client imported only when used)."""

from __future__ import annotations

from txguard.contract.settings import CounterpartySettings
from txguard.enrichment.counterparty.protocol import CounterpartyStore


def create_counterparty_store(settings: CounterpartySettings) -> CounterpartyStore:
    if settings.counterparty_store == "bigtable":
        from txguard.enrichment.counterparty.bigtable import BigtableCounterpartyStore

        return BigtableCounterpartyStore(project=settings.google_cloud_project, instance=settings.bigtable_instance,
                                         table=settings.counterparty_table, shards=settings.counterparty_shards)
    from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore

    return SqliteCounterpartyStore(settings.sqlite_path)
