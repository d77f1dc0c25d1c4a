"""Counterparty aggregate stores (Bigtable in Google Cloud, SQLite embedded) behind one protocol.

Design, exactly-once argument and store choice: docs/counterparty.md."""

from txguard.enrichment.counterparty.factory import create_counterparty_store
from txguard.enrichment.counterparty.protocol import CounterpartyStore

__all__ = ["CounterpartyStore", "create_counterparty_store"]
