"""Per-wallet history stores (Firestore in Google Cloud, SQLite embedded) behind one protocol."""

from shared.history.factory import create_store
from shared.history.protocol import ConflictingTransactionError, Enrichment, HistoryStore

__all__ = ["ConflictingTransactionError", "Enrichment", "HistoryStore", "create_store"]
