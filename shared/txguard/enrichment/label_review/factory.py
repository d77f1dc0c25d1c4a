"""Build the label review store the settings name (in the counterparty table, or the SQLite file)."""

from __future__ import annotations

from typing import Any

from txguard.contract.settings import CounterpartySettings
from txguard.enrichment.label_review.protocol import LabelReviewStore


def create_label_review(settings: CounterpartySettings, client: Any = None) -> LabelReviewStore:
    """`client`: a BigtableDataClient to share (the counterparty store's)."""
    if settings.counterparty_store == "bigtable":
        from txguard.enrichment.label_review.bigtable import BigtableLabelReview

        return BigtableLabelReview(client, project=settings.google_cloud_project,
                                   instance=settings.bigtable_instance, table=settings.counterparty_table)
    from txguard.enrichment.label_review.sqlite import SqliteLabelReview

    return SqliteLabelReview(settings.sqlite_path)
