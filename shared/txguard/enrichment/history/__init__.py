"""Per-wallet history stores (Firestore in Google Cloud, SQLite embedded) behind one protocol."""

from txguard.enrichment.history.factory import create_store
from txguard.enrichment.history.protocol import ConflictingTransactionError, Enrichment, HistoryStore

__all__ = ["ConflictingTransactionError", "Enrichment", "HistoryStore", "create_store"]
