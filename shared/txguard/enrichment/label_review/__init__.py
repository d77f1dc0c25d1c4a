"""Label volume and the labels held for review: the state behind txguard.enrichment.label_limits.

Counters per key (a source, a counterparty) in one-minute buckets, summed over a sliding window, and
the held labels themselves until someone releases or discards them (`txguard labels held`). Bigtable
(two families of the counterparty table) in Google Cloud, the SQLite file embedded: same answers."""

from txguard.enrichment.label_review.factory import create_label_review
from txguard.enrichment.label_review.protocol import HeldLabel, LabelReviewStore

__all__ = ["HeldLabel", "LabelReviewStore", "create_label_review"]
