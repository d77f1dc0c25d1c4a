"""The transaction index: what txguard saw of each transaction, kept as long as its labels may come.

Enrichment records every transaction it applies; the label function checks each label against the
record (txguard.enrichment.label_checks). Design, retention and size: docs/capacity.md ("Transaction
index") and docs/counterparty.md ("Who may label")."""

from txguard.enrichment.transaction_index.factory import create_transaction_index
from txguard.enrichment.transaction_index.protocol import IndexedTransaction, TransactionIndex

__all__ = ["IndexedTransaction", "TransactionIndex", "create_transaction_index"]
