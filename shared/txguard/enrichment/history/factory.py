"""Build the history store `HISTORY_STORE` names (Firestore client imported only when used)."""

from __future__ import annotations

from txguard.contract.settings import EnrichSettings
from txguard.enrichment.history.protocol import HistoryStore


def create_store(settings: EnrichSettings) -> HistoryStore:
    if settings.history_store == "firestore":
        from txguard.enrichment.history.firestore import FirestoreHistoryStore

        return FirestoreHistoryStore(
            project=settings.google_cloud_project,
            database=settings.firestore_database,
            ttl_days=settings.processed_ttl_days,
            max_attempts=settings.firestore_max_attempts,
            lease_s=settings.counterparty_lease_s,
        )
    from txguard.enrichment.history.sqlite import SqliteHistoryStore

    return SqliteHistoryStore(settings.sqlite_path, ttl_days=settings.processed_ttl_days,
                              lease_s=settings.counterparty_lease_s)
