"""Build the history store `HISTORY_STORE` names (Firestore client imported only when used)."""

from __future__ import annotations

from shared.history.protocol import HistoryStore
from shared.settings import EnrichSettings


def create_store(settings: EnrichSettings) -> HistoryStore:
    if settings.history_store == "firestore":
        from shared.history.firestore import FirestoreHistoryStore  # noqa: PLC0415

        return FirestoreHistoryStore(
            project=settings.google_cloud_project,
            database=settings.firestore_database,
            ttl_days=settings.processed_ttl_days,
            max_attempts=settings.firestore_max_attempts,
        )
    from shared.history.sqlite import SqliteHistoryStore  # noqa: PLC0415

    return SqliteHistoryStore(settings.sqlite_path, ttl_days=settings.processed_ttl_days)
