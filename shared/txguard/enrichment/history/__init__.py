"""Per-wallet history stores (Firestore in Google Cloud, SQLite embedded) behind one protocol."""

from txguard.enrichment.history.factory import create_store
from txguard.enrichment.history.protocol import HistoryStore
from txguard.enrichment.history.record import Enrichment

__all__ = ["Enrichment", "HistoryStore", "create_store"]
